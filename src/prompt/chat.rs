//! Chat templates: a model's Jinja `chat_template` rendered the way
//! Hugging Face transformers renders it (`apply_chat_template`).
//!
//! transformers compiles templates with jinja2's
//! `ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)`
//! and the loop-controls extension, keeps jinja2's default of dropping a
//! single trailing newline, adds the globals `raise_exception` and
//! `strftime_now`, replaces `tojson` with `json.dumps(ensure_ascii=False)`,
//! and renders with `messages`, `tools=None`, `documents=None`,
//! `add_generation_prompt` and the special tokens. This module does the
//! same with minijinja, plus minijinja-contrib's Python string methods
//! (`.startswith`, `.split`, `.strip`, ...).

use std::fmt::Write as _;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Kwargs, Serde, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind};
use serde::{Deserialize, Serialize};

/// Name of the one template held by a [`ChatTemplate`]'s environment.
const TEMPLATE_NAME: &str = "chat_template";

/// One chat turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }
    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }
}

/// Template variables besides `messages` and `add_generation_prompt`;
/// `None` leaves the variable undefined, as transformers does for a
/// special token the tokenizer does not have.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateVars {
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
    /// Qwen3's switch; `Some(false)` makes it emit an empty think block.
    pub enable_thinking: Option<bool>,
}

/// A chat template failed to compile or to render.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("invalid chat template: {0:#}")]
    Syntax(Error),
    #[error("chat template failed to render: {0:#}")]
    Render(Error),
}

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate").finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// Compiles `source` (a `chat_template` string) with transformers'
    /// settings.
    pub fn new(source: impl Into<String>) -> Result<Self, ChatError> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(false)
            .build()
            .map_err(ChatError::Syntax)?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_filter("tojson", tojson);
        env.add_template_owned(TEMPLATE_NAME, source.into())
            .map_err(ChatError::Syntax)?;
        Ok(ChatTemplate { env })
    }

    /// Renders the conversation. With `add_generation_prompt`, the text
    /// ends with the header of the assistant turn the model is to write.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
        vars: &TemplateVars,
    ) -> Result<String, ChatError> {
        let mut ctx: Vec<(&str, Value)> = vec![
            ("messages", Value::from(Serde(messages))),
            ("tools", Value::from(())),
            ("documents", Value::from(())),
            ("add_generation_prompt", Value::from(add_generation_prompt)),
        ];
        if let Some(bos) = &vars.bos_token {
            ctx.push(("bos_token", Value::from(bos.as_str())));
        }
        if let Some(eos) = &vars.eos_token {
            ctx.push(("eos_token", Value::from(eos.as_str())));
        }
        if let Some(thinking) = vars.enable_thinking {
            ctx.push(("enable_thinking", Value::from(thinking)));
        }
        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(ChatError::Render)?;
        template
            .render(Value::from_pairs(ctx))
            .map_err(ChatError::Render)
    }
}

/// transformers' `raise_exception(message)`: aborts rendering.
fn raise_exception(message: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message))
}

/// transformers' `strftime_now(format)`, in UTC.
fn strftime_now(format: String) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    strftime_utc(secs, &format)
}

/// Days since 1970-01-01 → (year, month 1..=12, day 1..=31), proleptic
/// Gregorian (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// C `strftime` for the common conversions (`%Y %y %m %d %e %H %I %M %S
/// %p %b %B %a %A %j %%`), at `secs` since the epoch, UTC. Other
/// conversions are copied through.
fn strftime_utc(secs: i64, format: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
    ];
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (sod / 3600, sod / 60 % 60, sod % 60);
    let weekday = DAYS[days.rem_euclid(7) as usize];
    let month_name = MONTHS[month as usize - 1];
    let yday = days - days_from_civil(year, 1, 1) + 1;
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let _ = match chars.next() {
            Some('Y') => write!(out, "{year}"),
            Some('y') => write!(out, "{:02}", year.rem_euclid(100)),
            Some('m') => write!(out, "{month:02}"),
            Some('d') => write!(out, "{day:02}"),
            Some('e') => write!(out, "{day:2}"),
            Some('H') => write!(out, "{hour:02}"),
            Some('I') => write!(out, "{:02}", (hour + 11) % 12 + 1),
            Some('M') => write!(out, "{minute:02}"),
            Some('S') => write!(out, "{second:02}"),
            Some('p') => write!(out, "{}", if hour < 12 { "AM" } else { "PM" }),
            Some('b') => write!(out, "{}", &month_name[..3]),
            Some('B') => write!(out, "{month_name}"),
            Some('a') => write!(out, "{}", &weekday[..3]),
            Some('A') => write!(out, "{weekday}"),
            Some('j') => write!(out, "{yday:03}"),
            Some('%') => write!(out, "%"),
            Some(other) => write!(out, "%{other}"),
            None => write!(out, "%"),
        };
    }
    out
}

/// Inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// transformers' `tojson`: `json.dumps(x, ensure_ascii=False, indent=indent)`
/// (separators `", "`/`": "`, or `","`/`": "` plus newlines with `indent`).
fn tojson(value: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    kwargs.assert_all_used()?;
    let mut out = String::new();
    write_json(&mut out, &value, indent, 0)?;
    Ok(Value::from_safe_string(out))
}

fn write_json(
    out: &mut String,
    value: &Value,
    indent: Option<usize>,
    depth: usize,
) -> Result<(), Error> {
    let newline = |out: &mut String, depth: usize| {
        if let Some(step) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(step * depth));
        }
    };
    let item_sep = if indent.is_some() { "," } else { ", " };
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => match value.as_i64() {
            Some(i) if value.to_string().parse::<i64>().is_ok() => {
                let _ = write!(out, "{i}");
            }
            _ => {
                let _ = write!(out, "{value}");
            }
        },
        ValueKind::String => write_json_string(out, value.as_str().unwrap_or_default()),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value.try_iter()?.collect();
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                write_json(out, item, indent, depth + 1)?;
            }
            if !items.is_empty() {
                newline(out, depth);
            }
            out.push(']');
        }
        ValueKind::Map => {
            let keys: Vec<Value> = value.try_iter()?.collect();
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                write_json_string(out, &key.to_string());
                out.push_str(": ");
                write_json(out, &value.get_item(key)?, indent, depth + 1)?;
            }
            if !keys.is_empty() {
                newline(out, depth);
            }
            out.push('}');
        }
        other => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("tojson cannot serialize a {other} value"),
            ));
        }
    }
    Ok(())
}

/// A JSON string as Python's `json.dumps(ensure_ascii=False)` writes it.
fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0C}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strftime_known_instants() {
        // 2024-02-29 13:05:09 UTC, a Thursday, day 60 of a leap year.
        let secs = 1_709_211_909;
        assert_eq!(
            strftime_utc(secs, "%Y-%m-%d %H:%M:%S %a %A %b %B %j %y %I%p %%"),
            "2024-02-29 13:05:09 Thu Thursday Feb February 060 24 01PM %"
        );
        assert_eq!(strftime_utc(0, "%d %b %Y"), "01 Jan 1970");
        assert_eq!(days_from_civil(2024, 2, 29), 1_709_211_909 / 86_400);
    }

    #[test]
    fn raise_exception_aborts_with_the_message() {
        let t = ChatTemplate::new("{{ raise_exception('only user turns') }}").unwrap();
        let err = t.render(&[], false, &TemplateVars::default()).unwrap_err();
        assert!(err.to_string().contains("only user turns"), "{err}");
    }

    #[test]
    fn trailing_newline_dropped_and_blocks_trimmed() {
        let t = ChatTemplate::new("{% for m in messages %}\n  {% if true %}\n{{ m.content }}|\n  {% endif %}\n{% endfor %}\n").unwrap();
        let out = t
            .render(
                &[Message::user("a"), Message::user("b")],
                false,
                &TemplateVars::default(),
            )
            .unwrap();
        assert_eq!(out, "a|\nb|\n");
    }

    #[test]
    fn tojson_matches_python_json_dumps() {
        let t = ChatTemplate::new(
            r#"{{ {"name": "f", "args": [1, "é\n", none, true]} | tojson }}|{{ [1, {"a": 2}] | tojson(indent=2) }}"#,
        )
        .unwrap();
        let out = t.render(&[], false, &TemplateVars::default()).unwrap();
        assert_eq!(
            out,
            "{\"name\": \"f\", \"args\": [1, \"é\\n\", null, true]}|[\n  1,\n  {\n    \"a\": 2\n  }\n]"
        );
    }
}
