//! What the sandboxed child does between `fork` and `exec` (the `pre_exec`
//! hook): a new session, namespaces, resource limits, a dropped identity, and
//! a reaper process that ties the program's lifetime to the harness.
//!
//! The sequence, in the forked child:
//!
//! 1. `setsid()`: its own session and process group, so the harness can
//!    `killpg` it without touching itself.
//! 2. Namespaces. Isolated runs (the default): as root
//!    `unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID)`, otherwise
//!    `unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID)`
//!    and a uid/gid map of the caller's own ids; any failure is reported
//!    through the status pipe (step and errno) and the run does not start.
//!    Unsandboxed runs (`--unsafe-no-sandbox`) try the same without the
//!    mount namespace and fall back silently; what succeeded is recorded as
//!    [`Isolation`] flags. The new network namespace has only a downed
//!    loopback: no network at all, not even to the harness's 127.0.0.1.
//! 3. `setrlimit`: CPU seconds, address space, processes, file size, open
//!    files, and core size 0.
//! 4. `fork()`. The parent of that fork stays behind as a **reaper** (and
//!    child subreaper, so orphans stay in the tree the memory cap sums): it
//!    closes every descriptor, waits for its child and dies the way the child
//!    died. The child is PID 1 of the new PID namespace (when there is one),
//!    so when it dies the kernel kills everything the program spawned, even
//!    processes that left the process group with `setsid`.
//! 5. In the program process, isolated runs build their filesystem view
//!    ([`super::mounts`]): a read-only system, a private size-capped scratch
//!    space, nothing of the host's homes, results or caches.
//!    Then, as root: drop all groups and switch to an
//!    unprivileged per-slot uid/gid. For root `RLIMIT_NPROC` is not enforced,
//!    so this switch is what makes the process limit stop a fork bomb; it also
//!    makes the harness's files and processes unwritable and unkillable.
//! 6. `PR_SET_PDEATHSIG(SIGKILL)` (the program dies with the reaper, and the
//!    reaper with the harness thread), `PR_SET_NO_NEW_PRIVS`, report flags.
//!
//! Only async-signal-safe calls run after the fork: every path, map and
//! limit is prepared by the parent in [`ChildPlan`].
//!
//! Unsandboxed runs where neither root nor user namespaces are available get
//! no network isolation, no PID namespace, the caller's own uid, and a
//! process limit of the user's current task count plus the configured
//! number: a program can reach the network, read and write the harness
//! user's files, and signal the harness user's processes. The sandbox only
//! runs that way when the user asked for it (`--unsafe-no-sandbox`).

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;

use serde::{Deserialize, Serialize};

use super::mounts::MountPlan;

/// Which protections were in force for one run (recorded with the result).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Isolation {
    /// A fresh network namespace (no interfaces up).
    pub network: bool,
    /// A fresh PID namespace whose init is the program.
    pub pid_namespace: bool,
    /// A user namespace (the unprivileged path).
    pub user_namespace: bool,
    /// The unprivileged uid the program ran as (root path only).
    pub uid: Option<u32>,
    /// A private filesystem view in a mount namespace ([`super::mounts`]).
    #[serde(default)]
    pub mount_namespace: bool,
}

const FLAG_NET: u8 = 1;
const FLAG_PID: u8 = 2;
const FLAG_USERNS: u8 = 4;
const FLAG_UID: u8 = 8;
const FLAG_MOUNT: u8 = 16;
/// First byte of a failure record on the status pipe:
/// `[FAILED, step (u16 LE), errno (i32 LE)]`.
pub(crate) const FAILED: u8 = 0xFE;
/// Failure steps that are not steps of the mount plan.
pub(crate) const STEP_UNSHARE: u16 = 0xFFFF;
pub(crate) const STEP_ID_MAP: u16 = 0xFFFE;
pub(crate) const STEP_PRIVATE: u16 = 0xFFFD;

impl Isolation {
    /// A compact record: the protections joined by `+` (`net`, `pid`,
    /// `mnt`, `userns`, `uid`), or `none`.
    pub fn summary(&self) -> String {
        let parts: Vec<&str> = [
            (self.network, "net"),
            (self.pid_namespace, "pid"),
            (self.mount_namespace, "mnt"),
            (self.user_namespace, "userns"),
            (self.uid.is_some(), "uid"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| *name)
        .collect();
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join("+")
        }
    }

