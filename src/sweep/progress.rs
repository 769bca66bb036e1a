//! Progress of a sweep: the pipeline updates counters, a reporter task shows
//! them — indicatif bars on a terminal (overall records with ETA; the current
//! width group's problems with generated tokens/s), plain periodic lines
//! otherwise (CI logs).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// The `tracing` target of the plain progress lines ([`ProgressMode::Log`]):
/// the binary prints events of this target on stderr as they are (no time,
/// no level), whatever `RUST_LOG` says.
pub const PROGRESS_TARGET: &str = "hyperscale::progress";

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProgressMode {
    /// Bars when stderr is a terminal, else a log line every 30 s.
    #[default]
    Auto,
    Bars,
    /// A plain line every `seconds`, logged under [`PROGRESS_TARGET`].
    Log {
        seconds: u64,
    },
    Hidden,
}

impl ProgressMode {
    fn resolve(self) -> ProgressMode {
        match self {
            ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Bars,
            ProgressMode::Auto => ProgressMode::Log { seconds: 30 },
            other => other,
        }
    }
}

/// Counters shared by the generation thread, the writer and the reporter.
#[derive(Debug)]
pub struct ProgressState {
    /// Generated tokens (the generator adds to it as it decodes).
    pub tokens: AtomicU64,
    /// Records written this session.
    pub written: AtomicU64,
    /// Records this session has to write.
    pub total: u64,
    groups: usize,
    current: Mutex<Current>,
    done: AtomicBool,
}

#[derive(Debug, Default, Clone)]
struct Current {
    group: usize,
    label: String,
    problem: usize,
    problems: usize,
}

impl ProgressState {
    pub fn new(total: u64, groups: usize) -> Arc<Self> {
        Arc::new(ProgressState {
            tokens: AtomicU64::new(0),
            written: AtomicU64::new(0),
            total,
            groups,
            current: Mutex::new(Current::default()),
            done: AtomicBool::new(false),
        })
    }

    /// The generation thread starts problem `problem` of `problems` in group `group`.
    pub fn enter(&self, group: usize, label: &str, problem: usize, problems: usize) {
        if let Ok(mut c) = self.current.lock() {
            if c.group != group || c.label != label {
                c.label = label.to_string();
            }
            c.group = group;
            c.problem = problem;
            c.problems = problems;
        }
    }

    /// Stop the reporter after one last update.
    pub fn finish(&self) {
        self.done.store(true, Ordering::SeqCst);
    }

