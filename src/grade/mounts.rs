//! The program's private filesystem view, built in its own mount namespace
//! (as root, or inside an unprivileged user namespace) before `exec`:
//!
//! * a new root: a small tmpfs holding read-only bind mounts of the system
//!   directories (`/usr`, `/bin`, `/sbin`, `/lib*`, `/etc`) and of the
//!   interpreter's prefixes; nothing else of the host — no home directories,
//!   no run directories, no caches, no harness working directory;
//! * `/dev` with only `null`, `zero`, `full`, `random`, `urandom`;
//!   `/proc` of the program's own PID namespace (where the kernel allows it);
//! * one size-capped tmpfs, the scratch space, mounted at `/tmp` and bound at
//!   `/var/tmp`, `/dev/shm` and `/home` (the program's `HOME` and working
//!   directory, holding the run's files). It lives in the namespace only: it
//!   disappears with the program's last process, even when the harness is
//!   killed, and nothing is ever written to the host's `/tmp`, `/var/tmp` or
//!   `/dev/shm`;
//! * everything but the scratch space is read-only (`mount_setattr`,
//!   recursively; per-mount remounts on kernels before 5.12).
//!
//! The parent prepares every path and byte ([`MountPlan`]); the child runs
//! only syscalls ([`MountPlan::apply`]) and reports the index of a failed
//! step, which [`MountPlan::describe`] names.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Where the new root is assembled (a mount point inside the private
/// namespace only; the host's directory is untouched).
const STAGE: &str = "/tmp";
/// System directories bound read-only when present.
const SYSTEM_DIRS: [&str; 8] = [
    "/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", "/etc",
];
const DEVICES: [&str; 5] = ["null", "zero", "full", "random", "urandom"];

/// The program's working directory and `HOME` inside the view.
pub(crate) const WORK_DIR: &str = "/home";

/// One step of building the view.
#[derive(Debug)]
enum Op {
    Mkdir(CString),
    Symlink {
        target: CString,
        link: CString,
    },
    /// An empty file to bind a device onto.
    Touch(CString),
    Bind {
        src: CString,
        dst: CString,
    },
    Tmpfs {
        dst: CString,
        data: CString,
    },
    Proc(CString),
    ReadOnly(CString),
    Chown(CString),
    Write {
        path: CString,
        content: Vec<u8>,
    },
    PivotRoot(CString),
}

/// Everything the child needs to build the view, prepared before the fork.
#[derive(Debug)]
pub(crate) struct MountPlan {
    ops: Vec<Op>,
    /// Bind targets, for the read-only fallback without `mount_setattr`.
    binds: Vec<CString>,
    /// As root: the unprivileged owner of the scratch space.
    owner: Option<(u32, u32)>,
    tmpfs: CString,
    proc_: CString,
    dot: CString,
    work: CString,
}

fn c(s: impl AsRef<[u8]>) -> CString {
    CString::new(s.as_ref().to_vec())
        .unwrap_or_else(|_| CString::new("/nonexistent").expect("no NUL"))
}

fn staged(p: &Path) -> CString {
    let mut s = STAGE.as_bytes().to_vec();
    s.extend_from_slice(p.as_os_str().as_bytes());
    c(s)
}