    pub(crate) fn from_flags(flags: u8, uid: Option<u32>) -> Self {
        Self {
            network: flags & FLAG_NET != 0,
            pid_namespace: flags & FLAG_PID != 0,
            user_namespace: flags & FLAG_USERNS != 0,
            uid: uid.filter(|_| flags & FLAG_UID != 0),
            mount_namespace: flags & FLAG_MOUNT != 0,
        }
    }
}

/// Who the program runs as.
#[derive(Debug, Clone)]
pub(crate) enum Identity {
    /// The harness is root: switch to this uid/gid after the namespaces.
    Drop { uid: u32, gid: u32 },
    /// The harness is not root: try a user namespace mapping these lines.
    Unprivileged { uid_map: CString, gid_map: CString },
}

/// Everything the child needs, prepared before the fork.
#[derive(Debug)]
pub(crate) struct ChildPlan {
    pub identity: Identity,
    /// Try to create namespaces (off only to exercise the fallback).
    pub namespaces: bool,
    /// Isolated run: all namespaces are required and this view is built.
    pub mounts: Option<MountPlan>,
    /// `(resource, soft, hard)`.
    pub rlimits: Vec<(libc::__rlimit_resource_t, u64, u64)>,
    /// Write end of the flags pipe (close-on-exec).
    pub status_fd: RawFd,
    pub setgroups_path: CString,
    pub uid_map_path: CString,
    pub gid_map_path: CString,
    pub deny: CString,
}

impl ChildPlan {
    pub(crate) fn new(
        identity: Identity,
        namespaces: bool,
        mounts: Option<MountPlan>,
        rlimits: Vec<(libc::__rlimit_resource_t, u64, u64)>,
        status_fd: RawFd,
    ) -> Self {
        let c = |s: &str| CString::new(s).expect("static path has no NUL");
        Self {
            identity,
            namespaces,
            mounts,
            rlimits,
            status_fd,
            setgroups_path: c("/proc/self/setgroups"),
            uid_map_path: c("/proc/self/uid_map"),
            gid_map_path: c("/proc/self/gid_map"),
            deny: c("deny"),
        }
    }

    /// Runs in the forked child before `exec`.
    ///
    /// # Safety
    /// Must only be called from a `pre_exec` hook: it forks, may `_exit`, and
    /// uses only async-signal-safe libc calls.
    pub(crate) unsafe fn apply(&self) -> io::Result<()> {
        // SAFETY: all calls below are plain syscalls on prepared data.
        unsafe {
            check(libc::setsid())?;
            let mut flags = if self.mounts.is_some() {
                match self.unshare_all() {
                    Ok(flags) => flags,
                    Err((step, errno)) => return Err(self.report_failure(step, errno)),
                }
            } else if self.namespaces {
                self.unshare()
            } else {
                0
            };
            for &(resource, soft, hard) in &self.rlimits {
                let lim = libc::rlimit {
                    rlim_cur: soft,
                    rlim_max: hard,
                };
                check(libc::setrlimit(resource, &lim))?;
            }
            // The reaper: parent of the program, outside its PID namespace.
            check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL))?;
            check(libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1))?;
            let pid = check(libc::fork())?;
            if pid > 0 {
                reap(pid);
            }
            if let Some(plan) = &self.mounts {
                if let Err((step, errno)) = plan.apply() {
                    let step = u16::try_from(step).unwrap_or(STEP_PRIVATE);
                    return Err(self.report_failure(step, errno));
                }
                flags |= FLAG_MOUNT;
            }
            if let Identity::Drop { uid, gid } = self.identity {
                check(libc::setgroups(0, std::ptr::null()))?;
                check(libc::setgid(gid))?;
                check(libc::setuid(uid))?;
                flags |= FLAG_UID;
            }
            // After the uid switch, which clears it.
            check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL))?;
            check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
            let byte = [flags];
            if libc::write(self.status_fd, byte.as_ptr().cast(), 1) != 1 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Writes a failure record to the status pipe; returns the error.
    fn report_failure(&self, step: u16, errno: i32) -> io::Error {
        let s = step.to_le_bytes();
        let e = errno.to_le_bytes();
        let record = [FAILED, s[0], s[1], e[0], e[1], e[2], e[3]];
        // SAFETY: write on a descriptor we hold.
        unsafe { libc::write(self.status_fd, record.as_ptr().cast(), record.len()) };
        io::Error::from_raw_os_error(errno)
    }

    /// Every namespace an isolated run needs, or the step that failed.
    unsafe fn unshare_all(&self) -> Result<u8, (u16, i32)> {
        let errno = || unsafe { *libc::__errno_location() };
        // SAFETY: syscalls on prepared, NUL-terminated data.
        unsafe {
            let common = libc::CLONE_NEWNS | libc::CLONE_NEWNET | libc::CLONE_NEWPID;
            match &self.identity {
                Identity::Drop { .. } => {
                    if libc::unshare(common) != 0 {
                        return Err((STEP_UNSHARE, errno()));
                    }
                    Ok(FLAG_NET | FLAG_PID)
                }
                Identity::Unprivileged { uid_map, gid_map } => {
                    if libc::unshare(libc::CLONE_NEWUSER | common) != 0 {
                        return Err((STEP_UNSHARE, errno()));
                    }
                    write_file(&self.setgroups_path, &self.deny);
                    if !write_file(&self.uid_map_path, uid_map)
                        || !write_file(&self.gid_map_path, gid_map)
                    {
                        return Err((STEP_ID_MAP, errno()));
                    }
                    Ok(FLAG_USERNS | FLAG_NET | FLAG_PID)
                }
            }
        }
    }

    /// Creates the namespaces that are permitted; returns the flags obtained.
    unsafe fn unshare(&self) -> u8 {
        // SAFETY: syscalls on prepared, NUL-terminated data.
        unsafe {
            match &self.identity {
                Identity::Drop { .. } => {
                    if libc::unshare(libc::CLONE_NEWNET | libc::CLONE_NEWPID) == 0 {
                        FLAG_NET | FLAG_PID
                    } else if libc::unshare(libc::CLONE_NEWPID) == 0 {
                        FLAG_PID
                    } else if libc::unshare(libc::CLONE_NEWNET) == 0 {
                        FLAG_NET
                    } else {
                        0
                    }
                }
                Identity::Unprivileged { uid_map, gid_map } => {
                    let all = libc::CLONE_NEWUSER | libc::CLONE_NEWNET | libc::CLONE_NEWPID;
                    if libc::unshare(all) != 0 {
                        return 0;
                    }
                    // An unmapped uid still runs (as the overflow uid), so a
                    // failed map is not fatal.
                    write_file(&self.setgroups_path, &self.deny);
                    write_file(&self.uid_map_path, uid_map);
                    write_file(&self.gid_map_path, gid_map);
                    FLAG_USERNS | FLAG_NET | FLAG_PID
                }
            }
        }
    }
}

