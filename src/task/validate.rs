//! Task file as written → task as run: [`validate`] checks every field of a
//! [`TaskFile`] and builds the typed [`Task`]; errors name the field.

use std::path::Path;
use std::time::Duration;

use super::arith::{ArithConfig, MAX_DIFFICULTY};
use super::choices::{ChoiceOrder, ChoiceSchedule};
use super::date::{Date, DateWindow};
use super::error::TaskError;
use super::file::{GraderFile, HubFile, SourceFile, TASK_FILE_VERSION, TaskFile};
use super::source::Source;
use super::spec::{GraderSpec, HubSource, PromptSpec, SamplingDefaults, Task};
use crate::generate::check_sampling;
use crate::hub::{DEFAULT_REVISION, Repo, RepoId, RepoType};
use crate::limits::{MAX_GENERATED_PROBLEMS, MAX_TEST_TIMEOUT_S, at_most, whole_seconds};
use crate::prompt::template::{RegionMode, Template, TemplateError};

/// Validates `file` (read from `origin`, named in errors) into a [`Task`].
pub(crate) fn validate(file: TaskFile, origin: &Path) -> Result<Task, TaskError> {
    let invalid = |field: &str, reason: String| TaskError::Invalid {
        path: origin.to_path_buf(),
        field: field.to_string(),
        reason,
    };
    let template_err = |field: &str| {
        let path = origin.to_path_buf();
        let field = field.to_string();
        move |source: TemplateError| TaskError::Template {
            path: path.clone(),
            field: field.clone(),
            source,
        }
    };
    if file.version != TASK_FILE_VERSION {
        return Err(TaskError::Version {
            path: origin.to_path_buf(),
            found: file.version,
            supported: TASK_FILE_VERSION,
        });
    }
    let name_ok = !file.name.is_empty()
        && file
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !name_ok {
        return Err(invalid(
            "name",
            format!(
                "`{}` is not a lowercase name of a-z, 0-9, `-`, `_`",
                file.name
            ),
        ));
    }
    let dir_or_name = |dir: Option<String>| dir.unwrap_or_else(|| file.name.clone());
    let nonempty = |field: &str, files: &[String]| {
        if files.is_empty() {
            Err(invalid(field, "list no file names".into()))
        } else {
            Ok(())
        }
    };
    let mut hub_source = None;
    let source = match file.source {
        SourceFile::AimeJsonl { dir, files, hub } => {
            nonempty("source.files", &files)?;
            hub_source = hub_spec(hub, None, &invalid)?;
            Source::Aime {
                dir: dir_or_name(dir),
                files,
            }
        }
        SourceFile::Gpqa {
            dir,
            files,
            zip_member,
            zip_password,
            hub,
        } => {
            nonempty("source.files", &files)?;
            hub_source = hub_spec(hub, None, &invalid)?;
            Source::Gpqa {
                dir: dir_or_name(dir),
                files,
                zip_member,
                zip_password,
            }
        }
        SourceFile::Livecodebench {
            dir,
            release,
            files,
            date_from,
            date_to,
            hub,
        } => {
            let release: super::livecodebench::Release =
                release.parse().map_err(|e| invalid("source.release", e))?;
            hub_source = hub_spec(hub, Some(release.files()), &invalid)?;
            let from: Date = date_from
                .parse()
                .map_err(|e: super::date::DateError| invalid("source.date_from", e.to_string()))?;
            let to: Date = date_to
                .parse()
                .map_err(|e: super::date::DateError| invalid("source.date_to", e.to_string()))?;
            if to < from {
                return Err(invalid(
                    "source.date_to",
                    format!("{to} is before date_from {from}"),
                ));
            }
            Source::LiveCodeBench {
                dir: dir_or_name(dir),
                release,
                files,
                window: DateWindow { from, to },
            }
        }
        SourceFile::Arith {
            seed,
            per_difficulty,
            difficulties,
        } => {
            if per_difficulty == 0 {
                return Err(invalid(
                    "source.per_difficulty",
                    "must be at least 1".into(),
                ));
            }
            if difficulties.is_empty() {
                return Err(invalid("source.difficulties", "is empty".into()));
            }
            // The problems are built in memory when the task loads.
            let total = (per_difficulty as u64).saturating_mul(difficulties.len() as u64);
            at_most(
                total,
                MAX_GENERATED_PROBLEMS,
                "problems of a generated task, per_difficulty × difficulties",
            )
            .map_err(|e| invalid("source.per_difficulty", e.to_string()))?;
            for (i, d) in difficulties.iter().enumerate() {
                if !(1..=MAX_DIFFICULTY).contains(d) {
                    return Err(invalid(
                        "source.difficulties",
                        format!("{d} is not in 1..={MAX_DIFFICULTY}"),
                    ));
                }
                if difficulties[..i].contains(d) {
                    return Err(invalid(
                        "source.difficulties",
                        format!("{d} is listed twice"),
                    ));
                }
            }
            Source::Arith(ArithConfig {
                seed,
                per_difficulty,
                difficulties,
            })
        }
    };

    let is_mc = matches!(source, Source::Gpqa { .. });
    let is_code = matches!(source, Source::LiveCodeBench { .. });
    if file.choices.is_some() != is_mc {
        return Err(invalid(
            "choices",
            if is_mc {
                "is required for multiple-choice tasks"
            } else {
                "is only for multiple-choice tasks"
            }
            .into(),
        ));
    }
    if file.prompt.stdin_template.is_some() != is_code {
        return Err(invalid(
            "prompt.stdin_template",
            if is_code {
                "is required for code tasks"
            } else {
                "is only for code tasks"
            }
            .into(),
        ));
    }
    let text = file.prompt.template.as_str();
    let prompt = match (&source, file.choices, file.prompt.stdin_template) {
        (Source::Gpqa { .. }, Some(choices), _) => {
            let order = match choices.order.as_str() {
                "simple-evals" => ChoiceOrder::SimpleEvals { seed: choices.seed },
                "per-repeat" => ChoiceOrder::PerRepeat { seed: choices.seed },
                other => {
                    return Err(invalid(
                        "choices.order",
                        format!("`{other}` is not `simple-evals` or `per-repeat`"),
                    ));
                }
            };
            let names = ["question", "A", "B", "C", "D"];
            PromptSpec::MultipleChoice {
                template: Template::parse_checked(text, &names, &names)
                    .map_err(template_err("prompt.template"))?,
                choices: ChoiceSchedule::new(order),
            }
        }
        (Source::LiveCodeBench { .. }, _, Some(stdin)) => {
            let names = ["question", "starter_code"];
            PromptSpec::Code {
                with_starter: Template::parse_checked(text, &names, &names)
                    .map_err(template_err("prompt.template"))?,
                stdin: Template::parse_checked(&stdin, &["question"], &["question"])
                    .map_err(template_err("prompt.stdin_template"))?,
            }
        }
        _ => PromptSpec::Math {
            template: Template::parse_checked(text, &["problem"], &["problem"])
                .map_err(template_err("prompt.template"))?,
        },
    };

    let answer_region = match file.answer.region.as_str() {
        "strict" => RegionMode::Strict,
        "lenient" => RegionMode::Lenient,
        "whole" => RegionMode::Whole,
        other => {
            return Err(invalid(
                "answer.region",
                format!("`{other}` is not `strict`, `lenient` or `whole`"),
            ));
        }
    };

    let grader = match (file.grader, &prompt) {
        (
            GraderFile::Math {
                fallback_last_number,
            },
            PromptSpec::Math { .. },
        ) => GraderSpec::Math {
            fallback_last_number,
        },
        (GraderFile::MultipleChoice {}, PromptSpec::MultipleChoice { .. }) => {
            GraderSpec::MultipleChoice
        }
        (GraderFile::Code { test_timeout_s }, PromptSpec::Code { .. }) => {
            // Whole seconds in a range `signal.alarm` (a C int) and
            // `Duration` both hold: 1e20 used to panic here and 2^31 made
            // every program a runtime error.
            let secs = whole_seconds(test_timeout_s, MAX_TEST_TIMEOUT_S)
                .map_err(|e| invalid("grader.test_timeout_s", e.to_string()))?;
            GraderSpec::Code {
                test_timeout: Duration::from_secs(u64::from(secs)),
            }
        }
        (grader, _) => {
            let kind = match grader {
                GraderFile::Math { .. } => "math",
                GraderFile::MultipleChoice {} => "multiple-choice",
                GraderFile::Code { .. } => "code",
            };
            return Err(invalid(
                "grader.kind",
                format!("`{kind}` cannot grade this task's source format"),
            ));
        }
    };

    let s = file.sampling;
    check_sampling(s.temperature, s.top_p)
        .map_err(|e| invalid(&format!("sampling.{}", e.param()), e.to_string()))?;
    if s.top_k == Some(0) {
        return Err(invalid(
            "sampling.top_k",
            "0 keeps no token; omit it for no cut".into(),
        ));
    }
    if s.max_new_tokens == 0 || s.samples == 0 {
        let field = if s.samples == 0 {
            "sampling.samples"
        } else {
            "sampling.max_new_tokens"
        };
        return Err(invalid(field, "must be at least 1".into()));
    }
    Ok(Task {
        name: file.name,
        version: file.version,
        description: file.description,
        source,
        prompt,
        answer_region,
        grader,
        hub: hub_source,
        sampling: SamplingDefaults {
            temperature: s.temperature,
            top_p: s.top_p,
            top_k: s.top_k,
            max_new_tokens: s.max_new_tokens,
            samples: s.samples,
        },
    })
}

