//! Identities of sandboxed runs: the per-run unprivileged uid (root path),
//! the final sweep that kills every process of that uid, and the task count
//! that sets the process limit when no uid of its own is available.

use std::sync::Mutex;

/// A uid used by one run at a time, process-wide: two sandboxes in one
/// harness never share a uid, so a run's final sweep of its uid can only hit
/// its own processes.
pub(crate) struct UidLease {
    pub(crate) uid: u32,
}

static UIDS_IN_USE: Mutex<Vec<u32>> = Mutex::new(Vec::new());

impl UidLease {
    pub(crate) fn acquire(base: Option<u32>) -> Self {
        // 100000 + (pid mod 4096) * 256: clear of system uids, and two
        // harnesses on one machine rarely overlap.
        let base = base.unwrap_or_else(|| 100_000 + (std::process::id() % 4096) * 256);
        let mut used = UIDS_IN_USE.lock().unwrap_or_else(|e| e.into_inner());
        let uid = (base..).find(|u| !used.contains(u)).unwrap_or(base);
        used.push(uid);
        Self { uid }
    }
}

impl Drop for UidLease {
    fn drop(&mut self) {
        let mut used = UIDS_IN_USE.lock().unwrap_or_else(|e| e.into_inner());
        used.retain(|&u| u != self.uid);
    }
}

/// Kills every process running as `uid` (root path): a forked helper takes
/// that uid and sends SIGKILL to everything it may signal, which is exactly
/// the processes of that uid.
pub(crate) fn kill_all_of_uid(uid: u32) {
    // SAFETY: the child only makes async-signal-safe calls and `_exit`s.
    unsafe {
        let pid = libc::fork();
        if pid == 0 {
            if libc::setgid(uid) == 0 && libc::setuid(uid) == 0 {
                libc::kill(-1, libc::SIGKILL);
            }
            libc::_exit(0);
        }
        if pid > 0 {
            let mut status = 0;
            while libc::waitpid(pid, &mut status, 0) < 0 && *libc::__errno_location() == libc::EINTR
            {
            }
        }
    }
}

/// Number of tasks (threads) whose real uid is the caller's, from `/proc`.
pub(crate) fn tasks_of_current_user() -> u64 {
    // SAFETY: getuid has no preconditions.
    let me = unsafe { libc::getuid() }.to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut total = 0u64;
    for entry in entries.flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next().map(str::to_string))
        };
        if field("Uid:").as_deref() == Some(me.as_str()) {
            total += field("Threads:").and_then(|t| t.parse().ok()).unwrap_or(1);
        }
    }
    total
}