impl MountPlan {
    /// The plan for one run: `interpreter_dirs` are bound read-only at their
    /// own paths (the interpreter's prefixes); `files` are written into the
    /// working directory; `scratch_bytes` caps the scratch tmpfs; `owner`
    /// (root path) is the uid/gid the program will run as.
    pub(crate) fn new(
        interpreter_dirs: &[PathBuf],
        files: &[(&str, &[u8])],
        scratch_bytes: u64,
        owner: Option<(u32, u32)>,
    ) -> Self {
        let mut ops = Vec::new();
        let mut binds = Vec::new();
        let stage = Path::new(STAGE);
        ops.push(Op::Tmpfs {
            dst: c(STAGE),
            data: c("size=4m,nr_inodes=4096,mode=0755"),
        });
        let mut bound: Vec<PathBuf> = Vec::new();
        for dir in SYSTEM_DIRS {
            let path = Path::new(dir);
            let Ok(meta) = std::fs::symlink_metadata(path) else {
                continue;
            };
            if meta.file_type().is_symlink() {
                if let Ok(target) = std::fs::read_link(path) {
                    ops.push(Op::Symlink {
                        target: c(target.as_os_str().as_bytes()),
                        link: staged(path),
                    });
                }
            } else if meta.is_dir() {
                ops.push(Op::Mkdir(staged(path)));
                ops.push(Op::Bind {
                    src: c(dir),
                    dst: staged(path),
                });
                binds.push(staged(path));
                bound.push(path.to_path_buf());
            }
        }
        // The interpreter's own directories, unless a system bind covers them.
        let mut extra: Vec<&PathBuf> = interpreter_dirs
            .iter()
            .filter(|d| d.is_absolute() && d.is_dir())
            .filter(|d| !bound.iter().any(|b| d.starts_with(b)))
            .collect();
        extra.sort();
        extra.dedup();
        let mut kept: Vec<&PathBuf> = Vec::new();
        for d in extra {
            if !kept.iter().any(|k| d.starts_with(k)) {
                kept.push(d);
            }
        }
        for dir in kept {
            let mut partial = PathBuf::from("/");
            for part in dir.components().skip(1) {
                partial.push(part);
                ops.push(Op::Mkdir(staged(&partial)));
            }
            ops.push(Op::Bind {
                src: c(dir.as_os_str().as_bytes()),
                dst: staged(dir),
            });
            binds.push(staged(dir));
        }
        let dev = stage.join("dev");
        ops.push(Op::Mkdir(c(dev.as_os_str().as_bytes())));
        ops.push(Op::Tmpfs {
            dst: c(dev.as_os_str().as_bytes()),
            data: c("size=64k,nr_inodes=64,mode=0755"),
        });
        for name in DEVICES {
            let dst = c(dev.join(name).as_os_str().as_bytes());
            ops.push(Op::Touch(c(dst.as_bytes())));
            ops.push(Op::Bind {
                src: c(format!("/dev/{name}")),
                dst,
            });
        }
        for (name, target) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            ops.push(Op::Symlink {
                target: c(target),
                link: c(dev.join(name).as_os_str().as_bytes()),
            });
        }
        for dir in ["dev/shm", "proc", "tmp", "var", "var/tmp", "home"] {
            ops.push(Op::Mkdir(c(stage.join(dir).as_os_str().as_bytes())));
        }
        ops.push(Op::Proc(c(stage.join("proc").as_os_str().as_bytes())));
        ops.push(Op::ReadOnly(c(STAGE)));
        // The scratch space.
        let scratch = stage.join("tmp");
        let mut data = format!(
            "size={},nr_inodes={},mode=0700",
            scratch_bytes.max(1 << 20),
            (scratch_bytes / 4096).clamp(256, 1 << 20)
        );
        if let Some((uid, gid)) = owner {
            data.push_str(&format!(",uid={uid},gid={gid}"));
        }
        ops.push(Op::Tmpfs {
            dst: c(scratch.as_os_str().as_bytes()),
            data: c(data),
        });
        for (sub, at) in [("work", "home"), ("shm", "dev/shm")] {
            let src = scratch.join(sub);
            ops.push(Op::Mkdir(c(src.as_os_str().as_bytes())));
            ops.push(Op::Chown(c(src.as_os_str().as_bytes())));
            ops.push(Op::Bind {
                src: c(src.as_os_str().as_bytes()),
                dst: c(stage.join(at).as_os_str().as_bytes()),
            });
        }
        ops.push(Op::Bind {
            src: c(scratch.as_os_str().as_bytes()),
            dst: c(stage.join("var/tmp").as_os_str().as_bytes()),
        });
        for (name, content) in files {
            let path = c(scratch.join("work").join(name).as_os_str().as_bytes());
            ops.push(Op::Write {
                path: c(path.as_bytes()),
                content: content.to_vec(),
            });
            ops.push(Op::Chown(path));
        }
        ops.push(Op::PivotRoot(c(STAGE)));
        Self {
            ops,
            binds,
            owner,
            tmpfs: c("tmpfs"),
            proc_: c("proc"),
            dot: c("."),
            work: c(WORK_DIR),
        }
    }

    /// A description of step `index` for error messages.
    pub(crate) fn describe(&self, index: usize) -> String {
        let s = |c: &CString| c.to_string_lossy().into_owned();
        match self.ops.get(index) {
            None => format!("step {index}"),
            Some(Op::Mkdir(p)) => format!("mkdir `{}`", s(p)),
            Some(Op::Symlink { link, .. }) => format!("symlink `{}`", s(link)),
            Some(Op::Touch(p)) => format!("create `{}`", s(p)),
            Some(Op::Bind { src, dst }) => format!("bind `{}` at `{}`", s(src), s(dst)),
            Some(Op::Tmpfs { dst, .. }) => format!("mount a tmpfs at `{}`", s(dst)),
            Some(Op::Proc(p)) => format!("mount proc at `{}`", s(p)),
            Some(Op::ReadOnly(p)) => format!("make `{}` read-only", s(p)),
            Some(Op::Chown(p)) => format!("chown `{}`", s(p)),
            Some(Op::Write { path, .. }) => format!("write `{}`", s(path)),
            Some(Op::PivotRoot(p)) => format!("pivot_root into `{}`", s(p)),
        }
    }

    /// Builds the view; on failure returns the index of the failed step.
    ///
    /// # Safety
    /// Only in the forked child, inside a fresh mount namespace, with the
    /// capability to mount there. Only syscalls on prepared data.
    pub(crate) unsafe fn apply(&self) -> Result<(), (usize, i32)> {
        let errno = || unsafe { *libc::__errno_location() };
        // SAFETY: plain syscalls on NUL-terminated prepared data.
        unsafe {
            let root = b"/\0";
            if libc::mount(
                std::ptr::null(),
                root.as_ptr().cast(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                return Err((usize::MAX, errno()));
            }
            for (index, op) in self.ops.iter().enumerate() {
                let ok = match op {
                    Op::Mkdir(p) => libc::mkdir(p.as_ptr(), 0o755) == 0 || errno() == libc::EEXIST,
                    Op::Symlink { target, link } => {
                        libc::symlink(target.as_ptr(), link.as_ptr()) == 0
                    }
                    Op::Touch(p) => {
                        let fd = libc::open(
                            p.as_ptr(),
                            libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                            0o644,
                        );
                        fd >= 0 && libc::close(fd) == 0
                    }
                    Op::Bind { src, dst } => {
                        libc::mount(
                            src.as_ptr(),
                            dst.as_ptr(),
                            std::ptr::null(),
                            libc::MS_BIND | libc::MS_REC,
                            std::ptr::null(),
                        ) == 0
                    }
                    Op::Tmpfs { dst, data } => {
                        libc::mount(
                            self.tmpfs.as_ptr(),
                            dst.as_ptr(),
                            self.tmpfs.as_ptr(),
                            libc::MS_NOSUID | libc::MS_NODEV,
                            data.as_ptr().cast(),
                        ) == 0
                    }
                    // Optional: a kernel that refuses a new proc (a masked
                    // /proc above us) leaves /proc empty.
                    Op::Proc(p) => {
                        libc::mount(
                            self.proc_.as_ptr(),
                            p.as_ptr(),
                            self.proc_.as_ptr(),
                            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                            std::ptr::null(),
                        );
                        true
                    }
                    Op::ReadOnly(p) => self.read_only(p),
                    Op::Chown(p) => match self.owner {
                        Some((uid, gid)) => libc::chown(p.as_ptr(), uid, gid) == 0,
                        None => true,
                    },
                    Op::Write { path, content } => {
                        let fd = libc::open(
                            path.as_ptr(),
                            libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC | libc::O_CLOEXEC,
                            0o600,
                        );
                        let mut ok = fd >= 0;
                        let mut off = 0;
                        while ok && off < content.len() {
                            let n = libc::write(
                                fd,
                                content[off..].as_ptr().cast(),
                                content.len() - off,
                            );
                            if n > 0 {
                                off += n as usize;
                            } else if errno() != libc::EINTR {
                                ok = false;
                            }
                        }
                        if fd >= 0 {
                            libc::close(fd);
                        }
                        ok
                    }
                    Op::PivotRoot(p) => {
                        libc::chdir(p.as_ptr()) == 0
                            && libc::syscall(
                                libc::SYS_pivot_root,
                                self.dot.as_ptr(),
                                self.dot.as_ptr(),
                            ) == 0
                            && libc::umount2(self.dot.as_ptr(), libc::MNT_DETACH) == 0
                            && libc::chdir(self.work.as_ptr()) == 0
                    }
                };
                if !ok {
                    return Err((index, errno()));
                }
            }
        }
        Ok(())
    }

    /// Everything below `p` read-only and nosuid: `mount_setattr` with
    /// `AT_RECURSIVE`, else a remount of the root tmpfs and of every bind
    /// (keeping the flags a user namespace may not clear).
    unsafe fn read_only(&self, p: &CString) -> bool {
        #[repr(C)]
        struct MountAttr {
            attr_set: u64,
            attr_clr: u64,
            propagation: u64,
            userns_fd: u64,
        }
        const MOUNT_ATTR_RDONLY: u64 = 0x1;
        const MOUNT_ATTR_NOSUID: u64 = 0x2;
        const AT_RECURSIVE: libc::c_int = 0x8000;
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID,
            attr_clr: 0,
            propagation: 0,
            userns_fd: 0,
        };
        // SAFETY: syscalls on prepared data and a struct on the stack.
        unsafe {
            if libc::syscall(
                libc::SYS_mount_setattr,
                libc::AT_FDCWD,
                p.as_ptr(),
                AT_RECURSIVE,
                &attr as *const MountAttr,
                std::mem::size_of::<MountAttr>(),
            ) == 0
            {
                return true;
            }
            std::iter::once(p)
                .chain(self.binds.iter())
                .all(|target| remount_read_only(target))
        }
    }
}

