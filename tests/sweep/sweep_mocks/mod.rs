//! Mocks of the sweep's boundaries: a catalog, tasks, a renderer, a fake
//! generator whose tokens are a deterministic function of (prompt, policy,
//! L, seed, sample stream), and a grader that can sleep, wait or fail.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyperscale::generate::{Completion, FinishReason, Request, StopCriteria, Timing};
use hyperscale::grade::Outcome;
use hyperscale::kv::KvStats;
use hyperscale::record::{SAMPLES_FILE, SampleRecord, read_records};
use hyperscale::sweep::{
    BoxError, Generated, GradeOutcome, LoadedTask, ModelCatalog, ModelInfo, ProgressMode,
    PromptContext, PromptRenderer, RenderedPrompt, RunSummary, SampleGenerator, SampleGrader,
    SweepDeps, SweepError, SweepOptions, TaskPlan, TaskSource, Trial, run_sweep,
};
use hyperscale::task::{Expected, Problem, Reference, TestCase, TestKind};

pub const ROWS: u64 = 4;

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn fnv(bytes: impl IntoIterator<Item = u8>) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// Models: identity from the path; DMS parameters when the path says `dms`.
pub struct MockCatalog;

impl ModelCatalog for MockCatalog {
    fn inspect(&self, path: &str) -> Result<ModelInfo, BoxError> {
        if path.contains("missing") {
            return Err(format!("no such file `{path}`").into());
        }
        Ok(ModelInfo {
            identity: format!("{path}@sha256:{:016x}", fnv(path.bytes())),
            has_dms: path.contains("dms"),
        })
    }
}

/// Four tasks with a handful of problems each.
pub struct MockTasks {
    pub version: String,
}

impl Default for MockTasks {
    fn default() -> Self {
        MockTasks {
            version: "v1".into(),
        }
    }
}

impl TaskSource for MockTasks {
    fn load(&self, task: &TaskPlan) -> Result<LoadedTask, BoxError> {
        let name = task.name.as_str();
        let (n, make): (usize, &dyn Fn(usize) -> Reference) = match name {
            "arith" | "aime24" => (6, &|i| Reference::Math {
                answer: ((i * 7) % 10).to_string(),
            }),
            "gpqa-diamond" => (4, &|i| Reference::MultipleChoice {
                correct: format!("right {i}"),
                incorrect: vec!["w1".into(), "w2".into(), "w3".into()],
            }),
            "livecodebench" => (3, &|i| Reference::Code {
                tests: vec![TestCase {
                    input: format!("{i}\n"),
                    output: format!("{}\n", i * 2),
                    kind: TestKind::Stdin,
                }],
                fn_name: None,
                starter_code: String::new(),
                public_only: true,
            }),
            other => return Err(format!("unknown task `{other}`").into()),
        };
        Ok(LoadedTask {
            version: self.version.clone(),
            problems: (0..n)
                .map(|i| Problem {
                    id: format!("{name}-{i}"),
                    question: format!("question {i} of {name}"),
                    reference: make(i),
                    metadata: Default::default(),
                })
                .collect(),
        })
    }
}

/// Prompt = task, question and repeat as token ids.
pub struct MockRenderer;

impl PromptRenderer for MockRenderer {
    fn render(
        &mut self,
        _trial: &Trial,
        problem: &Problem,
        ctx: &PromptContext<'_>,
    ) -> Result<RenderedPrompt, BoxError> {
        let mut tokens: Vec<u32> = ctx
            .task
            .bytes()
            .chain(problem.question.bytes())
            .map(u32::from)
            .collect();
        tokens.push(ctx.repeat);
        let expected = match &problem.reference {
            Reference::Math { answer } => Expected::Math {
                answer: answer.clone(),
            },
            Reference::MultipleChoice { .. } => Expected::Letter {
                letter: ['A', 'B', 'C', 'D'][ctx.repeat as usize % 4],
            },
            Reference::Code { tests, fn_name, .. } => Expected::Code {
                tests: tests.clone(),
                fn_name: fn_name.clone(),
            },
        };
        Ok(RenderedPrompt {
            tokens,
            expected,
            stop: StopCriteria {
                eos_ids: vec![0],
                stop_strings: vec![],
            },
        })
    }
}

