//! Flags of `sweep` and `merge`.

use std::path::PathBuf;

use clap::Args;

use super::values::ProgressArg;

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// The sweep config (`configs/*.toml`).
    pub config: PathBuf,
    /// At most this many problems per task.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Only these tasks (comma-separated names from the config).
    #[arg(long, value_delimiter = ',')]
    pub tasks: Option<Vec<String>>,
    /// Only these methods (comma-separated method names or policies).
    #[arg(long, value_delimiter = ',')]
    pub methods: Option<Vec<String>>,
    /// Print the expanded plan and its token bound; run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Start a new run when the run directory holds another config's run
    /// (the old one is moved aside, nothing is deleted).
    #[arg(long)]
    pub new_run: bool,
    /// Parent of run directories (overrides the config's `run.results_dir`).
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Progress display.
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,
    /// Run shard I of N (0-based, e.g. `--shard 2/8`): a deterministic,
    /// token-balanced 1/N of the work units, written to
    /// `<results>/<run>/shards/I-of-N/`. Join the shards with `merge`.
    #[arg(long, value_parser = clap::value_parser!(crate::record::Shard))]
    pub shard: Option<crate::record::Shard>,
    /// Keep the error records of earlier sessions (samples a remote engine
    /// failed on) as final. By default a resume moves them to
    /// `errors.jsonl` and decodes those samples again.
    #[arg(long)]
    pub keep_errors: bool,
    /// Run generated code even where it cannot be isolated (not root and no
    /// usable user namespaces): it then runs with your user's access to your
    /// files, network and processes. See docs/security.md.
    #[arg(long)]
    pub unsafe_no_sandbox: bool,
    /// Sequences decoded together at most (≥ 1; overrides the config's
    /// `[engine] max_sequences`; default 16). Changes wall time only, never
    /// a record: `--max-sequences 1` decodes one request at a time.
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_sequences: Option<usize>,
    /// KV memory the requests in flight may hold together, e.g. `2GiB`
    /// (overrides the config's `[engine] kv_memory`; default half the
    /// available memory). Changes wall time only, never a record.
    #[arg(long, value_parser = crate::bench::throughput::parse_bytes)]
    pub kv_memory: Option<u64>,
    /// Prompt tokens prefilled between two decode steps at most (≥ 1;
    /// overrides the config's `[engine] prefill_chunk`; default: a prompt in
    /// one piece), so a long prompt does not stall the batch. Applied only
    /// where prefilling in pieces is bit-identical to one piece, which no
    /// cache policy of the real models is yet (docs/batching.md): until
    /// then it is ignored. Never changes a record.
    #[arg(long, value_name = "TOKENS", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub prefill_chunk: Option<usize>,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Run directories to merge (e.g. `results/<run>/shards/*-of-8`).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// The merged run directory (e.g. `results/<run>`); an existing run of
    /// the same config there is kept and added to.
    #[arg(long)]
    pub out: PathBuf,
}
