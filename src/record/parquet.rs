//! `samples.parquet`: the run's JSON Lines records consolidated into one
//! columnar file (one column per [`SampleRecord`] field, enums as their
//! snake_case names) for notebooks. Written at the end of a sweep session;
//! `samples.jsonl` stays the source of truth (resume reads only it), so a
//! stale or missing Parquet file is rewritten, never trusted.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::{RecordError, SAMPLES_FILE, SampleRecord, read_records};

/// The consolidated records inside `results/<run>/`.
pub const SAMPLES_PARQUET_FILE: &str = "samples.parquet";

fn name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The records as a dataframe, in record order.
pub fn records_frame(rs: &[SampleRecord]) -> PolarsResult<DataFrame> {
    macro_rules! c {
        ($name:literal, $f:expr) => {
            Column::new($name.into(), rs.iter().map($f).collect::<Vec<_>>())
        };
    }
    let cols = vec![
        c!("run", |r| r.run.as_str()),
        c!("trial", |r| r.trial.as_str()),
        c!("group", |r| r.group.as_str()),
        c!("sample_id", |r| r.sample_id.as_str()),
        c!("task", |r| r.task.as_str()),
        c!("task_version", |r| r.task_version.as_str()),
        c!("problem_id", |r| r.problem_id.as_str()),
        c!("repeat", |r| r.repeat),
        c!("sample", |r| r.sample),
        c!("model", |r| r.model.as_str()),
        c!("method", |r| r.method.as_str()),
        c!("policy", |r| r.policy.as_str()),
        c!("policy_params", |r| r.policy_params.as_str()),
        c!("cr_target", |r| r.cr_target),
        c!("cr_achieved", |r| r.cr_achieved),
        c!("width", |r| r.width),
        c!("max_tokens", |r| r.max_tokens),
        c!("seed", |r| r.seed),
        c!("temperature", |r| r.temperature),
        c!("top_p", |r| r.top_p),
        c!("top_k", |r| r.top_k),
        c!("prompt_tokens", |r| r.prompt_tokens),
        c!("generated_tokens", |r| r.generated_tokens),
        c!("finish_reason", |r| name(&r.finish_reason)),
        c!("extracted_answer", |r| r.extracted_answer.as_deref()),
        c!("verdict", |r| r.verdict.as_str()),
        c!("is_correct", |r| r.is_correct),
        c!("kv_reads", |r| r.kv_reads),
        c!("prefill_reads", |r| r.prefill_reads),
        c!("peak_resident", |r| r.peak_resident),
        c!("peak_resident_batch", |r| r.peak_resident_batch),
        c!("batch_first", |r| r.batch_first),
        c!("batch_samples", |r| r.batch_samples),
        c!("peak_bytes", |r| r.peak_bytes),
        c!("kv_rows", |r| r.kv_rows),
        c!("budget_source", |r| name(&r.budget_source)),
        c!("wall_seconds", |r| r.wall_seconds),
        c!("prefill_seconds", |r| r.prefill_seconds),
        c!("decode_tokens_per_second", |r| r.decode_tokens_per_second),
        c!("grade_seconds", |r| r.grade_seconds),
        c!("device", |r| r.device.as_str()),
        c!("token_hash", |r| r.token_hash.as_str()),
        c!("text", |r| r.text.as_deref()),
        // Format 2; format-1 records get the outcome their label names.
        c!("outcome", |r| r.outcome().name()),
        c!("failure", |r| r.failure_kind().map(|f| f.name())),
        c!("vote_key", |r| r.vote_key.as_deref()),
        // Format 3.
        c!("occupancy", |r| r.occupancy),
        // Format 4.
        c!("kv_dtype", |r| r.kv_dtype.as_deref()),
    ];
    DataFrame::new(rs.len(), cols)
}

/// Write `frame` to `path` as Parquet (through a temporary file and a rename,
/// so a reader never sees half a file).
pub fn write_parquet(frame: &mut DataFrame, path: &Path) -> Result<(), RecordError> {
    let fail = |message: String| RecordError::Parquet {
        path: path.to_path_buf(),
        message,
    };
    let tmp = path.with_extension("parquet.tmp");
    let file = std::fs::File::create(&tmp).map_err(|e| RecordError::io("create", &tmp, e))?;
    ParquetWriter::new(file)
        .finish(frame)
        .map_err(|e| fail(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| RecordError::io("replace", path, e))
}

/// Consolidate `dir/samples.jsonl` into `dir/samples.parquet`; returns the
/// path and the number of records.
pub fn consolidate(dir: &Path) -> Result<(PathBuf, usize), RecordError> {
    let records = read_records(&dir.join(SAMPLES_FILE))?;
    let path = dir.join(SAMPLES_PARQUET_FILE);
    let mut frame = records_frame(&records).map_err(|e| RecordError::Parquet {
        path: path.clone(),
        message: e.to_string(),
    })?;
    write_parquet(&mut frame, &path)?;
    Ok((path, records.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::SampleWriter;

    #[test]
    fn consolidated_parquet_reads_back_as_the_records() {
        let line = r#"{"run":"r","trial":"t","group":"g","sample_id":"t:p:0:0","task":"arith","task_version":"1","problem_id":"p","repeat":0,"sample":0,"model":"m","method":"dense","policy":"dense","policy_params":"{}","cr_target":null,"cr_achieved":1.0,"width":1,"max_tokens":8,"seed":0,"temperature":0.6,"top_p":0.95,"top_k":0,"prompt_tokens":5,"generated_tokens":8,"finish_reason":"length","extracted_answer":"4","verdict":"incorrect","is_correct":false,"kv_reads":90,"prefill_reads":15,"peak_resident":13,"peak_resident_batch":13,"batch_first":0,"batch_samples":1,"peak_bytes":52,"kv_rows":1,"budget_source":"measured","wall_seconds":0.5,"prefill_seconds":0.1,"decode_tokens_per_second":16.0,"grade_seconds":0.0,"device":"cpu","token_hash":"h","text":null}"#;
        let r: SampleRecord = serde_json::from_str(line).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _) = SampleWriter::open(&dir.path().join(SAMPLES_FILE)).unwrap();
        let mut r2 = r.clone();
        r2.sample_id = "t:p:0:1".into();
        r2.sample = 1;
        r2.kv_reads = 91;
        w.append(&r).unwrap();
        w.append(&r2).unwrap();
        w.finish().unwrap();
        let (path, n) = consolidate(dir.path()).unwrap();
        assert_eq!(n, 2);
        let file = std::fs::File::open(&path).unwrap();
        let df = ParquetReader::new(file).finish().unwrap();
        assert_eq!(df.height(), 2);
        assert_eq!(df.width(), 48);
        let reads: Vec<Option<u64>> = df
            .column("kv_reads")
            .unwrap()
            .as_materialized_series()
            .u64()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(reads, vec![Some(90), Some(91)]);
        let fr = df
            .column("finish_reason")
            .unwrap()
            .as_materialized_series()
            .str()
            .unwrap()
            .get(0);
        assert_eq!(fr, Some("length"));
    }
}
