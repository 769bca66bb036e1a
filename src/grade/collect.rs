//! Reading a sandboxed run's stdout and stderr under a cap and a deadline,
//! and killing its process tree when either is passed.

use std::os::fd::{AsRawFd, RawFd};
use std::process::Child;
use std::time::{Duration, Instant};

use super::error::SandboxError;
use super::sandbox::RunStatus;

/// After the program exits, how long to keep reading output that descendants
/// may still write before giving up on the pipes.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// Reads stdout and stderr until both close and the child has exited, or
/// until the deadline or the cap, which kill the process tree.
pub(crate) fn collect(
    child: &mut Child,
    pgid: i32,
    deadline: Instant,
    cap: usize,
) -> Result<(RunStatus, Vec<u8>, Vec<u8>), SandboxError> {
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
        for stream in streams.iter_mut().filter(|s| !s.2) {
            loop {
                // SAFETY: reading into a buffer we own from a descriptor we own.
                let n = unsafe { libc::read(stream.0, buf.as_mut_ptr().cast(), buf.len()) };
                if n > 0 {
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
    let mut streams = streams.into_iter().map(|s| s.1);
    let stdout = streams.next().unwrap_or_default();
    let stderr = streams.next().unwrap_or_default();
    Ok((status, stdout, stderr))
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
