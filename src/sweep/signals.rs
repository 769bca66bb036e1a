//! SIGINT (Ctrl-C) and SIGTERM (what Slurm, Kubernetes and `kill` send
//! before SIGKILL) end a sweep cleanly: every open [`LiveSession`] is closed
//! in its manifest (`ended_at`, the exact `records_written`, `complete =
//! false`, `error = "interrupted by SIGINT"`), one line on stderr says how
//! to resume, and the process then dies of the same signal, as an
//! uninterrupted program would (exit status 130 or 143 in a shell).
//!
//! The handler only records the signal and writes one byte to a pipe (both
//! async-signal-safe); a watcher thread does the work. Samples being
//! generated or graded at that moment are not recorded: the resume decodes
//! them again. A second signal while the sessions are being closed exits at
//! once. A signal that was ignored when the first session opened (a job
//! started with `nohup` or in the background) stays ignored.

use std::io::Write;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, Once, Weak};

use super::session::LiveSession;

/// Write end of the self-pipe, -1 until installed.
static PIPE: AtomicI32 = AtomicI32::new(-1);
/// The first signal received, 0 before.
static RECEIVED: AtomicI32 = AtomicI32::new(0);
static INSTALL: Once = Once::new();
/// Open sessions and the command that resumes each.
static SESSIONS: Mutex<Vec<(Weak<LiveSession>, String)>> = Mutex::new(Vec::new());

/// Close `session` on SIGINT/SIGTERM until it is dropped; `resume` is the
/// command that resumes it.
pub fn watch(session: &Arc<LiveSession>, resume: String) {
    INSTALL.call_once(install);
    let mut sessions = SESSIONS.lock().unwrap_or_else(|p| p.into_inner());
    sessions.retain(|(s, _)| s.strong_count() > 0);
    sessions.push((Arc::downgrade(session), resume));
}

/// The command line of this process without `--new-run` (a resume must not
/// move the interrupted run aside), quoted for a POSIX shell.
pub fn resume_command() -> String {
    std::env::args()
        .filter(|a| a != "--new-run")
        .map(|a| shell_quote(&a))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

fn name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

extern "C" fn on_signal(signal: libc::c_int) {
    if RECEIVED.swap(signal, Ordering::SeqCst) != 0 {
        // SAFETY: `_exit` is async-signal-safe.
        unsafe { libc::_exit(128 + signal) };
    }
    let byte = signal as u8;
    // SAFETY: `write` is async-signal-safe; the pipe outlives the process.
    unsafe { libc::write(PIPE.load(Ordering::SeqCst), (&byte as *const u8).cast(), 1) };
}

fn install() {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        tracing::warn!(
            "cannot watch for SIGINT/SIGTERM (no pipe): an interrupted session stays open in its manifest"
        );
        return;
    }
    PIPE.store(fds[1], Ordering::SeqCst);
    let read_fd = fds[0];
    let spawned = std::thread::Builder::new()
        .name("sweep-signals".into())
        .spawn(move || watcher(read_fd));
    if spawned.is_err() {
        tracing::warn!("cannot watch for SIGINT/SIGTERM (no thread)");
        return;
    }
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: plain sigaction calls on zeroed structs; the handler only
        // calls async-signal-safe functions.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(signal, std::ptr::null(), &mut old);
            if old.sa_sigaction == libc::SIG_IGN {
                continue;
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

fn watcher(read_fd: libc::c_int) {
    let mut byte = 0u8;
    loop {
        // SAFETY: reads one byte into `byte`.
        let n = unsafe { libc::read(read_fd, (&mut byte as *mut u8).cast(), 1) };
        if n == 1 {
            break;
        }
        if n == 0 {
            return;
        }
    }
    let signal = RECEIVED.load(Ordering::SeqCst);
    let sessions: Vec<(Arc<LiveSession>, String)> = {
        let list = SESSIONS.lock().unwrap_or_else(|p| p.into_inner());
        list.iter()
            .filter_map(|(s, cmd)| s.upgrade().map(|s| (s, cmd.clone())))
            .collect()
    };
    let mut stderr = std::io::stderr().lock();
    for (session, resume) in sessions {
        let reason = format!("interrupted by {}", name(signal));
        let dir = session.dir().display().to_string();
        let line = match session.close(false, Some(reason.clone())) {
            None => continue, // it had ended already
            Some(Ok(counts)) => format!(
                "{reason}: session closed in `{dir}/manifest.json` ({} records written this session); to resume, run: {resume}",
                counts.written
            ),
            Some(Err(e)) => format!(
                "{reason}: could not close the session in `{dir}`: {}; to resume, run: {resume}",
                crate::error_chain(&e)
            ),
        };
        let _ = writeln!(stderr, "\n{line}");
    }
    let _ = stderr.flush();
    drop(stderr);
    // Die of the signal, as without a handler.
    // SAFETY: restoring the default action and raising are plain libc calls.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_quoted_for_a_shell() {
        assert_eq!(shell_quote("configs/a.toml"), "configs/a.toml");
        assert_eq!(shell_quote("--shard=1/4"), "--shard=1/4");
        assert_eq!(shell_quote("my runs/x"), "'my runs/x'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
