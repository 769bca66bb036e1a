//! [`error_chain`]: an error and its causes on one line, as `main` prints
//! them.
//!
//! The library's errors print their own message only: a variant that marks a
//! field `#[source]` (or `#[from]`) never repeats that source's text, so each
//! cause is printed exactly once, here, by walking [`Error::source`].

use std::error::Error;

/// `message: cause: cause …`: `e`'s message, then each error of its
/// [`Error::source`] chain in turn, joined by `": "`.
///
/// A cause whose text the line already ends with is left out: some
/// dependencies' errors (e.g. `serde_json`'s I/O errors) both print and
/// return their source. That is an exact-suffix check, not a search for the
/// cause anywhere in the line.
pub fn error_chain(e: &(dyn Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("failed to read `{path}`")]
    struct Read {
        path: String,
        #[source]
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("task `{task}`")]
    struct Task {
        task: String,
        #[source]
        source: Read,
    }

    #[test]
    fn each_cause_once_in_order() {
        let e = Task {
            task: "aime24".into(),
            source: Read {
                path: "a.jsonl".into(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            },
        };
        assert_eq!(
            error_chain(&e),
            "task `aime24`: failed to read `a.jsonl`: no such file"
        );
    }

    #[test]
    fn a_cause_the_message_already_ends_with_is_not_repeated() {
        #[derive(Debug, thiserror::Error)]
        #[error("bad: {0}")]
        struct Repeats(#[source] std::io::Error);
        let e = Repeats(std::io::Error::other("disk full"));
        assert_eq!(error_chain(&e), "bad: disk full");
    }
}
