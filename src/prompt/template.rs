//! Task prompt templates and the answer region.
//!
//! A [`Template`] is the user-message text of a task file with `{{name}}`
//! placeholders. It is parsed once, when the task file is validated, so a
//! misspelt placeholder is an error at load time rather than a literal
//! `{{questoin}}` in every prompt. Single braces are ordinary text, so LaTeX
//! such as `\boxed{}` needs no escaping.
//!
//! [`answer_region`] picks the part of a completion that graders read: the text
//! after the last `</think>` (`docs/data-formats.md` §5).

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A parsed prompt template: literal text interleaved with named placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Var(String),
}

/// Why a template could not be parsed or filled.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("unclosed placeholder `{{{{` at byte {offset}")]
    Unclosed { offset: usize },
    #[error("placeholder at byte {offset} has an invalid name `{name}` (use letters, digits, `_`)")]
    BadName { offset: usize, name: String },
    #[error("unknown placeholder `{{{{{name}}}}}` (allowed: {allowed})")]
    Unknown { name: String, allowed: String },
    #[error("placeholder `{{{{{name}}}}}` is required but missing")]
    Missing { name: String },
    #[error("no value given for placeholder `{{{{{name}}}}}`")]
    Unfilled { name: String },
}

impl Template {
    /// Parses `{{name}}` placeholders; names are ASCII letters, digits and `_`.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let mut segments = Vec::new();
        let mut rest = source;
        let mut offset = 0;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                segments.push(Segment::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or(TemplateError::Unclosed {
                offset: offset + start,
            })?;
            let name = after[..end].trim();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(TemplateError::BadName {
                    offset: offset + start,
                    name: name.to_string(),
                });
            }
            segments.push(Segment::Var(name.to_string()));
            let consumed = start + 2 + end + 2;
            offset += consumed;
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.to_string()));
        }
        Ok(Self {
            source: source.to_string(),
            segments,
        })
    }

    /// Parses and checks the placeholders: each must be in `allowed`, and each
    /// of `required` must appear at least once.
    pub fn parse_checked(
        source: &str,
        allowed: &[&str],
        required: &[&str],
    ) -> Result<Self, TemplateError> {
        let template = Self::parse(source)?;
        for name in template.placeholders() {
            if !allowed.contains(&name) {
                return Err(TemplateError::Unknown {
                    name: name.to_string(),
                    allowed: allowed.join(", "),
                });
            }
        }
        for name in required {
            if !template.placeholders().any(|p| p == *name) {
                return Err(TemplateError::Missing {
                    name: (*name).to_string(),
                });
            }
        }
        Ok(template)
    }

    /// The placeholder names in order of appearance (repeats included).
    pub fn placeholders(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Var(name) => Some(name.as_str()),
            Segment::Text(_) => None,
        })
    }

    /// The template text as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Substitutes every placeholder with `values[name]`; values are inserted
    /// verbatim (no escaping, no trimming).
    pub fn fill(&self, values: &[(&str, &str)]) -> Result<String, TemplateError> {
        let mut out = String::with_capacity(self.source.len());
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.push_str(text),
                Segment::Var(name) => {
                    let value = values
                        .iter()
                        .find(|(key, _)| key == name)
                        .map(|(_, value)| *value)
                        .ok_or_else(|| TemplateError::Unfilled { name: name.clone() })?;
                    out.push_str(value);
                }
            }
        }
        Ok(out)
    }
}

/// Which part of a completion is graded (`docs/data-formats.md` §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum RegionMode {
    /// Thinking model, reference default (NeMo-Skills `parse_reasoning`): the
    /// text after the last `</think>`; no `</think>` (a truncated thought)
    /// means there is no answer.
    Strict,
    /// Thinking model, QwQ-eval style: the text after the last `</think>`, or
    /// the whole text when the tag is missing.
    Lenient,
    /// Non-thinking model: the whole text.
    Whole,
}

/// The end-of-thought tag the answer region is cut at.
pub const THINK_END: &str = "</think>";

/// The graded part of `text` under `mode`, trimmed of surrounding whitespace.
/// `None` only in [`RegionMode::Strict`] when `text` has no `</think>`.
pub fn answer_region(text: &str, mode: RegionMode) -> Option<&str> {
    match (mode, text.rsplit_once(THINK_END)) {
        (RegionMode::Whole, _) => Some(text.trim()),
        (RegionMode::Strict | RegionMode::Lenient, Some((_, after))) => Some(after.trim()),
        (RegionMode::Strict, None) => None,
        (RegionMode::Lenient, None) => Some(text.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_placeholders_and_keeps_single_braces() {
        let t = Template::parse("{{problem}}\nput it in \\boxed{}. {{ problem }}").unwrap();
        assert_eq!(
            t.fill(&[("problem", "1+1?")]).unwrap(),
            "1+1?\nput it in \\boxed{}. 1+1?"
        );
        assert_eq!(t.placeholders().collect::<Vec<_>>(), ["problem", "problem"]);
    }

    #[test]
    fn rejects_bad_templates() {
        assert_eq!(
            Template::parse("a {{x").unwrap_err(),
            TemplateError::Unclosed { offset: 2 }
        );
        assert!(matches!(
            Template::parse("{{a b}}"),
            Err(TemplateError::BadName { .. })
        ));
        assert!(matches!(
            Template::parse_checked("{{questoin}}", &["question"], &[]),
            Err(TemplateError::Unknown { .. })
        ));
        assert!(matches!(
            Template::parse_checked("no vars", &["question"], &["question"]),
            Err(TemplateError::Missing { .. })
        ));
        let t = Template::parse("{{a}}").unwrap();
        assert!(matches!(t.fill(&[]), Err(TemplateError::Unfilled { .. })));
    }

    #[test]
    fn region_is_after_last_think_end() {
        let text = "thinking </think> draft </think>\n\nAnswer: B\n";
        for mode in [RegionMode::Strict, RegionMode::Lenient] {
            assert_eq!(answer_region(text, mode), Some("Answer: B"));
        }
        assert_eq!(answer_region(text, RegionMode::Whole), Some(text.trim()));
    }

    #[test]
    fn missing_think_end_is_no_answer_only_when_strict() {
        let text = "still thinking \\boxed{3}";
        assert_eq!(answer_region(text, RegionMode::Strict), None);
        assert_eq!(answer_region(text, RegionMode::Lenient), Some(text));
        assert_eq!(answer_region("", RegionMode::Strict), None);
        assert_eq!(answer_region("</think>", RegionMode::Strict), Some(""));
    }
}
