//! Reading a sandboxed run's stdout and stderr under a cap and a deadline,
//! watching the memory of its whole process tree, and killing the tree when
//! a limit is passed or the caller has what it needs.

use std::os::fd::{AsRawFd, RawFd};
use std::process::Child;
use std::time::{Duration, Instant};

use super::error::SandboxError;
use super::memory::GroupMemory;
use super::sandbox::{Flow, RunStatus};

/// After the program exits, how long to keep reading output that descendants
/// may still write before giving up on the pipes.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// How often the process tree's memory is summed.
const MEMORY_EVERY: Duration = Duration::from_millis(40);

/// What [`collect`] watches and where stdout goes.
pub(crate) struct Watch<'a> {
    pub pgid: i32,
    pub deadline: Instant,
    /// Cap on stderr (stdout is capped by its sink).
    pub stderr_cap: usize,
    /// Every chunk read from stdout; `Flow::Stop` / `Flow::OutputLimit` kill the tree.
    pub on_stdout: &'a mut dyn FnMut(&[u8]) -> Flow,
    /// Cap on the tree's memory (bytes), summed every `MEMORY_EVERY`.
    pub memory: Option<(GroupMemory, u64)>,
}

/// Reads stdout and stderr until both close and the child has exited, or
/// until a limit is passed or the sink says stop, which kill the process
/// tree. Returns the status, stderr and the tree's peak memory (bytes).
pub(crate) fn collect(
    child: &mut Child,
    watch: Watch<'_>,
) -> Result<(RunStatus, Vec<u8>, u64), SandboxError> {
    let Watch {
        pgid,
        deadline,
        stderr_cap: cap,
        on_stdout,
        mut memory,
    } = watch;
    let mut peak = 0u64;
    let mut measured = Instant::now();
    let mut streams: Vec<(RawFd, Vec<u8>, bool)> = Vec::with_capacity(2);
    let out = child.stdout.take();
    let err = child.stderr.take();
    for fd in [
        out.as_ref().map(AsRawFd::as_raw_fd),
        err.as_ref().map(AsRawFd::as_raw_fd),
    ]
    .into_iter()
    .flatten()
    {
        // SAFETY: fcntl on a descriptor we own.
        unsafe {
            let fl = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
        streams.push((fd, Vec::new(), false));
    }
    // When the reaper exited. It is not reaped until the end, so its pid —
    // and with it the process group id — cannot be reused by another
    // process before the final group kill below.
    let mut exited: Option<Instant> = None;
    let mut killed: Option<RunStatus> = None;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        if exited.is_none() && has_exited(child) {
            exited = Some(Instant::now());
        }
        let all_closed = streams.iter().all(|s| s.2);
        match exited {
            Some(at) if all_closed || at.elapsed() > DRAIN_GRACE => break,
            _ => {}
        }
        if killed.is_none() && Instant::now() >= deadline {
            kill_tree(child, pgid);
            killed = Some(RunStatus::WallTimeout);
        }
        if let Some((group, limit)) = memory.as_mut()
            && killed.is_none()
            && measured.elapsed() >= MEMORY_EVERY
        {
            measured = Instant::now();
            let used = group.bytes();
            peak = peak.max(used);
            if used > *limit {
                kill_tree(child, pgid);
                killed = Some(RunStatus::MemoryLimit);
            }
        }
        let mut pfds: Vec<libc::pollfd> = streams
            .iter()
            .filter(|s| !s.2)
            .map(|s| libc::pollfd {
                fd: s.0,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        if !pfds.is_empty() {
            // SAFETY: pfds is a valid array of pollfd.
            unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 20) };
        } else {
            std::thread::sleep(Duration::from_millis(5));
        }
        for (index, stream) in streams.iter_mut().enumerate().filter(|(_, s)| !s.2) {
            loop {
                // SAFETY: reading into a buffer we own from a descriptor we own.
                let n = unsafe { libc::read(stream.0, buf.as_mut_ptr().cast(), buf.len()) };
                if n > 0 && index == 0 {
                    // stdout: to the sink, which caps or stops.
                    let flow = on_stdout(&buf[..n as usize]);
                    if flow != Flow::Continue && killed.is_none() {
                        kill_tree(child, pgid);
                        killed = Some(match flow {
                            Flow::OutputLimit => RunStatus::OutputLimit,
                            _ => RunStatus::Stopped,
                        });
                    }
                    if flow != Flow::Continue {
                        break;
                    }
                } else if n > 0 {
                    let n = n as usize;
                    let room = cap.saturating_sub(stream.1.len());
                    stream.1.extend_from_slice(&buf[..n.min(room)]);
                    if n > room && killed.is_none() {
                        kill_tree(child, pgid);
                        killed = Some(RunStatus::OutputLimit);
                    }
                    if n > room {
                        break;
                    }
                } else if n == 0 {
                    stream.2 = true;
                    break;
                } else {
                    let e = std::io::Error::last_os_error();
                    if e.kind() != std::io::ErrorKind::Interrupted {
                        if e.kind() != std::io::ErrorKind::WouldBlock {
                            stream.2 = true;
                        }
                        break;
                    }
                }
            }
        }
    }
    // Whatever the program left behind in its group goes too.
    // SAFETY: signalling a process group we created (its leader is unreaped).
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let exit = child.wait().map_err(|source| SandboxError::Io {
        what: "wait for the program".into(),
        source,
    })?;
    drop((out, err));
    let status = killed.unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        match (exit.code(), exit.signal()) {
            (Some(code), _) => RunStatus::Exited(code),
            (None, Some(sig)) => RunStatus::Signaled(sig),
            (None, None) => RunStatus::Signaled(0),
        }
    });
    if let Some((group, _)) = memory.as_mut() {
        peak = peak.max(group.peak_seen());
    }
    let stderr = streams.into_iter().nth(1).map(|s| s.1).unwrap_or_default();
    Ok((status, stderr, peak))
}

/// Kills the program's process group and its reaper; the reaper's death
/// takes the PID namespace with it.
fn kill_tree(child: &mut Child, pgid: i32) {
    // SAFETY: signalling a process group we created.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    // The reaper is our child; an error only means it is already gone.
    let _ = child.kill();
}

/// Whether the reaper has exited, without reaping it (`WNOWAIT`).
fn has_exited(child: &Child) -> bool {
    let pid: libc::id_t = child.id();
    // SAFETY: waitid writes into a zeroed siginfo we own.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(
            libc::P_PID,
            pid,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        // si_pid is non-zero once the child has changed state; an error
        // (no such child) also means there is nothing left to wait for.
        r != 0 || info.si_pid() != 0
    }
}