/// `MS_REMOUNT | MS_BIND | MS_RDONLY` with the mount's locked flags kept.
unsafe fn remount_read_only(target: &CString) -> bool {
    /// The kernel's `struct statfs` on 64-bit Linux (libc's lacks `f_flags`).
    #[repr(C)]
    struct KernelStatfs {
        f_type: i64,
        f_bsize: i64,
        f_blocks: u64,
        f_bfree: u64,
        f_bavail: u64,
        f_files: u64,
        f_ffree: u64,
        f_fsid: [i32; 2],
        f_namelen: i64,
        f_frsize: i64,
        f_flags: i64,
        f_spare: [i64; 4],
    }
    // SAFETY: the statfs syscall into a zeroed struct we own; mount on
    // prepared data.
    unsafe {
        let mut st: KernelStatfs = std::mem::zeroed();
        if libc::syscall(
            libc::SYS_statfs,
            target.as_ptr(),
            &mut st as *mut KernelStatfs,
        ) != 0
        {
            return false;
        }
        let f = st.f_flags as libc::c_ulong;
        let mut flags = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | libc::MS_NOSUID;
        for (st_flag, ms_flag) in [
            (libc::ST_NODEV, libc::MS_NODEV),
            (libc::ST_NOEXEC, libc::MS_NOEXEC),
            (libc::ST_NOATIME, libc::MS_NOATIME),
            (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
            (libc::ST_RELATIME, libc::MS_RELATIME),
        ] {
            if f & st_flag != 0 {
                flags |= ms_flag;
            }
        }
        libc::mount(
            std::ptr::null(),
            target.as_ptr(),
            std::ptr::null(),
            flags,
            std::ptr::null(),
        ) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_binds_system_dirs_and_hides_the_rest() {
        let plan = MountPlan::new(
            &[
                PathBuf::from("/usr/lib/python3"),
                PathBuf::from("/opt/py/3.11"),
            ],
            &[("job.json", b"{}")],
            1 << 20,
            None,
        );
        let steps: Vec<String> = (0..plan.ops.len()).map(|i| plan.describe(i)).collect();
        let text = steps.join("\n");
        assert!(text.contains("make `/tmp` read-only"), "{text}");
        // The scratch tmpfs is mounted at `/tmp/tmp`; the job lands in its `work`.
        let job = Path::new("/tmp/tmp").join("work").join("job.json");
        assert!(
            text.contains(&format!("write `{}`", job.display())),
            "{text}"
        );
        // Under /usr: covered by the system bind.
        assert!(!text.contains("bind `/usr/lib/python3`"), "{text}");
        assert!(!text.contains("/home/"), "no host home directory: {text}");
        assert_eq!(
            steps.last().map(String::as_str),
            Some("pivot_root into `/tmp`")
        );
    }
}
