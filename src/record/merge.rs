//! `hyperscale merge DIR… --out DIR`: the run directories of one config's
//! shards (or any runs of one config) unioned into one normal run directory
//! that the report reads and a later `hyperscale sweep` resumes.
//!
//! Checks: every input has a manifest in this binary's record format, the
//! same resolved-config hash and the same model and task identities (so the
//! same trial ids mean the same trials). Records are keyed by
//! [`SampleKey`]; a key seen twice must have the same content — every
//! column but the wall-clock timings and the device — else the merge is
//! refused naming the key and both files. Identical duplicates (a shard
//! given twice, a merge run again) are kept once, so merging is idempotent:
//! the output is rewritten whole, records sorted by key, and merging the
//! same inputs again leaves it byte for byte the same. An existing `--out`
//! run of the same config is one more input. An error record
//! (`finish_reason = "error"`) gives way to a real record of its key.
//!
//! Records are copied as the lines they were written as, never parsed and
//! re-serialised, so every float keeps its exact digits. The output
//! directory is locked ([`super::RunLock`]) while it is written.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::index::read_complete_lines;
use super::lock::RunLock;
use super::{
    MANIFEST_FILE, Manifest, MergedInput, RECORD_FORMAT_VERSION, RecordError, SAMPLES_FILE,
    SampleKey, SampleRecord, Shard,
};
use crate::generate::FinishReason;

/// Why a merge was refused.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("no run directories to merge")]
    NoInputs,
    #[error("`{dir}` is not a run directory (no {MANIFEST_FILE})")]
    NotARun { dir: PathBuf },
    #[error("`{dir}` was written with record format {found}, this binary reads {expected}")]
    Format {
        dir: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error(
        "`{a}` and `{b}` come from different configs (config hash {hash_a} vs {hash_b}); merge only the shards of one config"
    )]
    ConfigMismatch {
        a: PathBuf,
        b: PathBuf,
        hash_a: String,
        hash_b: String,
    },
    #[error("`{a}` and `{b}` ran different models or task versions: {difference}")]
    IdentityMismatch {
        a: PathBuf,
        b: PathBuf,
        difference: String,
    },
    #[error(
        "record `{sample_id}` differs between `{a}` line {line_a} and `{b}` line {line_b} (column `{column}`)"
    )]
    Conflict {
        sample_id: String,
        a: PathBuf,
        line_a: usize,
        b: PathBuf,
        line_b: usize,
        column: String,
    },
    #[error(transparent)]
    Record(#[from] RecordError),
}

/// What a merge did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MergeSummary {
    pub out: PathBuf,
    /// Records in the output.
    pub records: u64,
    /// Records the output did not hold before.
    pub added: u64,
    /// Records seen more than once with the same content (kept once).
    pub duplicates: u64,
    /// Error records left out because another input holds a real record
    /// of the same key.
    pub errors_replaced: u64,
    /// Shards of an `N`-way split none of the inputs holds (when every
    /// shard input is of one split).
    pub missing_shards: Vec<Shard>,
    /// Inputs whose last session did not finish its work.
    pub incomplete: Vec<PathBuf>,
    /// Records files that ended in a torn line (left out).
    pub torn: Vec<PathBuf>,
}

impl MergeSummary {
    /// For people: warnings first, then one line of counts.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        if !self.missing_shards.is_empty() {
            let list: Vec<String> = self.missing_shards.iter().map(Shard::to_string).collect();
            s.push_str(&format!("warning: missing shards {}\n", list.join(", ")));
        }
        for d in &self.incomplete {
            s.push_str(&format!(
                "warning: `{}` did not finish (resume it, then merge again)\n",
                d.display()
            ));
        }
        for f in &self.torn {
            s.push_str(&format!(
                "warning: `{}` ends in a torn line (left out)\n",
                f.display()
            ));
        }
        if self.errors_replaced > 0 {
            s.push_str(&format!(
                "{} error record(s) replaced by another input's record of the same sample\n",
                self.errors_replaced
            ));
        }
        s.push_str(&format!(
            "{}: {} records ({} new, {} duplicates dropped)\n",
            self.out.display(),
            self.records,
            self.added,
            self.duplicates
        ));
        s
    }
}

/// One input as read.
struct Input {
    dir: PathBuf,
    manifest: Manifest,
    /// Line number, record, the line as written.
    records: Vec<(usize, SampleRecord, Vec<u8>)>,
}

