//! The memory of a sandboxed program as a whole: every process below the
//! run's reaper (the program, its forks, their orphans — which the PID
//! namespace's init, or the reaper as child subreaper, adopts), summed as
//! proportional set size so pages shared by forks are counted once.
//!
//! The sandbox polls this and kills the tree past the cap: a per-program
//! accounting that works as root and not, with or without cgroups. Between
//! two polls (`collect::MEMORY_EVERY`) a program can overshoot by what it
//! allocates in that time; each process is also under `RLIMIT_AS`.

use std::collections::HashSet;

/// The process tree below one reaper.
#[derive(Debug)]
pub(crate) struct GroupMemory {
    reaper: u32,
    peak: u64,
}

impl GroupMemory {
    pub(crate) fn new(reaper: u32) -> Self {
        Self { reaper, peak: 0 }
    }

    /// Bytes in use now by every process below the reaper (the reaper
    /// itself is a fork of the harness that never touches its pages and is
    /// left out).
    pub(crate) fn bytes(&mut self) -> u64 {
        let mut total = 0u64;
        let mut seen = HashSet::new();
        let mut stack = children(self.reaper);
        while let Some(pid) = stack.pop() {
            if !seen.insert(pid) {
                continue;
            }
            total += process_bytes(pid);
            stack.extend(children(pid));
        }
        self.peak = self.peak.max(total);
        total
    }

    /// The largest sum seen so far.
    pub(crate) fn peak_seen(&self) -> u64 {
        self.peak
    }
}

/// Children of every thread of `pid` (`/proc/PID/task/TID/children`).
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    out
}

/// PSS from `smaps_rollup`, else resident pages from `statm`; 0 for a
/// process that is gone.
fn process_bytes(pid: u32) -> u64 {
    if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        && let Some(kb) = text
            .lines()
            .find_map(|l| l.strip_prefix("Pss:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    {
        return kb * 1024;
    }
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/statm")) else {
        return 0;
    };
    // SAFETY: sysconf has no preconditions.
    let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    text.split_whitespace()
        .nth(1)
        .and_then(|r| r.parse::<u64>().ok())
        .map_or(0, |pages| pages * page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_child_is_counted() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep");
        let mut group = GroupMemory::new(std::process::id());
        // The test harness's other children may be counted too; the sleep is.
        assert!(group.bytes() > 0);
        let _ = child.kill();
        let _ = child.wait();
    }
}
