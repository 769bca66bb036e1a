//! One writer per run directory: a sweep (and `merge` into its `--out`)
//! holds an exclusive `flock` on `<dir>/sweep.lock` for as long as it may
//! write there.
//!
//! The lock is the kernel's, not the file's existence: it is released when
//! the holder exits, however it exits (SIGKILL and OOM included), so a
//! stale lock file never blocks anyone. The holder writes its pid, host and
//! start time into the file so that a refused second process can say who
//! holds the directory. `flock` is advisory and per open file description:
//! two opens in one process exclude each other too. On NFS, Linux emulates
//! `flock` with POSIX byte-range locks, which hold across clients.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{LOCK_FILE, RecordError, utc_timestamp};

/// How long a lock recorded by this process may stay held by a forked
/// child's inherited descriptor before [`RunLock::acquire`] gives up.
const SELF_HELD_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// An exclusive lock on a run directory, released on drop (or at exit).
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    // Held for its lock; closing the file releases it.
    _file: File,
}

impl RunLock {
    /// Lock `dir` (which must exist) without waiting. Fails with
    /// [`RecordError::Locked`] naming the holder when another process, or
    /// another open in this one, holds it.
    pub fn acquire(dir: &Path) -> Result<Self, RecordError> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| RecordError::io("open", &path, e))?;
        // A lock that this very process recorded, released since, can still be
        // held for a moment by a child forked (by any thread) before its
        // `exec` closes the inherited descriptor: wait out that window (at
        // most `SELF_HELD_WAIT`) before calling the directory taken. Another
        // process's lock fails at once.
        let ours = format!("pid {} ", std::process::id());
        let deadline = std::time::Instant::now() + SELF_HELD_WAIT;
        let mut holder = String::new();
        let outcome = loop {
            match file.try_lock() {
                Err(TryLockError::WouldBlock) => {
                    holder.clear();
                    let _ = file.seek(SeekFrom::Start(0));
                    let _ = file.read_to_string(&mut holder);
                    if holder.starts_with(&ours) && std::time::Instant::now() < deadline {
                        std::thread::sleep(std::time::Duration::from_millis(10));
                        continue;
                    }
                    break Err(TryLockError::WouldBlock);
                }
                other => break other,
            }
        };
        match outcome {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = holder.trim();
                return Err(RecordError::Locked {
                    dir: dir.to_path_buf(),
                    holder: if holder.is_empty() {
                        "a process that has not written its pid yet".into()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(RecordError::io("lock", &path, e)),
        }
        let holder = format!(
            "pid {} on {} since {}\n",
            std::process::id(),
            hostname(),
            utc_timestamp(SystemTime::now())
        );
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)).map(|_| ()))
            .and_then(|()| file.write_all(holder.as_bytes()))
            .map_err(|e| RecordError::io("write", &path, e))?;
        Ok(RunLock { path, _file: file })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "this host".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_directory_fails_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        let e = RunLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains(&format!("pid {}", std::process::id())) && e.contains("in use"),
            "{e}"
        );
        drop(first);
        // Released with the file: the next one gets it.
        let again = RunLock::acquire(dir.path()).unwrap();
        assert!(again.path().ends_with(LOCK_FILE));
    }
}