/// Union the run directories `inputs` into `out` (created if needed).
pub fn merge_runs(inputs: &[PathBuf], out: &Path) -> Result<MergeSummary, MergeError> {
    if inputs.is_empty() {
        return Err(MergeError::NoInputs);
    }
    let mut summary = MergeSummary {
        out: out.to_path_buf(),
        ..MergeSummary::default()
    };
    // Keep sweeps (and other merges) out while `out` is read and rewritten;
    // an `out` that does not exist yet is locked once created.
    let lock = if out.is_dir() {
        Some(RunLock::acquire(out)?)
    } else {
        None
    };
    let existing = match Manifest::read(out)? {
        Some(m) => Some(read_input(out, m, &mut summary)?),
        None if out.join(SAMPLES_FILE).exists() => {
            return Err(MergeError::NotARun {
                dir: out.to_path_buf(),
            });
        }
        None => None,
    };
    let mut read = Vec::new();
    let mut seen_dirs = BTreeSet::new();
    for dir in inputs {
        if !seen_dirs.insert(dir.clone()) {
            continue;
        }
        let manifest =
            Manifest::read(dir)?.ok_or_else(|| MergeError::NotARun { dir: dir.clone() })?;
        read.push(read_input(dir, manifest, &mut summary)?);
    }
    let all: Vec<&Input> = existing.iter().chain(read.iter()).collect();
    let reference = all[0];
    for input in &all {
        check_same_run(reference, input)?;
    }

    let before = existing.as_ref().map_or(0, |e| e.records.len() as u64);
    let mut merged: BTreeMap<SampleKey, (&SampleRecord, &Path, usize, &[u8])> = BTreeMap::new();
    for input in &all {
        let file = input.dir.join(SAMPLES_FILE);
        for (line, record, text) in &input.records {
            let key = record.key();
            let is_error = |r: &SampleRecord| r.finish_reason == FinishReason::Error;
            match merged.get(&key) {
                None => {
                    merged.insert(key, (record, &input.dir, *line, text));
                }
                Some(&(first, ..)) if is_error(first) != is_error(record) => {
                    summary.errors_replaced += 1;
                    if is_error(first) {
                        merged.insert(key, (record, &input.dir, *line, text));
                    }
                }
                Some(&(first, first_dir, first_line, _)) => {
                    if let Some(column) = differing_column(first, record) {
                        return Err(MergeError::Conflict {
                            sample_id: key.sample_id(),
                            a: first_dir.join(SAMPLES_FILE),
                            line_a: first_line,
                            b: file.clone(),
                            line_b: *line,
                            column,
                        });
                    }
                    summary.duplicates += 1;
                }
            }
        }
    }
    summary.records = merged.len() as u64;
    summary.added = summary.records - before.min(summary.records);
    summary.missing_shards = missing_shards(read.iter().map(|i| i.manifest.shard));

    let manifest = merged_manifest(existing.as_ref(), &read);
    let _lock = match lock {
        Some(l) => l,
        None => {
            std::fs::create_dir_all(out).map_err(|e| RecordError::io("create", out, e))?;
            RunLock::acquire(out)?
        }
    };
    write_records(&out.join(SAMPLES_FILE), merged.values().map(|v| v.3))?;
    manifest.write(out)?;
    Ok(summary)
}

fn read_input(
    dir: &Path,
    manifest: Manifest,
    summary: &mut MergeSummary,
) -> Result<Input, MergeError> {
    if manifest.format_version != RECORD_FORMAT_VERSION {
        return Err(MergeError::Format {
            dir: dir.to_path_buf(),
            found: manifest.format_version,
            expected: RECORD_FORMAT_VERSION,
        });
    }
    let file = dir.join(SAMPLES_FILE);
    let (records, torn) = read_complete_lines(&file)?;
    if torn {
        summary.torn.push(file);
    }
    if !manifest.sessions.last().is_some_and(|s| s.complete) {
        summary.incomplete.push(dir.to_path_buf());
    }
    Ok(Input {
        dir: dir.to_path_buf(),
        manifest,
        records,
    })
}

