//! The sandbox that runs untrusted programs: each run in its own user (as
//! root: an unprivileged uid; otherwise: a user namespace), mount, network
//! and PID namespaces, with a private filesystem view whose only writable
//! part is a size-capped scratch tmpfs that vanishes with the program
//! ([`super::mounts`]), in its own session and process group, under resource
//! limits and a memory cap on the whole process tree ([`super::memory`]),
//! with capped output and a hard wall-clock kill, and at most
//! [`SandboxConfig::max_concurrent`] at a time.
//!
//! [`Sandbox::new`] probes once that this isolation works here; where it does
//! not (no root and no usable user namespaces), it refuses with the reason
//! unless [`SandboxConfig::allow_unsandboxed`] (`--unsafe-no-sandbox`) is
//! set, and then runs programs in a temporary directory with whatever
//! isolation the kernel grants, recorded per run as [`Isolation`].
//!
//! What happens inside the child before `exec` is in [`super::isolation`],
//! the capped read loop and the kill in `collect`, the per-run uid and its
//! final sweep in `run_uid`; this file owns the configuration, the
//! concurrency bound, the probe and the spawn. Every run ends with the whole process tree dead:
//! the wall-clock kill signals the process group and the reaper, the reaper's
//! death takes down the PID namespace, and as root a final sweep kills every
//! process left with the run's uid.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::collect::{Watch, collect};
use super::error::SandboxError;
use super::interpreter::{interpreter_dirs, resolve_interpreter};
use super::isolation::{
    ChildPlan, FAILED, Identity, Isolation, STEP_ID_MAP, STEP_PRIVATE, STEP_UNSHARE,
};
use super::memory::GroupMemory;
use super::mounts::{MountPlan, WORK_DIR};
use super::run_uid::{UidLease, kill_all_of_uid, tasks_of_current_user};

/// Resource limits applied to every sandboxed program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// `RLIMIT_AS`. Default 4 GiB (as in many LiveCodeBench forks).
    pub address_space_bytes: u64,
    /// `RLIMIT_NPROC` for the run's uid (tasks, threads included). Default 64.
    pub max_processes: u64,
    /// `RLIMIT_FSIZE`: largest file the program may write. Default 16 MiB.
    pub file_size_bytes: u64,
    /// `RLIMIT_NOFILE`. Default 256.
    pub open_files: u64,
    /// Cap on each of stdout and stderr; past it the run is killed. Default 8 MiB.
    pub output_bytes: usize,
    /// Cap on the memory of the program's whole process tree (proportional
    /// set size, summed; see [`super::memory`]); past it the tree is killed.
    /// Default 4 GiB.
    pub group_memory_bytes: u64,
    /// Size of the private scratch tmpfs (`/tmp`, `/var/tmp`, `/dev/shm` and
    /// the working directory share it). Default 256 MiB.
    pub scratch_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            address_space_bytes: 4 << 30,
            max_processes: 64,
            file_size_bytes: 16 << 20,
            open_files: 256,
            output_bytes: 8 << 20,
            group_memory_bytes: 4 << 30,
            scratch_bytes: 256 << 20,
        }
    }
}

/// How to run sandboxed programs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxConfig {
    /// The Python interpreter: a path, or a name looked up on `PATH`.
    /// Default `python3`. As root, the first match that the unprivileged
    /// sandbox uid can execute is used (a `pyenv` shim in a private home is not).
    pub python: String,
    /// Runs at a time. Default: available cores − 1, at least 1 (more causes
    /// spurious time-outs, as the LiveCodeBench README warns).
    pub max_concurrent: usize,
    pub limits: Limits,
    /// Where run directories are created for unsandboxed runs (isolated runs
    /// write nothing to the host). Default: the system temp dir.
    pub temp_root: Option<PathBuf>,
    /// First of the uids programs run as when the harness is root; each
    /// concurrent run (process-wide) takes the lowest free uid from here.
    /// Default: derived from the harness pid so that two harnesses on one
    /// machine rarely share uids.
    pub uid_base: Option<u32>,
    /// Isolate runs in namespaces. Default true; false only to exercise the
    /// unsandboxed path (which then needs `allow_unsandboxed`).
    pub namespaces: bool,
    /// Run programs even where they cannot be isolated (`--unsafe-no-sandbox`):
    /// they can then read and write what the harness user can. Default false:
    /// [`Sandbox::new`] refuses instead.
    pub allow_unsandboxed: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            python: "python3".to_string(),
            max_concurrent: cores.saturating_sub(1).max(1),
            limits: Limits::default(),
            temp_root: None,
            uid_base: None,
            namespaces: true,
            allow_unsandboxed: false,
        }
    }
}

