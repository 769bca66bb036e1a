//! A bounds-checked little-endian reader for the GGUF header: every read
//! names what it was reading, so a short file reports exactly where it was
//! cut.

use std::path::Path;

use super::value::GgufValue;
use crate::model::LoadError;

/// A little-endian reader whose every read names what it was reading, so a
/// short file reports exactly where it was cut.
pub(crate) struct Cursor<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) pos: usize,
    pub(crate) path: &'a Path,
}

impl<'a> Cursor<'a> {
    pub(crate) fn take(
        &mut self,
        n: u64,
        what: impl FnOnce() -> String,
    ) -> Result<&'a [u8], LoadError> {
        let remaining = (self.buf.len() - self.pos) as u64;
        if n > remaining {
            return Err(LoadError::Truncated {
                path: self.path.to_path_buf(),
                detail: format!(
                    "{} needs {n} bytes at offset {}, but the file has only {} bytes",
                    what(),
                    self.pos,
                    self.buf.len()
                ),
            });
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.buf[start..self.pos])
    }

    fn array<const N: usize>(
        &mut self,
        what: impl FnOnce() -> String,
    ) -> Result<[u8; N], LoadError> {
        let bytes = self.take(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn u32(&mut self, what: impl FnOnce() -> String) -> Result<u32, LoadError> {
        self.array(what).map(u32::from_le_bytes)
    }

    pub(crate) fn u64(&mut self, what: impl FnOnce() -> String) -> Result<u64, LoadError> {
        self.array(what).map(u64::from_le_bytes)
    }

    pub(crate) fn string(&mut self, what: impl Fn() -> String) -> Result<String, LoadError> {
        let len = self.u64(&what)?;
        let bytes = self.take(len, &what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| LoadError::Format {
            path: self.path.to_path_buf(),
            detail: format!("{} is not valid UTF-8", what()),
        })
    }

    pub(crate) fn value(&mut self, ty: u32, key: &str) -> Result<GgufValue, LoadError> {
        let what = || format!("the value of metadata `{key}`");
        Ok(match ty {
            0 => GgufValue::U8(self.array::<1>(what)?[0]),
            1 => GgufValue::I8(i8::from_le_bytes(self.array(what)?)),
            2 => GgufValue::U16(u16::from_le_bytes(self.array(what)?)),
            3 => GgufValue::I16(i16::from_le_bytes(self.array(what)?)),
            4 => GgufValue::U32(u32::from_le_bytes(self.array(what)?)),
            5 => GgufValue::I32(i32::from_le_bytes(self.array(what)?)),
            6 => GgufValue::F32(f32::from_le_bytes(self.array(what)?)),
            7 => GgufValue::Bool(self.array::<1>(what)?[0] != 0),
            8 => GgufValue::String(self.string(what)?),
            9 => {
                let elem = self.u32(what)?;
                let len = self.u64(what)?;
                // Every element takes at least one byte: a count beyond the
                // remaining bytes means a cut (or corrupt) file, and must not
                // drive a huge allocation.
                let remaining = (self.buf.len() - self.pos) as u64;
                if len > remaining {
                    self.take(len, what)?;
                }
                let mut items = Vec::with_capacity(len as usize);
                for _ in 0..len {
                    items.push(self.value(elem, key)?);
                }
                GgufValue::Array(items)
            }
            10 => GgufValue::U64(u64::from_le_bytes(self.array(what)?)),
            11 => GgufValue::I64(i64::from_le_bytes(self.array(what)?)),
            12 => GgufValue::F64(f64::from_le_bytes(self.array(what)?)),
            other => {
                return Err(LoadError::Format {
                    path: self.path.to_path_buf(),
                    detail: format!("metadata `{key}` has unknown value type {other}"),
                });
            }
        })
    }
}
