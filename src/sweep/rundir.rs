//! The run directory's lifecycle: create it with a manifest, accept a resume
//! only under the same config, identities and format, move an old run aside
//! for `--new-run` (keeping the directory locked throughout), and record
//! each session in the manifest ([`super::session`] closes it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use serde_json::Value;

use super::SweepError;
use super::expand::Expanded;
use super::options::SweepOptions;
use super::plan::Plan;
use crate::record::{
    Hardware, LOCK_FILE, Manifest, RECORD_FORMAT_VERSION, RunLock, SAMPLES_FILE, Session,
    config_hash, utc_timestamp,
};

/// Prepare `dir` for a session; returns the manifest with the new session
/// appended (already written). `lock` holds `dir`; when `--new-run` moves
/// the old run aside, it is replaced by a lock on the new directory.
pub(crate) fn open_run(
    dir: &Path,
    plan: &Plan,
    expanded: &Expanded,
    config_file: &str,
    options: &SweepOptions,
    device: &str,
    lock: &mut RunLock,
) -> Result<Manifest, SweepError> {
    let now = utc_timestamp(SystemTime::now());
    let git_revision = options.git_revision.clone().or_else(git_revision);
    let hardware = Hardware::probe(device);
    let session = Session {
        started_at: now.clone(),
        ended_at: None,
        git_revision: git_revision.clone(),
        hardware: hardware.clone(),
        filters: options.filters.describe(),
        records_written: 0,
        complete: false,
        error: None,
        errors_retried: 0,
    };
    let existing = Manifest::read(dir)?;
    let refusal = match &existing {
        Some(m) if m.format_version != RECORD_FORMAT_VERSION => Some(SweepError::FormatMismatch {
            dir: dir.to_path_buf(),
            found: m.format_version,
            expected: RECORD_FORMAT_VERSION,
        }),
        Some(m) if m.shard != options.shard => Some(SweepError::ConfigChanged {
            dir: dir.to_path_buf(),
            difference: format!(
                "it holds {}, this session runs {}",
                shard_label(m.shard),
                shard_label(options.shard)
            ),
        }),
        Some(m) => difference(m, plan, expanded).map(|difference| SweepError::ConfigChanged {
            dir: dir.to_path_buf(),
            difference,
        }),
        None if has_records(dir) => Some(SweepError::ConfigChanged {
            dir: dir.to_path_buf(),
            difference: format!("it has {SAMPLES_FILE} but no manifest"),
        }),
        None => None,
    };
    let resume = match (refusal, options.new_run) {
        (Some(e), false) => return Err(e),
        (_, true) if has_content(dir) => {
            move_aside(dir)?;
            std::fs::create_dir_all(dir)
                .map_err(|e| crate::record::RecordError::io("create", dir, e))?;
            *lock = RunLock::acquire(dir)?;
            None
        }
        (_, _) => existing,
    };
    let mut manifest = match resume {
        Some(mut m) => {
            m.sessions.push(session);
            m
        }
        None => Manifest {
            format_version: RECORD_FORMAT_VERSION,
            run: plan.run_name.clone(),
            crate_version: env!("CARGO_PKG_VERSION").to_string(),
            git_revision,
            config_file: config_file.to_string(),
            config: plan.resolved_config.clone(),
            config_hash: Some(config_hash(&plan.resolved_config)),
            shard: options.shard,
            merged_from: Vec::new(),
            identities: expanded.identities.clone(),
            hardware,
            started_at: now,
            ended_at: None,
            sessions: vec![session],
        },
    };
    std::fs::create_dir_all(dir).map_err(|e| crate::record::RecordError::io("create", dir, e))?;
    manifest.crate_version = env!("CARGO_PKG_VERSION").to_string();
    manifest.config_hash = Some(config_hash(&manifest.config));
    manifest.write(dir)?;
    Ok(manifest)
}

fn shard_label(shard: Option<crate::record::Shard>) -> String {
    shard.map_or_else(|| "the whole run".to_string(), |s| format!("shard {s}"))
}

