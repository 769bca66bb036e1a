//! Finding the Python interpreter the sandbox runs: a configured name or path,
//! resolved to the real executable (through `pyenv`-style shims), and — when
//! the harness is root and programs run as an unprivileged uid — one that
//! such a uid can actually execute.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::error::SandboxError;

/// Resolves `python` (a name looked up on `PATH`, or a path) to an
/// interpreter executable. When `for_other_uid`, candidates that an
/// unrelated uid cannot execute are skipped.
///
/// # Errors
/// [`SandboxError::Interpreter`] naming every candidate tried and why it failed.
pub fn resolve_interpreter(python: &str, for_other_uid: bool) -> Result<PathBuf, SandboxError> {
    let candidates: Vec<PathBuf> = if python.contains('/') {
        vec![PathBuf::from(python)]
    } else {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).map(|d| d.join(python)).collect())
            .unwrap_or_default()
    };
    let mut reasons = Vec::new();
    for candidate in candidates {
        if !candidate.is_file() {
            continue;
        }
        match real_executable(&candidate) {
            Ok(real) if !for_other_uid || executable_by_others(&real) => return Ok(real),
            Ok(real) => reasons.push(format!(
                "`{}` → `{}` is not executable by an unprivileged uid",
                candidate.display(),
                real.display()
            )),
            Err(why) => reasons.push(format!("`{}`: {why}", candidate.display())),
        }
    }
    Err(SandboxError::Interpreter {
        python: python.to_string(),
        reason: if reasons.is_empty() && python.contains('/') {
            "no such file".to_string()
        } else if reasons.is_empty() {
            "not found on PATH".to_string()
        } else {
            reasons.join("; ")
        },
    })
}

/// The directories an isolated run must see for `python` to start: its
/// `sys.prefix`, `sys.base_prefix`, `sys.exec_prefix`, `sys.base_exec_prefix`
/// and the directory of the executable, canonicalised. Empty when the
/// interpreter cannot be asked (then only the system directories are seen).
pub fn interpreter_dirs(python: &Path) -> Vec<PathBuf> {
    let Ok(out) = Command::new(python)
        .args([
            "-I",
            "-c",
            "import sys\nfor p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix): print(p)",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .filter_map(|l| std::fs::canonicalize(l).ok())
        .collect();
    if let Some(parent) = python.parent() {
        dirs.push(parent.to_path_buf());
    }
    dirs.sort();
    dirs.dedup();
    dirs
}

/// Asks the candidate for `sys.executable` (resolves shims and symlinks).
fn real_executable(candidate: &Path) -> Result<PathBuf, String> {
    let out = Command::new(candidate)
        .args(["-I", "-c", "import sys; print(sys.executable)"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run it: {e}"))?;
    if !out.status.success() {
        return Err(format!("`-c` exited with {}", out.status));
    }
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if path.is_empty() {
        return Err("it reports no sys.executable".to_string());
    }
    std::fs::canonicalize(&path).map_err(|e| format!("`{path}`: {e}"))
}

/// True when "other" users may traverse every ancestor directory and execute
/// the file (the sandbox uid is neither owner nor group of system files).
fn executable_by_others(path: &Path) -> bool {
    let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode()).ok();
    if mode(path).is_none_or(|m| m & 0o001 == 0) {
        return false;
    }
    path.ancestors()
        .skip(1)
        .all(|dir| mode(dir).is_some_and(|m| m & 0o001 != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_interpreter_is_a_named_error() {
        let err = resolve_interpreter("/nonexistent/python9", false).unwrap_err();
        assert!(err.to_string().contains("python9"), "{err}");
    }

    #[test]
    fn system_directories_are_executable_by_others() {
        assert!(executable_by_others(Path::new("/bin/sh")) || !Path::new("/bin/sh").exists());
    }
}
