//! Hostile programs against the sandbox. Each must end in the right
//! [`Verdict`], and afterwards the harness must be alive, its files intact,
//! no process of the run left anywhere, and a well-behaved program running
//! alongside must still be graded correct.
//!
//! Every test body runs under a watchdog ([`contained`]): if containment
//! fails and something hangs, the test fails after `WATCHDOG` instead of
//! hanging CI, and leftover processes are killed before the test panics.
//!
//! Where the kernel refuses an isolation (not root and no user namespaces),
//! the assertions that depend on it are replaced by a printed notice; the
//! verdict records which protections were in force.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hyperscale::grade::{
    CodeConfig, FailureKind, Outcome, RunRequest, RunStatus, Sandbox, SandboxConfig, Verdict,
    grade_code,
};
use hyperscale::task::{TestCase, TestKind};

const WATCHDOG: Duration = Duration::from_secs(180);

/// A sandbox whose runs happen under `root` with uids from `uid_base`, so
/// that leftovers can be found by directory and by uid.
struct Harness {
    sandbox: Sandbox,
    root: tempfile::TempDir,
    uid_base: u32,
}

impl Harness {
    fn new(uid_base: u32) -> Self {
        let root = tempfile::Builder::new()
            .prefix("hyperscale-sandbox-test-")
            .tempdir()
            .expect("temp dir");
        // The run directories live below; unprivileged run uids need to
        // traverse it (the runs' own directories are 0700).
        std::fs::set_permissions(
            root.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o711),
        )
        .expect("chmod");
        let sandbox = Sandbox::new(SandboxConfig {
            max_concurrent: 2,
            temp_root: Some(root.path().to_path_buf()),
            uid_base: Some(uid_base),
            ..SandboxConfig::default()
        })
        .expect("python3 is needed for the sandbox tests");
        Self {
            sandbox,
            root,
            uid_base,
        }
    }

    fn grade(&self, code: &str) -> Verdict {
        self.grade_within(code, 1)
    }

    /// Grades against one stdin test `1` → `1` with a per-test alarm of `timeout_s`.
    fn grade_within(&self, code: &str, timeout_s: u32) -> Verdict {
        let test = [TestCase {
            input: "1\n".into(),
            output: "1\n".into(),
            kind: TestKind::Stdin,
        }];
        let config = CodeConfig {
            timeout_s,
            ..CodeConfig::default()
        };
        let region = format!("```python\n{code}\n```");
        let verdict = grade_code(&self.sandbox, Some(&region), &test, None, &config)
            .expect("the sandbox itself must not fail");
        self.assert_nothing_left();
        verdict
    }

    /// No process runs as one of this harness's uids or inside its temp root.
    fn assert_nothing_left(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = self.leftovers();
            if left.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                for &pid in &left {
                    // SAFETY: killing a leftover test process.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
                panic!("processes survived their run: {left:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn leftovers(&self) -> Vec<i32> {
        let uids = self.uid_base..self.uid_base + 64;
        let mut left = Vec::new();
        for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
            let uid = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u32>().ok());
            let zombie = status
                .lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'));
            let cwd = std::fs::read_link(entry.path().join("cwd")).unwrap_or_default();
            let in_root = cwd.starts_with(self.root.path());
            if !zombie && (uid.is_some_and(|u| uids.contains(&u)) || in_root) {
                left.push(pid);
            }
        }
        left
    }

    fn python(&self, script: &str, wall: Duration) -> hyperscale::grade::RunOutput {
        let out = self
            .sandbox
            .run(&RunRequest {
                files: vec![("x.py", script.as_bytes())],
                args: vec!["-I", "x.py"],
                wall,
                cpu_seconds: wall.as_secs().max(1),
            })
            .expect("the sandbox itself must not fail");
        self.assert_nothing_left();
        out
    }
}

/// Runs `body` on a thread and fails if it does not finish within `WATCHDOG`.
fn contained(body: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        body();
        let _ = tx.send(());
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(()) => handle.join().expect("test body"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The body panicked: re-raise its panic.
            if let Err(e) = handle.join() {
                std::panic::resume_unwind(e);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("containment failed: test hung"),
    }
}

fn isolation(v: &Verdict) -> String {
    v.isolation.clone().unwrap_or_default()
}

fn notice(what: &str, v: &Verdict) {
    println!(
        "NOTICE: {what} not checked: isolation in force is `{}`",
        isolation(v)
    );
}

#[test]
fn a_well_behaved_program_is_correct_and_isolated() {
    contained(|| {
        let h = Harness::new(410_000);
        let v = h.grade("print(int(input()))");
        assert_eq!(v.outcome, Outcome::Correct, "{v:?}");
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            assert_eq!(
                isolation(&v),
                "net+pid+uid",
                "root must get every protection"
            );
        }
    });
}

