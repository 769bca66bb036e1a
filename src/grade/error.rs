//! Errors of the grading stage. These are harness failures only; everything a
//! model or its program does wrong is a [`super::Verdict`].

use std::path::PathBuf;

/// The sandbox could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("no usable python interpreter `{python}`: {reason}")]
    Interpreter { python: String, reason: String },
    #[error("failed to {what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to start `{program}` in the sandbox")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot isolate generated code here: {reason}. Run as root, or allow unprivileged user \
         namespaces (sysctl kernel.unprivileged_userns_clone=1; on Ubuntu 23.10+ \
         kernel.apparmor_restrict_unprivileged_userns=0 or an AppArmor profile for hyperscale), \
         or pass --unsafe-no-sandbox to run it with your own user's access (see docs/security.md)"
    )]
    NoIsolation { reason: String },
    #[error("the sandbox failed to {step}")]
    Isolation {
        step: String,
        #[source]
        source: std::io::Error,
    },
}

/// Grading could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum GradeError {
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("the grader `{grader}` cannot grade an expected answer of kind `{expected}`")]
    Mismatch {
        grader: &'static str,
        expected: &'static str,
    },
    #[error("code grading needs a sandbox, but none was given")]
    NoSandbox,
    #[error("the code driver returned an unreadable result: {detail}")]
    Driver { detail: String },
    #[error("failed to read completions `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}`:{line}: field `{field}`: {reason}")]
    Completion {
        path: PathBuf,
        line: usize,
        field: String,
        reason: String,
    },
    #[error(
        "`{path}`:{line}: problem `{problem_id}` repeat {repeat} sample {sample} is already on line {first}; each (problem_id, repeat, sample) may appear once"
    )]
    Duplicate {
        path: PathBuf,
        line: usize,
        first: usize,
        problem_id: String,
        repeat: u32,
        sample: u64,
    },
    #[error("`{path}`:{line}: no expected answer for problem `{problem_id}` sample {sample}")]
    UnknownProblem {
        path: PathBuf,
        line: usize,
        problem_id: String,
        sample: u64,
    },
}