fn check_same_run(a: &Input, b: &Input) -> Result<(), MergeError> {
    let (hash_a, hash_b) = (
        a.manifest.resolved_config_hash(),
        b.manifest.resolved_config_hash(),
    );
    if hash_a != hash_b {
        return Err(MergeError::ConfigMismatch {
            a: a.dir.clone(),
            b: b.dir.clone(),
            hash_a,
            hash_b,
        });
    }
    let (ia, ib) = (&a.manifest.identities, &b.manifest.identities);
    let differs = |kind: &str, x: &BTreeMap<String, String>, y: &BTreeMap<String, String>| {
        let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
        keys.into_iter().find_map(|k| {
            let show = |v: Option<&String>| v.map_or("absent".to_string(), Clone::clone);
            (x.get(k) != y.get(k))
                .then(|| format!("{kind} `{k}`: {} vs {}", show(x.get(k)), show(y.get(k))))
        })
    };
    let difference =
        differs("model", &ia.models, &ib.models).or_else(|| differs("task", &ia.tasks, &ib.tasks));
    match difference {
        Some(difference) => Err(MergeError::IdentityMismatch {
            a: a.dir.clone(),
            b: b.dir.clone(),
            difference,
        }),
        None => Ok(()),
    }
}

/// The first column (in name order) where two records of one key differ,
/// wall-clock timings and the device aside.
fn differing_column(a: &SampleRecord, b: &SampleRecord) -> Option<String> {
    let content = |r: &SampleRecord| {
        let mut r = r.deterministic();
        r.device = String::new();
        serde_json::to_value(r).unwrap_or_default()
    };
    let (va, vb) = (content(a), content(b));
    if va == vb {
        return None;
    }
    let (Some(ma), Some(mb)) = (va.as_object(), vb.as_object()) else {
        return Some("(record)".into());
    };
    let keys: BTreeSet<&String> = ma.keys().chain(mb.keys()).collect();
    keys.into_iter()
        .find(|k| ma.get(*k) != mb.get(*k))
        .map(|k| k.to_string())
}

/// Shards `0..N` that no input holds, when every shard input is of one `N`.
fn missing_shards(shards: impl Iterator<Item = Option<Shard>>) -> Vec<Shard> {
    let shards: BTreeSet<Shard> = shards.flatten().collect();
    let counts: BTreeSet<u32> = shards.iter().map(|s| s.count).collect();
    let [count] = counts.into_iter().collect::<Vec<_>>()[..] else {
        return Vec::new();
    };
    (0..count)
        .map(|index| Shard { index, count })
        .filter(|s| !shards.contains(s))
        .collect()
}

/// The output's manifest: the reference run's config and identities, no
/// shard, every input's sessions (each once), the earliest start and the
/// latest end, and the inputs listed.
fn merged_manifest(existing: Option<&Input>, read: &[Input]) -> Manifest {
    let base = existing.unwrap_or(&read[0]);
    let mut m = base.manifest.clone();
    m.shard = None;
    m.crate_version = env!("CARGO_PKG_VERSION").to_string();
    m.config_hash = Some(base.manifest.resolved_config_hash());
    for input in read {
        for s in &input.manifest.sessions {
            if !m.sessions.contains(s) {
                m.sessions.push(s.clone());
            }
        }
        if input.manifest.started_at < m.started_at {
            m.started_at = input.manifest.started_at.clone();
        }
        if input.manifest.ended_at > m.ended_at {
            m.ended_at = input.manifest.ended_at.clone();
        }
        let entry = MergedInput {
            dir: input.dir.display().to_string(),
            shard: input.manifest.shard,
            records: input.records.len() as u64,
            complete: input.manifest.sessions.last().is_some_and(|s| s.complete),
        };
        match m.merged_from.iter_mut().find(|e| e.dir == entry.dir) {
            Some(e) => *e = entry,
            None => m.merged_from.push(entry),
        }
    }
    m
}

/// Write the record `lines` (each without its newline) to `path` through a
/// temporary file and a rename, so a crash leaves the old file or the new
/// one, and a failure leaves no temporary file.
fn write_records<'a>(
    path: &Path,
    lines: impl Iterator<Item = &'a [u8]>,
) -> Result<(), RecordError> {
    super::manifest::replace_file(path, &[], |tmp, _| {
        let file = std::fs::File::create(tmp)?;
        let mut w = std::io::BufWriter::new(file);
        for line in lines {
            w.write_all(line)?;
            w.write_all(b"\n")?;
        }
        w.into_inner().map_err(|e| e.into_error())?.sync_all()
    })
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