/// True when `dir` holds anything but its lock file.
fn has_content(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .is_ok_and(|mut entries| entries.any(|e| e.is_ok_and(|e| e.file_name() != LOCK_FILE)))
}

fn has_records(dir: &Path) -> bool {
    std::fs::metadata(dir.join(SAMPLES_FILE)).is_ok_and(|m| m.len() > 0)
}

/// How the stored run differs from this plan, if it does.
fn difference(m: &Manifest, plan: &Plan, expanded: &Expanded) -> Option<String> {
    if let Some(d) = first_difference(&m.config, &plan.resolved_config, "") {
        return Some(d);
    }
    for (path, id) in &expanded.identities.models {
        match m.identities.models.get(path) {
            Some(old) if old == id => {}
            Some(old) => return Some(format!("model `{path}` changed: was {old}, now {id}")),
            None => return Some(format!("model `{path}` is new")),
        }
    }
    for (task, v) in &expanded.identities.tasks {
        match m.identities.tasks.get(task) {
            Some(old) if old == v => {}
            Some(old) => return Some(format!("task `{task}` version changed: was {old}, now {v}")),
            None => return Some(format!("task `{task}` is new")),
        }
    }
    None
}

/// The first key path where `old` and `new` differ: `grid.widths: was [1,2], now [1,2,4]`.
fn first_difference(old: &Value, new: &Value, path: &str) -> Option<String> {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| match (a.get(k), b.get(k)) {
                (Some(x), Some(y)) => first_difference(x, y, &join(k)),
                (x, y) => Some(describe(&join(k), x, y)),
            })
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(x, y, &format!("{path}[{i}]"))),
        _ if old == new => None,
        _ => Some(describe(path, Some(old), Some(new))),
    }
}

fn describe(path: &str, old: Option<&Value>, new: Option<&Value>) -> String {
    let show = |v: Option<&Value>| v.map_or("absent".to_string(), |v| v.to_string());
    format!("`{path}` was {}, now {}", show(old), show(new))
}

/// Rename `dir` to `dir.prev-<timestamp>[-n]`.
fn move_aside(dir: &Path) -> Result<PathBuf, SweepError> {
    let stamp = utc_timestamp(SystemTime::now()).replace([':', '-'], "");
    let name = dir
        .file_name()
        .map_or_else(|| "run".into(), |n| n.to_string_lossy().into_owned());
    let mut to = dir.with_file_name(format!("{name}.prev-{stamp}"));
    let mut n = 1;
    while to.exists() {
        to = dir.with_file_name(format!("{name}.prev-{stamp}-{n}"));
        n += 1;
    }
    std::fs::rename(dir, &to).map_err(|source| SweepError::MoveAside {
        from: dir.to_path_buf(),
        to: to.clone(),
        source,
    })?;
    tracing::warn!(
        "moved the previous run `{}` to `{}`",
        dir.display(),
        to.display()
    );
    Ok(to)
}

/// `git rev-parse HEAD` here, `+dirty` with uncommitted changes to tracked files.
fn git_revision() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let rev = String::from_utf8(out.stdout).ok()?.trim().to_string();
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    Some(if dirty { format!("{rev}+dirty") } else { rev })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn first_difference_names_the_key_path() {
        let a = json!({"grid": {"widths": [1, 2], "cr": [2.0]}, "run": {"name": "x"}});
        let mut b = a.clone();
        assert_eq!(first_difference(&a, &b, ""), None);
        b["grid"]["widths"] = json!([1, 2, 4]);
        assert_eq!(
            first_difference(&a, &b, "").as_deref(),
            Some("`grid.widths` was [1,2], now [1,2,4]")
        );
        let mut c = a.clone();
        c["grid"]["cr"][0] = json!(4.0);
        assert_eq!(
            first_difference(&a, &c, "").as_deref(),
            Some("`grid.cr[0]` was 2.0, now 4.0")
        );
    }
}