/// The reaper: close everything, wait for the program, die like it.
unsafe fn reap(child: libc::pid_t) -> ! {
    // SAFETY: only async-signal-safe syscalls; never returns.
    unsafe {
        if libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32) != 0 {
            for fd in 0..4096 {
                libc::close(fd);
            }
        }
        let mut status = 0;
        loop {
            let r = libc::waitpid(child, &mut status, 0);
            if r == child {
                break;
            }
            if r < 0 && *libc::__errno_location() != libc::EINTR {
                libc::_exit(127);
            }
        }
        if libc::WIFSIGNALED(status) {
            let sig = libc::WTERMSIG(status);
            libc::signal(sig, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, sig);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::kill(libc::getpid(), sig);
            libc::_exit(128 + sig);
        }
        libc::_exit(libc::WEXITSTATUS(status));
    }
}

unsafe fn write_file(path: &CString, content: &CString) -> bool {
    // SAFETY: open/write/close on NUL-terminated buffers.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return false;
        }
        let bytes = content.as_bytes();
        let ok = libc::write(fd, bytes.as_ptr().cast(), bytes.len()) == bytes.len() as isize;
        libc::close(fd);
        ok
    }
}

fn check<T: Default + PartialOrd>(r: T) -> io::Result<T> {
    if r < T::default() {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_decode() {
        let iso = Isolation::from_flags(FLAG_NET | FLAG_PID | FLAG_UID, Some(7));
        assert_eq!(
            iso,
            Isolation {
                network: true,
                pid_namespace: true,
                user_namespace: false,
                uid: Some(7),
                mount_namespace: false,
            }
        );
        assert_eq!(iso.summary(), "net+pid+uid");
        let iso = Isolation::from_flags(FLAG_NET | FLAG_PID | FLAG_MOUNT | FLAG_USERNS, None);
        assert_eq!(iso.summary(), "net+pid+mnt+userns");
        assert_eq!(Isolation::from_flags(0, Some(7)).uid, None);
        assert_eq!(Isolation::default().summary(), "none");
    }
}