/// One program to run.
#[derive(Debug, Clone)]
pub struct RunRequest<'a> {
    /// Files written into the fresh directory before the start (name, content).
    pub files: Vec<(&'a str, &'a [u8])>,
    /// Arguments after the interpreter (e.g. `["-I", "driver.py", "job.json"]`).
    pub args: Vec<&'a str>,
    /// Hard wall-clock limit; past it the whole process tree is killed.
    pub wall: Duration,
    /// `RLIMIT_CPU` soft limit in seconds (the hard limit is one more).
    pub cpu_seconds: u64,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Exited with this code.
    Exited(i32),
    /// Killed by this signal (not by the harness).
    Signaled(i32),
    /// Killed by the harness at the wall-clock limit.
    WallTimeout,
    /// Killed by the harness when stdout or stderr passed the cap.
    OutputLimit,
    /// Killed by the harness when the process tree passed the memory cap.
    MemoryLimit,
    /// Killed by the harness because the stdout reader had what it needed.
    Stopped,
}

/// What a stdout reader tells the sandbox after each chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Enough: kill the run (status [`RunStatus::Stopped`]).
    Stop,
    /// Too much output: kill the run (status [`RunStatus::OutputLimit`]).
    OutputLimit,
}

/// What a run produced. `stdout` and `stderr` hold at most the output cap
/// (`stdout` is empty for [`Sandbox::run_streaming`]).
#[derive(Debug, Clone)]
pub struct RunOutput {
    pub status: RunStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub isolation: Isolation,
    /// The program's process group (also its session id).
    pub pgid: i32,
    pub elapsed: Duration,
    /// Largest memory of the whole process tree seen while polling (bytes).
    pub peak_memory_bytes: u64,
}

/// Whether runs are isolated, decided once by [`Sandbox::new`].
#[derive(Debug, Clone)]
enum Mode {
    Isolated {
        interpreter_dirs: Vec<PathBuf>,
    },
    /// The user allowed running without isolation; why there is none.
    Unsandboxed {
        reason: String,
    },
}

/// Runs untrusted programs; `Sync`, so one sandbox serves many threads.
#[derive(Debug)]
pub struct Sandbox {
    config: SandboxConfig,
    python: PathBuf,
    root: bool,
    mode: Mode,
    /// Runs in flight (the semaphore bounding concurrency).
    in_flight: Mutex<usize>,
    finished: Condvar,
}

impl Sandbox {
    /// Resolves the interpreter and probes the isolation with one trivial
    /// run. Where it fails, the sandbox is built unsandboxed only when
    /// [`SandboxConfig::allow_unsandboxed`] is set (a warning names the
    /// reason).
    ///
    /// # Errors
    /// [`SandboxError::Interpreter`] when no usable interpreter is found;
    /// [`SandboxError::NoIsolation`] with the reason when programs cannot be
    /// isolated here and running them unisolated was not allowed.
    pub fn new(config: SandboxConfig) -> Result<Self, SandboxError> {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let python = resolve_interpreter(&config.python, root)?;
        let mut sandbox = Self {
            in_flight: Mutex::new(0),
            finished: Condvar::new(),
            mode: Mode::Isolated {
                interpreter_dirs: interpreter_dirs(&python),
            },
            config,
            python,
            root,
        };
        let reason = if sandbox.config.namespaces {
            sandbox.probe().err()
        } else {
            Some("namespaces are switched off in the sandbox configuration".to_string())
        };
        if let Some(reason) = reason {
            if !sandbox.config.allow_unsandboxed {
                return Err(SandboxError::NoIsolation { reason });
            }
            tracing::warn!(
                "running generated code WITHOUT a sandbox (--unsafe-no-sandbox): {reason}"
            );
            sandbox.mode = Mode::Unsandboxed { reason };
        }
        Ok(sandbox)
    }