/// One generator call as seen by the fake generator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub trial: String,
    pub first_sample: u64,
    pub samples: usize,
}

/// Deterministic tokens; counts what it was asked for.
#[derive(Default)]
pub struct FakeGenerator {
    pub calls: Arc<Mutex<Vec<Call>>>,
    pub batches: Arc<AtomicUsize>,
    /// Sleep per batch (simulated decoding).
    pub delay: Duration,
    /// Fail (a simulated crash) on the call after this many.
    pub fail_after: Option<usize>,
}

impl SampleGenerator for FakeGenerator {
    fn device(&self) -> String {
        "fake".into()
    }

    fn generate(
        &mut self,
        trial: &Trial,
        request: &Request,
        tokens: &AtomicU64,
    ) -> Result<Generated, BoxError> {
        if self
            .fail_after
            .is_some_and(|n| self.batches.load(Ordering::SeqCst) >= n)
        {
            return Err("simulated crash".into());
        }
        let start = Instant::now();
        std::thread::sleep(self.delay);
        let policy = serde_json::to_string(&trial.spec.policy).unwrap();
        let budget = trial.spec.policy.budget();
        let p = request.prompt.len();
        let allowed = |t: usize| budget.map_or(t, |b| b.allowed(t));
        let mut completions = Vec::new();
        for i in 0..request.samples {
            let sample = request.first_sample + i as u64;
            let mut h = fnv(request
                .prompt
                .iter()
                .flat_map(|t| t.to_le_bytes())
                .chain(policy.bytes())
                .chain((request.max_tokens as u64).to_le_bytes())
                .chain(request.sampling.seed.to_le_bytes())
                .chain(sample.to_le_bytes()));
            let n = 1 + (splitmix(&mut h) % request.max_tokens as u64) as usize;
            let mut ids: Vec<u32> = (0..n).map(|_| 1 + (splitmix(&mut h) % 26) as u32).collect();
            let finish = if n < request.max_tokens {
                *ids.last_mut().unwrap() = 0;
                FinishReason::Eos
            } else {
                FinishReason::Length
            };
            let body = if finish == FinishReason::Eos {
                &ids[..n - 1]
            } else {
                &ids[..]
            };
            let text: String = body.iter().map(|&t| (b'a' + t as u8 - 1) as char).collect();
            let reads: u64 = (1..n).map(|t| ROWS * allowed(p + t) as u64).sum();
            let peak = ROWS * allowed(p + n) as u64;
            tokens.fetch_add(n as u64, Ordering::Relaxed);
            completions.push(Completion {
                request: 0,
                sample,
                text,
                token_ids: ids,
                finish_reason: finish,
                prompt_tokens: p,
                generated_tokens: n,
                kv: KvStats {
                    decode_reads: reads,
                    prefill_reads: ROWS * (p * (p + 1) / 2) as u64,
                    resident: peak,
                    peak_resident: peak,
                    peak_bytes: peak * 64,
                    positions: (p + n) as u64,
                    row_len: Vec::new(),
                },
                batch_peak_resident: 0,
                timing: Timing::default(),
            });
        }
        // A function of the batch's composition, as the real store's peak is.
        let batch_peak: u64 = completions.iter().map(|c| c.kv.peak_resident).sum();
        let secs = start.elapsed().as_secs_f64();
        for c in &mut completions {
            c.batch_peak_resident = batch_peak;
            c.timing = Timing {
                prefill_seconds: 0.0,
                decode_seconds: secs,
                decode_tokens_per_second: c.generated_tokens as f64 / secs.max(1e-9),
                occupancy: 0.0,
            };
        }
        self.calls.lock().unwrap().push(Call {
            trial: trial.id.clone(),
            first_sample: request.first_sample,
            samples: request.samples,
        });
        self.batches.fetch_add(1, Ordering::SeqCst);
        Ok(Generated {
            completions,
            kv_rows: ROWS,
            kv_dtype: None,
        })
    }
}

/// A grader: the first letter is the answer. It can sleep, wait for a
/// condition, or fail once on its n-th call.
#[derive(Default)]
pub struct FakeGrader {
    pub delay: Duration,
    pub calls: AtomicUsize,
    pub fail_at_call: Option<usize>,
    pub failed: AtomicBool,
    /// Block each grade until this returns true (checked every millisecond,
    /// given up after 60 s with an error).
    pub wait_for: Option<Box<dyn Fn() -> bool + Send + Sync>>,
}

