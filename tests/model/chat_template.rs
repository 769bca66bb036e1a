//! Chat templates render byte-identically to Python jinja2 as configured by
//! Hugging Face transformers (fixtures: scripts/make_chat_fixtures.py).

use std::path::{Path, PathBuf};

use hyperscale::prompt::chat::{ChatTemplate, Message, TemplateVars};
use serde::Deserialize;

#[derive(Deserialize)]
struct Expected {
    conversations: std::collections::BTreeMap<String, Vec<Message>>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    template: String,
    conversation: String,
    add_generation_prompt: bool,
    vars: TemplateVars,
    expected: String,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/chat")
}

fn template(name: &str) -> ChatTemplate {
    let path = fixtures().join(format!("{name}.jinja"));
    let source =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ChatTemplate::new(source).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn renders_match_python_jinja2() {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    let expected: Expected = serde_json::from_str(&text).unwrap();
    let mut templates = std::collections::BTreeMap::new();
    let mut failures = Vec::new();
    for case in &expected.cases {
        let tmpl = templates
            .entry(case.template.clone())
            .or_insert_with(|| template(&case.template));
        let messages = &expected.conversations[&case.conversation];
        let got = tmpl
            .render(messages, case.add_generation_prompt, &case.vars)
            .unwrap_or_else(|e| panic!("{} / {}: {e}", case.template, case.conversation));
        if got != case.expected {
            failures.push(format!(
                "{} / {} (gen={}):\n--- expected\n{:?}\n--- got\n{:?}",
                case.template, case.conversation, case.add_generation_prompt, case.expected, got
            ));
        }
    }
    assert!(
        expected.cases.len() >= 60,
        "fixture has {} cases",
        expected.cases.len()
    );
    for name in [
        "smollm2",
        "qwen2_5_instruct",
        "qwen3",
        "deepseek_r1_distill_qwen",
        "features",
    ] {
        assert!(templates.contains_key(name), "no case for {name}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} renders differ:\n{}",
        failures.len(),
        expected.cases.len(),
        failures.join("\n")
    );
}

#[test]
fn smollm2_prompt_matches_the_reference_vector() {
    // The SmolLM2 greedy reference was produced from this exact prompt.
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/models/ref_smollm2_135m.json");
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let rendered = template("smollm2")
        .render(
            &[Message::user("What is the capital of France?")],
            true,
            &TemplateVars::default(),
        )
        .unwrap();
    assert_eq!(rendered, reference["prompt"].as_str().unwrap());
}

#[test]
fn syntax_errors_are_reported() {
    let err = ChatTemplate::new("{% if messages %}unclosed").unwrap_err();
    assert!(
        err.to_string().starts_with("invalid chat template"),
        "{err}"
    );
}
