//! Kernel launches per decode step on the cubecl backends, counted by
//! cubecl itself.
//!
//! cubecl 0.10's client, at profiling level `minimal`, records every kernel
//! it launches ("Executing <kernel>") without timing it, so without adding a
//! synchronisation. `hyperscale bench decode --profile` asks for that log
//! ([`request`]) before the device opens — cubecl reads its configuration
//! once, in [`crate::kernel_cache::configure`] — and counts the lines around
//! the timed steps ([`settled_count`]). Host↔device transfers and
//! synchronisations are not in that log; they are not counted here.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

static LOG: OnceLock<PathBuf> = OnceLock::new();

/// Ask for the launch log (a fresh file under the temp dir); takes effect
/// only if called before the first device is opened. Returns its path.
pub fn request() -> PathBuf {
    LOG.get_or_init(|| {
        std::env::temp_dir().join(format!("hyperscale-launches-{}.log", std::process::id()))
    })
    .clone()
}

/// The launch log, when [`request`] was called.
pub fn requested() -> Option<&'static Path> {
    LOG.get().map(PathBuf::as_path)
}

/// Launches recorded in `log` so far.
pub fn count_in(log: &Path) -> u64 {
    std::fs::read_to_string(log)
        .map(|text| text.lines().filter(|l| l.starts_with("Executing")).count() as u64)
        .unwrap_or(0)
}

/// Launches recorded so far, once the log has caught up (cubecl writes it
/// from a background task): the count after it stays unchanged for
/// [`SETTLED_POLLS`] polls 50 ms apart, within 5 s. (One unchanged poll was
/// not enough under load: in a CI run on 2 busy cores the f32 profile of
/// `tests/cli/device_counts.rs` once counted no launch at all.) `None` without a log or when cubecl never wrote one (a CPU
/// run, or a device opened before [`request`]).
pub fn settled_count() -> Option<u64> {
    let log = requested()?;
    if !log.exists() {
        return None;
    }
    let start = Instant::now();
    let mut last = count_in(log);
    let mut unchanged = 0;
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let now = count_in(log);
        unchanged = if now == last { unchanged + 1 } else { 0 };
        if unchanged >= SETTLED_POLLS || start.elapsed() > Duration::from_secs(5) {
            return Some(now);
        }
        last = now;
    }
}

/// Consecutive unchanged polls of the launch log that count as settled.
const SETTLED_POLLS: u32 = 6;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_execution_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("launches.log");
        assert_eq!(count_in(&log), 0, "no file: none");
        std::fs::write(&log, "Executing matmul\nsomething else\nExecuting add\n").unwrap();
        assert_eq!(count_in(&log), 2);
    }
}
