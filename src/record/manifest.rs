//! `manifest.json`: what a run directory holds — the resolved config, the
//! identities its trial ids were computed from, the binary (crate version,
//! git revision, record format version), the hardware, and one entry per
//! session (a start, a resume, …) with its start and end. A shard's run
//! directory also names its shard; a merged one lists its inputs.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{MANIFEST_FILE, RecordError};

/// The run manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub run: String,
    pub crate_version: String,
    /// `git rev-parse HEAD` of the source tree, `+dirty` when it had changes.
    pub git_revision: Option<String>,
    /// The config file as named on the command line.
    pub config_file: String,
    /// The config as parsed, defaults filled in (not filtered by `--tasks`
    /// and friends, which select work without changing the run).
    pub config: serde_json::Value,
    /// [`super::config_hash`] of `config`: what `merge` checks shards
    /// against. Absent in manifests written before sharding (then computed
    /// from `config`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    /// The part of the plan this directory holds (`--shard I/N`); absent for
    /// a whole run and for a merged one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// The run directories `hyperscale merge` unioned into this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<MergedInput>,
    pub identities: Identities,
    pub hardware: Hardware,
    /// Start of the first session (UTC, RFC 3339).
    pub started_at: String,
    /// End of the latest session.
    pub ended_at: Option<String>,
    pub sessions: Vec<Session>,
}

/// Shard `index` of `count` (0-based: `0/3`, `1/3`, `2/3`), written and
/// parsed as `I/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `I/N` with `0 <= I < N`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a shard: expected I/N with 0 <= I < N (e.g. 0/4)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// One input of a merged run directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergedInput {
    /// The directory as given on the command line.
    pub dir: String,
    pub shard: Option<Shard>,
    /// Complete records read from it.
    pub records: u64,
    /// True when its last session finished all its work.
    pub complete: bool,
}

/// What trial ids depend on beyond the config: model files and task versions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identities {
    /// Model path as configured → identity (name and file hash).
    pub models: BTreeMap<String, String>,
    /// Task name → task version.
    pub tasks: BTreeMap<String, String>,
}

/// Where a session ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hardware {
    /// The generator's device description (e.g. `cpu`, `cuda:0 NVIDIA H100`).
    pub device: String,
    pub cpus: usize,
    pub cpu_model: Option<String>,
    pub os: String,
    pub arch: String,
}

impl Hardware {
    /// This machine, with `device` as reported by the generator.
    pub fn probe(device: &str) -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        });
        Hardware {
            device: device.to_string(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            os: std::env::consts::OS.to_string(),
            arch: std::env::consts::ARCH.to_string(),
        }
    }
}