impl SampleGrader for FakeGrader {
    fn grade(
        &self,
        _task: &str,
        expected: &Expected,
        text: &str,
    ) -> Result<GradeOutcome, BoxError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail_at_call == Some(call) && !self.failed.swap(true, Ordering::SeqCst) {
            return Err("sandbox could not start".into());
        }
        if let Some(ready) = &self.wait_for {
            let start = Instant::now();
            while !ready() {
                if start.elapsed() > Duration::from_secs(60) {
                    return Err("grading waited 60 s for generation to finish: generation is blocked on grading".into());
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        std::thread::sleep(self.delay);
        let extracted = text.chars().next().map(|c| c.to_string());
        let want = match expected {
            Expected::Math { answer } => {
                let d = answer.bytes().next().unwrap_or(b'0') - b'0';
                ((b'a' + d) as char).to_string()
            }
            Expected::Letter { letter } => letter.to_ascii_lowercase().to_string(),
            Expected::Code { .. } => "e".into(),
        };
        let is_correct = extracted.as_deref() == Some(want.as_str());
        Ok(GradeOutcome {
            outcome: match (&extracted, is_correct) {
                (None, _) => Outcome::NoAnswer,
                (_, true) => Outcome::Correct,
                _ => Outcome::Incorrect,
            },
            failure: None,
            vote_key: extracted.clone(),
            extracted,
        })
    }
}

/// A temporary directory with a config file in it; results under `results/`.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cfg.toml"), config).unwrap();
        Sandbox { dir }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("cfg.toml")
    }

    pub fn set_config(&self, config: &str) {
        std::fs::write(self.config(), config).unwrap();
    }

    pub fn options(&self) -> SweepOptions {
        SweepOptions {
            results_dir: Some(self.dir.path().join("results")),
            progress: ProgressMode::Hidden,
            grade_workers: Some(3),
            git_revision: Some("test".into()),
            ..SweepOptions::default()
        }
    }

    pub fn run_dir(&self) -> PathBuf {
        self.dir.path().join("results").join("t")
    }

    pub fn samples(&self) -> PathBuf {
        self.run_dir().join(SAMPLES_FILE)
    }

    /// Run with the given generator and grader.
    pub fn run_with(
        &self,
        options: &SweepOptions,
        generator: &mut FakeGenerator,
        grader: Arc<FakeGrader>,
    ) -> Result<RunSummary, SweepError> {
        let tasks = MockTasks::default();
        run_sweep(
            &self.config(),
            options,
            SweepDeps {
                catalog: &MockCatalog,
                tasks: &tasks,
                renderer: &mut MockRenderer,
                generator,
                grader,
            },
        )
    }

    pub fn run(&self) -> Result<RunSummary, SweepError> {
        self.run_with(
            &self.options(),
            &mut FakeGenerator::default(),
            Arc::new(FakeGrader::default()),
        )
    }

    /// The records, wall-clock fields zeroed, sorted by sample id.
    pub fn records(&self) -> Vec<SampleRecord> {
        sorted(read_records(&self.samples()).unwrap())
    }
}

pub fn sorted(records: Vec<SampleRecord>) -> Vec<SampleRecord> {
    let mut v: Vec<SampleRecord> = records.iter().map(SampleRecord::deterministic).collect();
    v.sort_by(|a, b| a.sample_id.cmp(&b.sample_id));
    v
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}

/// Two tasks (2 and 1 problems), dense + TOVA at CR 2 and 4, W ∈ {1, 3},
/// L = 12, 2 repeats: 3 problems × 3 policies × (1 + 3) samples × 2 repeats
/// = 72 records.
pub const BASIC: &str = r#"
[run]
name = "t"

[model]
path = "models/tiny.gguf"

[[tasks]]
name = "arith"
limit = 2

[[tasks]]
name = "gpqa-diamond"
limit = 1

[sampling]
temperature = 0.7
seeds = [5]

[grid]
cr = [2, 4]
widths = [1, 3]
lengths = [12]
repeats = 2

[[grid.methods]]
policy = "dense"

[[grid.methods]]
policy = "tova"
min_tokens = 2
"#;
