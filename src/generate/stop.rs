//! When a sample ends, and why.

use serde::{Deserialize, Serialize};

/// Why a sample stopped generating. A truncated generation is data, not an
/// error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// An end-of-sequence token was produced.
    Eos,
    /// A stop string appeared in the text.
    Stop,
    /// The token limit was reached.
    Length,
    /// A remote engine failed on this sample after every retry: no text,
    /// no tokens. A record, not a harness failure, so the sweep goes on.
    Error,
}

/// What ends a sample besides the token limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StopCriteria {
    /// Token ids that end generation (not included in the text).
    pub eos_ids: Vec<u32>,
    /// Strings that end generation; the text is cut before the first one.
    pub stop_strings: Vec<String>,
}

impl StopCriteria {
    pub fn is_eos(&self, token: u32) -> bool {
        self.eos_ids.contains(&token)
    }

    /// Byte offset of the earliest stop string in `text`, if any.
    pub fn find_stop(&self, text: &str) -> Option<usize> {
        self.stop_strings
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| text.find(s.as_str()))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_stop_string_wins() {
        let c = StopCriteria {
            eos_ids: vec![2],
            stop_strings: vec!["END".into(), "\n\n".into(), String::new()],
        };
        assert_eq!(c.find_stop("abc\n\nxyz END"), Some(3));
        assert_eq!(c.find_stop("abc"), None);
        assert!(c.is_eos(2) && !c.is_eos(3));
    }
}
