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
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
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