/// Validates `[source.hub]`; `default_files` stand in for a missing `files`.
fn hub_spec(
    hub: Option<HubFile>,
    default_files: Option<Vec<String>>,
    invalid: &impl Fn(&str, String) -> TaskError,
) -> Result<Option<HubSource>, TaskError> {
    let Some(hub) = hub else {
        return Ok(None);
    };
    let kind = match hub.repo_type.as_str() {
        "dataset" => RepoType::Dataset,
        "model" => RepoType::Model,
        other => {
            return Err(invalid(
                "source.hub.repo_type",
                format!("`{other}` is not `dataset` or `model`"),
            ));
        }
    };
    let repo =
        RepoId::new(kind, &hub.repo).map_err(|e| invalid("source.hub.repo", e.to_string()))?;
    let files = match hub.files.or(default_files) {
        Some(files) if !files.is_empty() => files,
        _ => return Err(invalid("source.hub.files", "list no file names".into())),
    };
    if let Some(bad) = files
        .iter()
        .find(|f| f.is_empty() || f.starts_with('/') || f.contains(".."))
    {
        return Err(invalid(
            "source.hub.files",
            format!("`{bad}` is not a path inside the repository"),
        ));
    }
    Ok(Some(HubSource {
        repo: Repo::new(
            repo,
            hub.revision.unwrap_or_else(|| DEFAULT_REVISION.into()),
        ),
        files,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edited(name: &str, from: &str, to: &str) -> Result<Task, TaskError> {
        let text = Task::builtin_text(name).unwrap();
        assert!(text.contains(from), "{from}");
        Task::from_toml(&text.replacen(from, to, 1), Path::new("t.toml"))
    }

    #[test]
    fn invalid_files_name_the_field() {
        let cases = [
            ("aime24", "version = 1", "version = 2", "version 2"),
            (
                "aime24",
                "region = \"strict\"",
                "region = \"loose\"",
                "answer.region",
            ),
            ("aime24", "{{problem}}", "{{question}}", "prompt.template"),
            (
                "gpqa-diamond",
                "kind = \"multiple-choice\"",
                "kind = \"math\"\nfallback_last_number = false",
                "grader.kind",
            ),
            ("aime24", "top_p = 0.95", "top_p = 0.95\ntop_q = 1", "top_q"),
            (
                "livecodebench",
                "date_to = \"2025-01-31\"",
                "date_to = \"2025-1-31\"",
                "source.date_to",
            ),
            (
                "livecodebench",
                "release = \"release_v5\"",
                "release = \"release_v9\"",
                "source.release",
            ),
            (
                "gpqa-diamond",
                "order = \"simple-evals\"",
                "order = \"random\"",
                "choices.order",
            ),
            (
                "arith",
                "difficulties = [1, 2, 3, 4, 5]",
                "difficulties = [1, 6]",
                "source.difficulties",
            ),
        ];
        for (name, from, to, needle) in cases {
            let err = crate::error_chain(&edited(name, from, to).unwrap_err());
            assert!(err.contains(needle), "{name} {to}: {err}");
        }
    }
}
