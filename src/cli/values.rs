//! Enumerated flag values (`clap::ValueEnum`) and the value parsers of
//! numeric flags, with their conversions into the library's types.

/// `--vote`: what majority voting (maj@k) votes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VoteArg {
    /// The raw extracted answer, as NeMo-Skills votes (`073` ≠ `73`).
    Raw,
    /// The grader's normalised key (parsed integer, letter).
    Normalised,
}

impl From<VoteArg> for crate::report::VoteOn {
    fn from(v: VoteArg) -> Self {
        match v {
            VoteArg::Raw => crate::report::VoteOn::Raw,
            VoteArg::Normalised => crate::report::VoteOn::Normalised,
        }
    }
}

/// `--policy`: which KV cache policy the other policy flags configure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PolicyKind {
    /// Keep every entry.
    Dense,
    /// Dynamic Memory Sparsification (needs a DMS checkpoint).
    Dms,
    /// StreamingLLM: attention sinks and a recent window.
    Window,
    /// TOVA: evict the entry the last query attends to least.
    Tova,
    /// Heavy hitters (accumulated attention) and a recent window.
    H2o,
    /// Quest: keep all, read the pages whose bounds score highest.
    Quest,
}

/// `--progress`: how a sweep shows its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressArg {
    /// Bars on a terminal, else a line every 30 s.
    Auto,
    /// Progress bars.
    Bars,
    /// A plain line every 30 s.
    Log,
    /// Nothing.
    None,
}

impl From<ProgressArg> for crate::sweep::ProgressMode {
    fn from(p: ProgressArg) -> Self {
        use crate::sweep::ProgressMode;
        match p {
            ProgressArg::Auto => ProgressMode::Auto,
            ProgressArg::Bars => ProgressMode::Bars,
            ProgressArg::Log => ProgressMode::Log { seconds: 30 },
            ProgressArg::None => ProgressMode::Hidden,
        }
    }
}

/// `compare --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompareFormatArg {
    /// Markdown, for a CI step summary.
    #[value(alias = "markdown")]
    Md,
    /// One JSON document.
    Json,
}

/// A `compare` tolerance: a finite number ≥ 0 (NaN would pass every
/// comparison, a negative one fail identical runs).
pub(super) fn tolerance(value: &str) -> Result<f64, String> {
    let t: f64 = value.parse().map_err(|e| format!("{e}"))?;
    if t.is_finite() && t >= 0.0 {
        Ok(t)
    } else {
        Err("must be a finite number >= 0".into())
    }
}