    fn snapshot(&self) -> Current {
        self.current.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// Show `state` until [`ProgressState::finish`] is called.
pub async fn report(mode: ProgressMode, state: Arc<ProgressState>) {
    let mode = mode.resolve();
    let (tick, bars) = match mode {
        ProgressMode::Hidden => return,
        ProgressMode::Bars => (Duration::from_millis(200), Some(Bars::new(&state))),
        ProgressMode::Log { seconds } => (Duration::from_secs(seconds.max(1)), None),
        ProgressMode::Auto => unreachable!("resolved above"),
    };
    let start = Instant::now();
    let mut last = (Instant::now(), 0u64);
    let mut rate = 0.0f64;
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    let mut next_show = Instant::now() + tick;
    loop {
        interval.tick().await;
        let finished = state.done.load(Ordering::SeqCst);
        if !finished && Instant::now() < next_show {
            continue;
        }
        next_show = Instant::now() + tick;
        let tokens = state.tokens.load(Ordering::Relaxed);
        let dt = last.0.elapsed().as_secs_f64();
        if dt > 0.0 {
            let now = (tokens - last.1) as f64 / dt;
            rate = if rate == 0.0 {
                now
            } else {
                0.7 * rate + 0.3 * now
            };
        }
        last = (Instant::now(), tokens);
        let current = state.snapshot();
        let written = state.written.load(Ordering::Relaxed);
        match &bars {
            Some(b) => b.show(&current, written, rate, state.groups),
            None => tracing::info!(
                target: PROGRESS_TARGET,
                "{}",
                log_line(
                    &current,
                    written,
                    state.total,
                    rate,
                    start.elapsed(),
                    state.groups
                )
            ),
        }
        if finished {
            if let Some(b) = bars {
                b.overall.finish();
                b.trial.finish_and_clear();
            }
            return;
        }
    }
}

struct Bars {
    overall: ProgressBar,
    trial: ProgressBar,
}

impl Bars {
    fn new(state: &ProgressState) -> Self {
        let multi = MultiProgress::new();
        let overall = multi.add(ProgressBar::new(state.total));
        overall.set_style(
            ProgressStyle::with_template(
                "sweep  [{bar:30}] {pos}/{len} records  {elapsed_precise} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let trial = multi.add(ProgressBar::new(1));
        trial.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} problems  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Bars { overall, trial }
    }

    fn show(&self, c: &Current, written: u64, rate: f64, groups: usize) {
        self.overall.set_position(written);
        self.trial
            .set_prefix(format!("{}/{groups} {}", c.group + 1, c.label));
        self.trial.set_length(c.problems.max(1) as u64);
        self.trial.set_position(c.problem as u64);
        self.trial.set_message(format!("{rate:.1} tok/s"));
    }
}

/// One plain progress line.
fn log_line(
    c: &Current,
    written: u64,
    total: u64,
    rate: f64,
    elapsed: Duration,
    groups: usize,
) -> String {
    let pct = if total == 0 {
        100.0
    } else {
        100.0 * written as f64 / total as f64
    };
    let eta = if written == 0 || written >= total {
        "-".to_string()
    } else {
        let secs = elapsed.as_secs_f64() / written as f64 * (total - written) as f64;
        format!("{}m{:02}s", secs as u64 / 60, secs as u64 % 60)
    };
    format!(
        "sweep: {written}/{total} records ({pct:.0}%), group {}/{groups} `{}` problem {}/{}, {rate:.1} tok/s, eta {eta}",
        c.group + 1,
        c.label,
        c.problem + 1,
        c.problems
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_line_reports_counts_rate_and_eta() {
        let c = Current {
            group: 1,
            label: "aime24 tova cr2 L64 seed0".into(),
            problem: 3,
            problems: 5,
        };
        let line = log_line(&c, 25, 100, 12.34, Duration::from_secs(60), 4);
        assert_eq!(
            line,
            "sweep: 25/100 records (25%), group 2/4 `aime24 tova cr2 L64 seed0` problem 4/5, 12.3 tok/s, eta 3m00s"
        );
    }

    /// Collects the target and message of every event.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<(String, String)>>>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _ctx: tracing_subscriber::layer::Context<'_, S>,
        ) {
            struct Message(String);
            impl tracing::field::Visit for Message {
                fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                    if f.name() == "message" {
                        self.0 = format!("{v:?}");
                    }
                }
            }
            let mut m = Message(String::new());
            event.record(&mut m);
            let target = event.metadata().target().to_string();
            self.0.lock().unwrap().push((target, m.0));
        }
    }

    /// The library logs through `tracing`, never `eprintln!`: the `log`
    /// mode's lines are events under [`PROGRESS_TARGET`] (the binary prints
    /// them on stderr as they are).
    #[test]
    fn log_mode_lines_go_through_tracing_under_the_progress_target() {
        use tracing_subscriber::layer::SubscriberExt;
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry().with(capture.clone());
        let state = ProgressState::new(4, 1);
        state.written.store(4, Ordering::Relaxed);
        state.finish();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        tracing::subscriber::with_default(subscriber, || {
            rt.block_on(report(ProgressMode::Log { seconds: 1 }, state));
        });
        let events = capture.0.lock().unwrap().clone();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].0, PROGRESS_TARGET);
        assert!(
            events[0].1.starts_with("sweep: 4/4 records (100%)"),
            "{}",
            events[0].1
        );
    }
}