/// One invocation of the sweep on this run directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub started_at: String,
    pub ended_at: Option<String>,
    pub git_revision: Option<String>,
    pub hardware: Hardware,
    /// The work filters of this session (`--tasks`, `--methods`, `--limit`), if any.
    pub filters: Option<String>,
    /// Records this session appended.
    pub records_written: u64,
    /// True when the session finished all the work it was given.
    pub complete: bool,
    /// Why the session stopped early, if it did.
    pub error: Option<String>,
    /// Error records this session moved to `errors.jsonl` at its start to
    /// retry their samples (absent when none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub errors_retried: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Manifest {
    /// The recorded config hash, or the hash of `config` for a manifest
    /// written before the field existed.
    pub fn resolved_config_hash(&self) -> String {
        self.config_hash
            .clone()
            .unwrap_or_else(|| super::config_hash(&self.config))
    }

    /// Read `dir/manifest.json`; `None` when absent.
    pub fn read(dir: &Path) -> Result<Option<Self>, RecordError> {
        let path = dir.join(MANIFEST_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(RecordError::io("read", &path, e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| RecordError::Manifest {
                path,
                message: e.to_string(),
            })
    }

    /// Write `dir/manifest.json` atomically (temporary file, then rename).
    /// On failure (a full disk) the temporary file is removed: the old
    /// manifest stays and no debris is left.
    pub fn write(&self, dir: &Path) -> Result<(), RecordError> {
        let path = dir.join(MANIFEST_FILE);
        let mut text = serde_json::to_string_pretty(self).map_err(|e| RecordError::Manifest {
            path: path.clone(),
            message: e.to_string(),
        })?;
        text.push('\n');
        replace_file(&path, text.as_bytes(), |tmp, bytes| {
            std::fs::write(tmp, bytes)
        })
    }
}

/// Replace `path` with `bytes` through `<path>.tmp` and a rename, writing
/// the temporary file with `write`. A failed write or rename removes the
/// temporary file (best effort) and names the step that failed.
pub(crate) fn replace_file(
    path: &Path,
    bytes: &[u8],
    write: impl FnOnce(&Path, &[u8]) -> std::io::Result<()>,
) -> Result<(), RecordError> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let result = write(&tmp, bytes)
        .map_err(|e| RecordError::io("write", &tmp, e))
        .and_then(|()| {
            std::fs::rename(&tmp, path).map_err(|e| RecordError::io("replace", path, e))
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `t` as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub fn utc_timestamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_match_known_dates() {
        let at = |s| utc_timestamp(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        // `date -u -d @951782400` = 2000-02-29 00:00:00 (a leap day).
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        // `date -u -d @1735689599` = 2024-12-31 23:59:59.
        assert_eq!(at(1_735_689_599), "2024-12-31T23:59:59Z");
    }

    #[test]
    fn shards_parse_as_i_of_n() {
        assert_eq!("2/5".parse(), Ok(Shard { index: 2, count: 5 }));
        assert_eq!(Shard { index: 0, count: 1 }.to_string(), "0/1");
        for bad in ["3/3", "1/0", "x/2", "1", "-1/2", "1/2/3"] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains(bad) && e.contains("I/N"), "{e}");
        }
    }

    #[test]
    fn a_manifest_without_the_shard_fields_still_reads() {
        let m = serde_json::json!({
            "format_version": 1, "run": "r", "crate_version": "0.1.0",
            "git_revision": null, "config_file": "c.toml", "config": {"a": 1},
            "identities": {"models": {}, "tasks": {}},
            "hardware": {"device": "cpu", "cpus": 1, "cpu_model": null, "os": "linux", "arch": "x86_64"},
            "started_at": "2026-01-01T00:00:00Z", "ended_at": null, "sessions": []
        });
        let m: Manifest = serde_json::from_value(m).unwrap();
        assert_eq!((m.shard, m.merged_from.len()), (None, 0));
        assert_eq!(
            m.resolved_config_hash(),
            super::super::config_hash(&serde_json::json!({"a": 1}))
        );
    }

    #[test]
    fn a_failed_manifest_write_leaves_no_tmp_debris() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        // Disk full after the temporary file was created: an empty `.tmp`
        // used to stay behind.
        let e = replace_file(&path, b"{}", |tmp, _| {
            std::fs::write(tmp, b"")?;
            Err(std::io::Error::from_raw_os_error(28)) // ENOSPC
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("manifest.json.tmp"), "{e}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
        // A failed rename (the target is a directory) cleans up too.
        std::fs::create_dir(&path).unwrap();
        let e = replace_file(&path, b"{}", |tmp, b| std::fs::write(tmp, b)).unwrap_err();
        assert!(e.to_string().contains("failed to replace"), "{e}");
        assert!(!dir.path().join("manifest.json.tmp").exists());
    }

    #[test]
    fn manifest_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Manifest::read(dir.path()).unwrap().is_none());
        let m = Manifest {
            format_version: 1,
            run: "r".into(),
            crate_version: "0.1.0".into(),
            git_revision: None,
            config_file: "c.toml".into(),
            config: serde_json::json!({"a": 1}),
            config_hash: Some(super::super::config_hash(&serde_json::json!({"a": 1}))),
            shard: Some(Shard { index: 1, count: 3 }),
            merged_from: vec![],
            identities: Identities::default(),
            hardware: Hardware::probe("cpu"),
            started_at: utc_timestamp(SystemTime::now()),
            ended_at: None,
            sessions: vec![],
        };
        m.write(dir.path()).unwrap();
        assert_eq!(Manifest::read(dir.path()).unwrap(), Some(m));
    }
}