#[test]
fn infinite_loops_time_out() {
    contained(|| {
        let h = Harness::new(410_100);
        let v = h.grade("while True:\n    pass");
        assert_eq!(
            (v.outcome, v.failure),
            (Outcome::Incorrect, Some(FailureKind::Timeout)),
            "{v:?}"
        );
        // Ignoring the alarm only moves the kill to the wall clock.
        let v = h.grade(
            "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass",
        );
        assert_eq!(v.failure, Some(FailureKind::Timeout), "{v:?}");
        assert!(v.detail.unwrap_or_default().contains("wall-clock"));
    });
}

#[test]
fn fork_bombs_are_limited_and_leave_nothing() {
    contained(|| {
        let h = Harness::new(410_200);
        let v = h.grade("import posix\nwhile True:\n    try:\n        posix.fork()\n    except OSError:\n        pass");
        assert_eq!(v.outcome, Outcome::Incorrect);
        assert!(
            matches!(
                v.failure,
                Some(FailureKind::Timeout | FailureKind::RuntimeError)
            ),
            "{v:?}"
        );
        // How many forks succeed before the process limit stops them.
        let script = "import posix, time\nn = 0\ntry:\n    while n < 10000:\n        if posix.fork() == 0:\n            time.sleep(60)\n            posix._exit(0)\n        n += 1\nexcept OSError:\n    pass\nprint(n, flush=True)";
        let out = h.python(script, Duration::from_secs(20));
        let text = String::from_utf8_lossy(&out.stdout);
        let forks: u64 = text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("fork count in {text:?} ({:?})", out.status));
        let limit = h.sandbox.config().limits.max_processes;
        println!(
            "forks before the limit stopped them: {forks} ({})",
            out.isolation.summary()
        );
        if out.isolation.uid.is_some() {
            assert!(forks < limit, "{forks} forks with a limit of {limit}");
        } else {
            println!(
                "NOTICE: {forks} forks; the limit counts the whole user without a uid of its own"
            );
            assert!(
                forks < 10000,
                "the process limit did not stop the fork loop"
            );
        }
    });
}

#[test]
fn a_fork_bomb_does_not_disturb_a_concurrent_run() {
    contained(|| {
        // Two sandboxes in one harness: their runs get distinct uids.
        let h = Harness::new(410_300);
        let bomb = {
            let other = Harness::new(420_300);
            std::thread::spawn(move || {
                other.grade("import posix\nwhile True:\n    try:\n        posix.fork()\n    except OSError:\n        pass")
            })
        };
        std::thread::sleep(Duration::from_millis(300));
        // A generous alarm: the bomb competes for the CPU while it lasts.
        let v = h.grade_within("print(int(input()))", 20);
        assert_eq!(v.outcome, Outcome::Correct, "{v:?}");
        let b = bomb.join().expect("bomb thread");
        assert_eq!(b.outcome, Outcome::Incorrect);
    });
}

#[test]
fn ten_gigabytes_is_a_memory_failure() {
    contained(|| {
        let h = Harness::new(410_400);
        let v = h.grade("x = bytearray(10 * 1024 ** 3)\nprint(1)");
        assert_eq!(v.failure, Some(FailureKind::Memory), "{v:?}");
    });
}

#[test]
fn writing_outside_the_run_directory_fails() {
    contained(|| {
        let h = Harness::new(410_500);
        let guarded = tempfile::tempdir().expect("temp dir");
        let victim = guarded.path().join("victim.txt");
        std::fs::write(&victim, "harness data").expect("write victim");
        let target = victim.display().to_string();
        let code = format!(
            "try:\n    open({target:?}, 'w').write('pwned')\nexcept OSError:\n    pass\nimport posix\ntry:\n    posix.unlink({target:?})\nexcept OSError:\n    pass\nopen({:?}, 'w').write('x')",
            guarded.path().join("new.txt").display().to_string()
        );
        let v = h.grade(&code);
        if isolation(&v).contains("uid") {
            assert_eq!(v.failure, Some(FailureKind::RuntimeError), "{v:?}");
            assert!(v.detail.unwrap_or_default().contains("PermissionError"));
            assert_eq!(
                std::fs::read_to_string(&victim).expect("victim still there"),
                "harness data"
            );
            assert!(!guarded.path().join("new.txt").exists());
        } else {
            notice("file protection", &v);
        }
        // Its own directory is writable, and it is gone afterwards.
        let v = h.grade("open('mine.txt', 'w').write('ok')\nprint(open('mine.txt').read() and 1)");
        assert_eq!(v.outcome, Outcome::Correct, "{v:?}");
        let left: Vec<PathBuf> = std::fs::read_dir(h.root.path())
            .expect("root")
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "run directories left: {left:?}");
    });
}

#[test]
fn sockets_reach_nothing() {
    contained(|| {
        let h = Harness::new(410_600);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let code = format!(
            "import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=3)\ns.sendall(b'hi')\nprint(1)"
        );
        let local = h.grade(&code);
        let external = h
            .grade("import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=3)\nprint(1)");
        if isolation(&local).contains("net") {
            assert_eq!(local.failure, Some(FailureKind::RuntimeError), "{local:?}");
            assert_eq!(
                external.failure,
                Some(FailureKind::RuntimeError),
                "{external:?}"
            );
            match listener.accept() {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                other => panic!("the harness's socket was reached: {other:?}"),
            }
        } else {
            notice("network isolation", &local);
        }
    });
}