    /// One trivial isolated run; the reason when it does not work.
    fn probe(&self) -> Result<(), String> {
        let request = RunRequest {
            files: vec![("probe.py", &b"pass\n"[..])],
            args: vec!["-I", "probe.py"],
            wall: Duration::from_secs(30),
            cpu_seconds: 30,
        };
        let out = self.run(&request).map_err(|e| crate::error_chain(&e))?;
        match out.status {
            RunStatus::Exited(0) if out.isolation.mount_namespace => Ok(()),
            status => Err(format!(
                "the isolated probe run ended with {status:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        }
    }

    /// Why runs are not isolated (`None` when they are).
    pub fn unsandboxed_reason(&self) -> Option<&str> {
        match &self.mode {
            Mode::Isolated { .. } => None,
            Mode::Unsandboxed { reason } => Some(reason),
        }
    }

    /// The interpreter actually used (shims resolved).
    pub fn python(&self) -> &Path {
        &self.python
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// Runs one program under the configured interpreter; blocks while
    /// `max_concurrent` runs are in flight.
    ///
    /// # Errors
    /// Harness failures only: the directory or pipe could not be created, or
    /// the process could not be started. Anything the program does is in
    /// [`RunOutput`].
    pub fn run(&self, request: &RunRequest<'_>) -> Result<RunOutput, SandboxError> {
        let cap = self.config.limits.output_bytes;
        let mut stdout = Vec::new();
        let mut sink = |chunk: &[u8]| {
            let room = cap.saturating_sub(stdout.len());
            stdout.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if chunk.len() > room {
                Flow::OutputLimit
            } else {
                Flow::Continue
            }
        };
        let mut out = self.run_streaming(request, &mut sink)?;
        out.stdout = stdout;
        Ok(out)
    }

    /// Like [`Sandbox::run`], but every chunk of stdout goes to `on_stdout`
    /// as it arrives (nothing is kept), which may stop the run.
    ///
    /// # Errors
    /// As [`Sandbox::run`]; [`SandboxError::Isolation`] when an isolated run
    /// could not set up its namespaces or filesystem view.
    pub fn run_streaming(
        &self,
        request: &RunRequest<'_>,
        on_stdout: &mut dyn FnMut(&[u8]) -> Flow,
    ) -> Result<RunOutput, SandboxError> {
        self.acquire();
        let result = self.run_in_slot(request, on_stdout);
        self.release();
        result
    }

    fn acquire(&self) {
        let limit = self.config.max_concurrent.max(1);
        let mut n = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= limit {
            n = self.finished.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += 1;
    }

    fn release(&self) {
        let mut n = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        self.finished.notify_one();
    }

    fn run_in_slot(
        &self,
        request: &RunRequest<'_>,
        on_stdout: &mut dyn FnMut(&[u8]) -> Flow,
    ) -> Result<RunOutput, SandboxError> {
        let lease = self.root.then(|| UidLease::acquire(self.config.uid_base));
        let uid = lease.as_ref().map(|l| l.uid);
        let output = match &self.mode {
            Mode::Isolated { interpreter_dirs } => {
                let plan = MountPlan::new(
                    interpreter_dirs,
                    &request.files,
                    self.config.limits.scratch_bytes,
                    uid.map(|u| (u, u)),
                );
                self.spawn_and_wait(request, Path::new(WORK_DIR), uid, Some(plan), on_stdout)
            }
            Mode::Unsandboxed { .. } => {
                let dir = self.make_dir(request, uid)?;
                let output = self.spawn_and_wait(request, dir.path(), uid, None, on_stdout);
                if let Some(uid) = uid {
                    kill_all_of_uid(uid);
                }
                remove_dir(dir);
                return output;
            }
        };
        if let Some(uid) = uid {
            kill_all_of_uid(uid);
        }
        output
    }

    fn make_dir(
        &self,
        request: &RunRequest<'_>,
        uid: Option<u32>,
    ) -> Result<tempfile::TempDir, SandboxError> {
        let root = self
            .config
            .temp_root
            .clone()
            .unwrap_or_else(std::env::temp_dir);
        let dir = tempfile::Builder::new()
            .prefix("hyperscale-run-")
            .tempdir_in(&root)
            .map_err(|source| SandboxError::Io {
                what: format!("create a run directory in `{}`", root.display()),
                source,
            })?;
        let io_err = |what: String| move |source| SandboxError::Io { what, source };
        for (name, content) in &request.files {
            let path = dir.path().join(name);
            std::fs::write(&path, content)
                .map_err(io_err(format!("write `{}`", path.display())))?;
            if let Some(uid) = uid {
                std::os::unix::fs::chown(&path, Some(uid), Some(uid))
                    .map_err(io_err(format!("chown `{}`", path.display())))?;
            }
        }
        if let Some(uid) = uid {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(uid))
                .map_err(io_err(format!("chown `{}`", dir.path().display())))?;
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .map_err(io_err(format!("chmod `{}`", dir.path().display())))?;
        Ok(dir)
    }

    fn identity(&self, uid: Option<u32>) -> Identity {
        match uid {
            Some(uid) => Identity::Drop { uid, gid: uid },
            None => {
                // SAFETY: getuid/getgid have no preconditions.
                let (u, g) = unsafe { (libc::getuid(), libc::getgid()) };
                Identity::Unprivileged {
                    uid_map: CString::new(format!("{u} {u} 1\n")).expect("digits have no NUL"),
                    gid_map: CString::new(format!("{g} {g} 1\n")).expect("digits have no NUL"),
                }
            }
        }
    }

    fn rlimits(&self, cpu_seconds: u64, root: bool) -> Vec<(libc::__rlimit_resource_t, u64, u64)> {
        let l = &self.config.limits;
        // Without a uid of its own, the process limit counts every task of
        // the harness user, so it is set above what that user already runs.
        let nproc = if root {
            l.max_processes
        } else {
            tasks_of_current_user() + l.max_processes
        };
        vec![
            (libc::RLIMIT_CPU, cpu_seconds, cpu_seconds + 1),
            (
                libc::RLIMIT_AS,
                l.address_space_bytes,
                l.address_space_bytes,
            ),
            (libc::RLIMIT_NPROC, nproc, nproc),
            (libc::RLIMIT_FSIZE, l.file_size_bytes, l.file_size_bytes),
            (libc::RLIMIT_NOFILE, l.open_files, l.open_files),
            (libc::RLIMIT_CORE, 0, 0),
        ]
    }

    fn spawn_and_wait(
        &self,
        request: &RunRequest<'_>,
        dir: &Path,
        uid: Option<u32>,
        mounts: Option<MountPlan>,
        on_stdout: &mut dyn FnMut(&[u8]) -> Flow,
    ) -> Result<RunOutput, SandboxError> {
        let (status_read, status_write) = cloexec_pipe()?;
        let isolated = mounts.is_some();
        let plan = Arc::new(ChildPlan::new(
            self.identity(uid),
            self.config.namespaces,
            mounts,
            self.rlimits(request.cpu_seconds, uid.is_some()),
            status_write.as_raw_fd(),
        ));
        let mut command = Command::new(&self.python);
        if !isolated {
            // (Isolated runs change directory inside their own view.)
            command.current_dir(dir);
        }
        command
            .args(request.args.iter().map(OsString::from))
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .env("HOME", dir)
            .env("TMPDIR", if isolated { Path::new("/tmp") } else { dir })
            .env("OMP_NUM_THREADS", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: `apply` only makes async-signal-safe calls on data prepared above.
        let child_plan = Arc::clone(&plan);
        unsafe {
            command.pre_exec(move || child_plan.apply());
        }
        let start = Instant::now();
        let spawned = command.spawn();
        drop(status_write);
        let mut record = Vec::with_capacity(7);
        let _ = File::from(status_read).read_to_end(&mut record);
        let mut child = match spawned {
            Ok(child) => child,
            Err(source) => {
                return Err(match failure(&record) {
                    Some((step, errno)) => SandboxError::Isolation {
                        step: self.describe_step(step, &plan),
                        source: std::io::Error::from_raw_os_error(errno),
                    },
                    None => SandboxError::Spawn {
                        program: self.python.display().to_string(),
                        source,
                    },
                });
            }
        };
        let flags = record
            .first()
            .copied()
            .filter(|&b| b != FAILED)
            .unwrap_or(0);
        let pgid = i32::try_from(child.id()).unwrap_or(i32::MAX);
        let isolation = Isolation::from_flags(flags, uid);
        let reaper = child.id();
        let (status, stderr, peak_memory_bytes) = collect(
            &mut child,
            Watch {
                pgid,
                deadline: start + request.wall,
                stderr_cap: self.config.limits.output_bytes,
                on_stdout,
                memory: Some((
                    GroupMemory::new(reaper),
                    self.config.limits.group_memory_bytes,
                )),
            },
        )?;
        Ok(RunOutput {
            status,
            stdout: Vec::new(),
            stderr,
            isolation,
            pgid,
            elapsed: start.elapsed(),
            peak_memory_bytes,
        })
    }

    fn describe_step(&self, step: u16, plan: &ChildPlan) -> String {
        match step {
            STEP_UNSHARE => "create the user, mount, network and PID namespaces".into(),
            STEP_ID_MAP => "write the user namespace's uid/gid map".into(),
            STEP_PRIVATE => "make the mount tree private".into(),
            i => plan
                .mounts
                .as_ref()
                .map_or_else(|| format!("step {i}"), |m| m.describe(usize::from(i))),
        }
    }
}

/// `(step, errno)` from a failure record on the status pipe.
fn failure(record: &[u8]) -> Option<(u16, i32)> {
    match record {
        [FAILED, s0, s1, e0, e1, e2, e3, ..] => Some((
            u16::from_le_bytes([*s0, *s1]),
            i32::from_le_bytes([*e0, *e1, *e2, *e3]),
        )),
        _ => None,
    }
}

fn cloexec_pipe() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(SandboxError::Io {
            what: "create a status pipe".into(),
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Removes a run directory; a program may have made parts of it unreadable,
/// so permissions are restored first. Failures are logged, not fatal: the
/// directory is under the temp root and the grade is already known.
fn remove_dir(dir: tempfile::TempDir) {
    let path = dir.path().to_path_buf();
    if dir.close().is_ok() {
        return;
    }
    fn open_up(p: &Path) {
        let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700));
        if let Ok(entries) = std::fs::read_dir(p) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    open_up(&e.path());
                }
            }
        }
    }
    open_up(&path);
    if let Err(e) = std::fs::remove_dir_all(&path) {
        tracing::warn!("failed to remove run directory `{}`: {e}", path.display());
    }
}