#[test]
fn printing_a_gigabyte_hits_the_output_cap() {
    contained(|| {
        let h = Harness::new(410_700);
        // Through print(): the captured stdout is capped in the driver.
        // (Building the 1 GiB string takes a while: a generous alarm keeps
        // this from racing the per-test timeout.)
        let v = h.grade_within("print('x' * (1 << 30))", 60);
        assert_eq!(v.failure, Some(FailureKind::OutputLimit), "{v:?}");
        let v = h.grade("while True:\n    print('x' * 4096)");
        assert_eq!(v.failure, Some(FailureKind::OutputLimit), "{v:?}");
        // Straight to the file descriptor: capped and killed by the sandbox.
        let v = h.grade("import posix\nchunk = b'x' * (1 << 20)\nfor _ in range(1024):\n    posix.write(1, chunk)\nprint(1)");
        assert_eq!(v.failure, Some(FailureKind::OutputLimit), "{v:?}");
        let out = h.python("import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(1024):\n    sys.stdout.write(chunk)", Duration::from_secs(60));
        assert_eq!(out.status, RunStatus::OutputLimit);
        assert_eq!(out.stdout.len(), h.sandbox.config().limits.output_bytes);
    });
}

#[test]
fn killing_the_parent_hurts_only_the_program() {
    contained(|| {
        let h = Harness::new(410_800);
        // LCB's guard removes os.kill: a plain runtime error.
        let v = h.grade("import os\nos.kill(os.getppid(), 9)\nprint(1)");
        assert_eq!(v.failure, Some(FailureKind::RuntimeError), "{v:?}");
        // The raw syscall: in a PID namespace the parent is pid 0, so this
        // signals the program's own process group. The program is that
        // namespace's init, which the kernel shields from its own SIGKILL, and
        // as another uid it cannot signal its reaper: it carries on. Without
        // those, it kills itself or its reaper. Either way only the program.
        let v = h.grade("import posix\nposix.kill(posix.getppid(), 9)\nprint(1)");
        let iso = isolation(&v);
        if iso.contains("pid") && iso.contains("uid") {
            assert_eq!(v.outcome, Outcome::Correct, "{v:?}");
        } else {
            notice("exact outcome of killing pid 0", &v);
        }
        // Aiming at the harness by pid: invisible from a PID namespace, not
        // permitted for another uid. Without either it would succeed, so it
        // is only tried when one of them is in force.
        let iso = isolation(&v);
        if iso.contains("pid") || iso.contains("uid") {
            let me = std::process::id();
            let v = h.grade(&format!("import posix\nposix.kill({me}, 9)\nprint(1)"));
            assert_eq!(v.failure, Some(FailureKind::RuntimeError), "{v:?}");
            assert!(v.detail.unwrap_or_default().contains("Error"));
        } else {
            notice("killing the harness by pid", &v);
        }
        // Still here, and the sandbox still works.
        assert_eq!(h.grade("print(int(input()))").outcome, Outcome::Correct);
    });
}

#[test]
fn closing_stdout_is_graded_by_what_was_captured() {
    contained(|| {
        let h = Harness::new(410_900);
        // LCB makes closing the captured stdout an error (its close takes an argument).
        let v = h.grade("import sys\nsys.stdout.close()\nprint(1)");
        assert_eq!(v.failure, Some(FailureKind::RuntimeError), "{v:?}");
        // Closing the descriptors does not touch the captured stdout.
        let v = h.grade("import posix\nposix.close(1)\nposix.close(2)\nprint(int(input()))");
        assert_eq!(v.outcome, Outcome::Correct, "{v:?}");
        // Closing everything also closes the driver's result channel.
        let v = h.grade("import posix\nposix.closerange(0, 1024)\nprint(int(input()))");
        assert_eq!(v.failure, Some(FailureKind::RuntimeError), "{v:?}");
    });
}

#[test]
fn the_harness_files_survive_a_run_that_deletes_everything() {
    contained(|| {
        let h = Harness::new(411_000);
        let mine = tempfile::NamedTempFile::new().expect("temp file");
        writeln!(mine.as_file(), "keep").expect("write");
        let path = mine.path().display().to_string();
        let code = format!(
            "import shutil, posix\nfor p in [{path:?}, '/tmp', {:?}]:\n    try:\n        posix.unlink(p)\n    except OSError:\n        pass\nprint(1)",
            env!("CARGO_MANIFEST_DIR")
        );
        let v = h.grade(&code);
        if isolation(&v).contains("uid") {
            assert!(Path::new(&path).exists(), "harness file deleted");
            assert!(Path::new("/tmp").exists());
        } else {
            notice("file protection", &v);
        }
        assert_eq!(v.outcome, Outcome::Correct, "{v:?}");
    });
}
