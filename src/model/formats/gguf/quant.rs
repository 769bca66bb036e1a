//! ggml tensor types and dequantization to f32.
//!
//! Every formula follows ggml's `dequantize_row_*` and is evaluated in the
//! same f32 order as gguf-py's numpy reference (`gguf.quants.dequantize`),
//! so results are bit-identical to it. Rows are dequantized in parallel
//! with rayon.

use half::f16;
use rayon::prelude::*;

/// Values per K-quant super-block.
const QK_K: usize = 256;

macro_rules! ggml_types {
    ($( $variant:ident = $id:literal, $name:literal, $block:expr, $size:expr; )*) => {
        /// A ggml tensor type, as stored in a GGUF tensor info.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum GgmlType { $( $variant, )* }

        impl GgmlType {
            /// The type with this numeric id, if ggml defines one.
            pub fn from_id(id: u32) -> Option<Self> {
                match id { $( $id => Some(GgmlType::$variant), )* _ => None }
            }
            /// The numeric id stored in GGUF files.
            pub fn id(self) -> u32 {
                match self { $( GgmlType::$variant => $id, )* }
            }
            /// ggml's name for the type (`Q4_K`, `BF16`, ...).
            pub fn name(self) -> &'static str {
                match self { $( GgmlType::$variant => $name, )* }
            }
            /// Values per block.
            pub fn block_size(self) -> usize {
                match self { $( GgmlType::$variant => $block, )* }
            }
            /// Bytes per block.
            pub fn type_size(self) -> usize {
                match self { $( GgmlType::$variant => $size, )* }
            }
        }
    };
}

// Sizes from gguf-py's GGML_QUANT_SIZES.
ggml_types! {
    F32 = 0, "F32", 1, 4;
    F16 = 1, "F16", 1, 2;
    Q4_0 = 2, "Q4_0", 32, 2 + 16;
    Q4_1 = 3, "Q4_1", 32, 2 + 2 + 16;
    Q5_0 = 6, "Q5_0", 32, 2 + 4 + 16;
    Q5_1 = 7, "Q5_1", 32, 2 + 2 + 4 + 16;
    Q8_0 = 8, "Q8_0", 32, 2 + 32;
    Q8_1 = 9, "Q8_1", 32, 4 + 4 + 32;
    Q2K = 10, "Q2_K", QK_K, 2 + 2 + QK_K / 16 + QK_K / 4;
    Q3K = 11, "Q3_K", QK_K, 2 + QK_K / 4 + QK_K / 8 + 12;
    Q4K = 12, "Q4_K", QK_K, 2 + 2 + QK_K / 2 + 12;
    Q5K = 13, "Q5_K", QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12;
    Q6K = 14, "Q6_K", QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16;
    Q8K = 15, "Q8_K", QK_K, 4 + QK_K + QK_K / 8;
    Iq2Xxs = 16, "IQ2_XXS", QK_K, 2 + QK_K / 4;
    Iq2Xs = 17, "IQ2_XS", QK_K, 2 + QK_K / 4 + QK_K / 32;
    Iq3Xxs = 18, "IQ3_XXS", QK_K, 2 + QK_K / 4 + QK_K / 8;
    Iq1S = 19, "IQ1_S", QK_K, 2 + QK_K / 8 + QK_K / 16;
    Iq4Nl = 20, "IQ4_NL", 32, 2 + 16;
    Iq3S = 21, "IQ3_S", QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4;
    Iq2S = 22, "IQ2_S", QK_K, 2 + QK_K / 4 + QK_K / 16;
    Iq4Xs = 23, "IQ4_XS", QK_K, 2 + 2 + QK_K / 2 + QK_K / 64;
    I8 = 24, "I8", 1, 1;
    I16 = 25, "I16", 1, 2;
    I32 = 26, "I32", 1, 4;
    I64 = 27, "I64", 1, 8;
    F64 = 28, "F64", 1, 8;
    Iq1M = 29, "IQ1_M", QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32;
    Bf16 = 30, "BF16", 1, 2;
    Tq1_0 = 34, "TQ1_0", QK_K, 2 + 4 * 13;
    Tq2_0 = 35, "TQ2_0", QK_K, 2 + 64;
    Mxfp4 = 39, "MXFP4", 32, 1 + 16;
}

impl GgmlType {
    /// Whether [`dequantize`] handles this type.
    pub fn can_dequantize(self) -> bool {
        matches!(
            self,
            GgmlType::F32
                | GgmlType::F16
                | GgmlType::Bf16
                | GgmlType::Q8_0
                | GgmlType::Q4_0
                | GgmlType::Q4_1
                | GgmlType::Q5_0
                | GgmlType::Q4K
                | GgmlType::Q6K
        )
    }

    /// Bytes taken by `n` consecutive values; `None` unless `n` is a whole
    /// number of blocks (or on overflow).
    pub fn bytes_for(self, n: usize) -> Option<usize> {
        if !n.is_multiple_of(self.block_size()) {
            return None;
        }
        (n / self.block_size()).checked_mul(self.type_size())
    }
}

impl std::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a buffer could not be dequantized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DequantError {
    #[error("dequantizing {0} is not supported")]
    Unsupported(GgmlType),
    #[error("{kind}: {bytes} bytes do not hold {values} values (rows of {row_len})")]
    Length {
        kind: GgmlType,
        bytes: usize,
        values: usize,
        row_len: usize,
    },
}

/// Dequantizes whole blocks of `kind` into f32.
///
/// # Shapes
/// `bytes.len()` must be a multiple of `kind.type_size()`; the result has
/// `bytes.len() / type_size * block_size` values.
pub fn dequantize(kind: GgmlType, bytes: &[u8]) -> Result<Vec<f32>, DequantError> {
    let blocks = bytes.len() / kind.type_size();
    let values = blocks * kind.block_size();
    let mut out = vec![0.0f32; values];
    dequantize_rows(kind, bytes, values.max(1), &mut out)?;
    Ok(out)
}

/// Dequantizes a row-major matrix of `kind` into `out`, one rayon task per
/// group of rows.
///
/// # Shapes
/// `out.len() = rows * row_len`; `bytes.len() = rows * bytes_for(row_len)`;
/// `row_len` must be a multiple of `kind.block_size()`.
pub fn dequantize_rows(
    kind: GgmlType,
    bytes: &[u8],
    row_len: usize,
    out: &mut [f32],
) -> Result<(), DequantError> {
    if !kind.can_dequantize() {
        return Err(DequantError::Unsupported(kind));
    }
    let length_error = DequantError::Length {
        kind,
        bytes: bytes.len(),
        values: out.len(),
        row_len,
    };
    let row_bytes = match kind.bytes_for(row_len) {
        Some(b) if row_len > 0 && out.len().is_multiple_of(row_len) => b,
        _ if out.is_empty() && bytes.is_empty() => return Ok(()),
        _ => return Err(length_error),
    };
    if bytes.len() != out.len() / row_len * row_bytes {
        return Err(length_error);
    }
    out.par_chunks_mut(row_len)
        .zip(bytes.par_chunks(row_bytes))
        .for_each(|(row_out, row_in)| dequantize_block_row(kind, row_in, row_out));
    Ok(())
}

/// One row of whole blocks; `kind` is supported (`can_dequantize`) and
/// `out.len()` is `bytes.len() / type_size * block_size`.
pub fn dequantize_block_row(kind: GgmlType, bytes: &[u8], out: &mut [f32]) {
    let blocks = bytes
        .chunks_exact(kind.type_size())
        .zip(out.chunks_exact_mut(kind.block_size()));
    match kind {
        GgmlType::F32 => {
            blocks.for_each(|(b, o)| o[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        }
        GgmlType::F16 => blocks.for_each(|(b, o)| o[0] = half_at(b, 0)),
        GgmlType::Bf16 => blocks.for_each(|(b, o)| {
            o[0] = f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16)
        }),
        GgmlType::Q8_0 => blocks.for_each(|(b, o)| block_q8_0(b, o)),
        GgmlType::Q4_0 => blocks.for_each(|(b, o)| block_q4_0(b, o)),
        GgmlType::Q4_1 => blocks.for_each(|(b, o)| block_q4_1(b, o)),
        GgmlType::Q5_0 => blocks.for_each(|(b, o)| block_q5_0(b, o)),
        GgmlType::Q4K => blocks.for_each(|(b, o)| block_q4_k(b, o)),
        GgmlType::Q6K => blocks.for_each(|(b, o)| block_q6_k(b, o)),
        _ => unreachable!("dequantize_rows checks can_dequantize"),
    }
}

/// The little-endian f16 at byte `at`, widened (exactly) to f32.
fn half_at(b: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

/// `f16 d; i8 q[32]`: `x = q * d`.
fn block_q8_0(b: &[u8], o: &mut [f32]) {
    let d = half_at(b, 0);
    for (x, &q) in o.iter_mut().zip(&b[2..34]) {
        *x = f32::from(q as i8) * d;
    }
}

/// `f16 d; u8 qs[16]`: low nibbles are values 0..16, high nibbles 16..32.
fn block_q4_0(b: &[u8], o: &mut [f32]) {
    let d = half_at(b, 0);
    for (j, &q) in b[2..18].iter().enumerate() {
        o[j] = d * f32::from((q & 0x0F) as i8 - 8);
        o[j + 16] = d * f32::from((q >> 4) as i8 - 8);
    }
}

/// `f16 d; f16 m; u8 qs[16]`: `x = d * q + m`.
fn block_q4_1(b: &[u8], o: &mut [f32]) {
    let d = half_at(b, 0);
    let m = half_at(b, 2);
    for (j, &q) in b[4..20].iter().enumerate() {
        o[j] = d * f32::from(q & 0x0F) + m;
        o[j + 16] = d * f32::from(q >> 4) + m;
    }
}

/// `f16 d; u32 qh; u8 qs[16]`: 5-bit values, the fifth bit from `qh`.
fn block_q5_0(b: &[u8], o: &mut [f32]) {
    let d = half_at(b, 0);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    for (j, &q) in b[6..22].iter().enumerate() {
        let lo = (q & 0x0F) | ((((qh >> j) & 1) as u8) << 4);
        let hi = (q >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4);
        o[j] = d * f32::from(lo as i8 - 16);
        o[j + 16] = d * f32::from(hi as i8 - 16);
    }
}

/// The 6-bit scale and min of sub-block `j` (ggml `get_scale_min_k4`).
pub(crate) fn scale_min_k4(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

/// `f16 d; f16 dmin; u8 scales[12]; u8 qs[128]`: eight sub-blocks of 32,
/// `x = (d * sc) * q - dmin * m`.
fn block_q4_k(b: &[u8], o: &mut [f32]) {
    let d = half_at(b, 0);
    let dmin = half_at(b, 2);
    let scales = &b[4..16];
    let qs = &b[16..144];
    for chunk in 0..4 {
        let q = &qs[chunk * 32..chunk * 32 + 32];
        for half in 0..2 {
            let sub = 2 * chunk + half;
            let (sc, m) = scale_min_k4(sub, scales);
            let ds = d * f32::from(sc);
            let dm = dmin * f32::from(m);
            let out = &mut o[sub * 32..sub * 32 + 32];
            for (x, &byte) in out.iter_mut().zip(q) {
                *x = ds * f32::from((byte >> (4 * half)) & 0x0F) - dm;
            }
        }
    }
}

/// `u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d`: 6-bit values in two
/// halves of 128, `x = (d * scale) * (q - 32)`, one scale per 16 values.
fn block_q6_k(b: &[u8], o: &mut [f32]) {
    let ql = &b[0..128];
    let qh = &b[128..192];
    let scales = &b[192..208];
    let d = half_at(b, 208);
    for half in 0..2 {
        let ql = &ql[half * 64..half * 64 + 64];
        let qh = &qh[half * 32..half * 32 + 32];
        let out = &mut o[half * 128..half * 128 + 128];
        for (p, x) in out.iter_mut().enumerate() {
            let lo = (ql[p % 64] >> (4 * (p / 64))) & 0x0F;
            let hi = (qh[p % 32] >> (2 * (p / 32))) & 0x03;
            let q = (lo | (hi << 4)) as i8 - 32;
            let scale = f32::from(scales[half * 8 + p / 16] as i8);
            *x = (d * scale) * f32::from(q);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_ggml() {
        assert_eq!(GgmlType::Q4K.type_size(), 144);
        assert_eq!(GgmlType::Q6K.type_size(), 210);
        assert_eq!(GgmlType::Q8_0.type_size(), 34);
        assert_eq!(GgmlType::Q5_0.type_size(), 22);
        assert_eq!(GgmlType::from_id(30), Some(GgmlType::Bf16));
        assert_eq!(GgmlType::from_id(4), None);
    }

    #[test]
    fn q8_0_block_by_hand() {
        let mut b = vec![0u8; 34];
        b[..2].copy_from_slice(&f16::from_f32(0.5).to_bits().to_le_bytes());
        for (i, q) in b[2..].iter_mut().enumerate() {
            *q = (i as i8 - 16) as u8;
        }
        let x = dequantize(GgmlType::Q8_0, &b).unwrap();
        let expected: Vec<f32> = (0..32).map(|i| (i as f32 - 16.0) * 0.5).collect();
        assert_eq!(x, expected);
    }

    #[test]
    fn q4_1_block_by_hand() {
        let mut b = vec![0u8; 20];
        b[..2].copy_from_slice(&f16::from_f32(2.0).to_bits().to_le_bytes());
        b[2..4].copy_from_slice(&f16::from_f32(-1.0).to_bits().to_le_bytes());
        b[4] = 0x3A; // low nibble 10 -> x[0], high nibble 3 -> x[16]
        let x = dequantize(GgmlType::Q4_1, &b).unwrap();
        assert_eq!(x[0], 19.0);
        assert_eq!(x[16], 5.0);
        assert_eq!(x[1], -1.0);
    }

    #[test]
    fn unsupported_and_bad_lengths_are_errors() {
        assert_eq!(
            dequantize(GgmlType::Q5K, &[0; 176]),
            Err(DequantError::Unsupported(GgmlType::Q5K))
        );
        let mut out = vec![0.0; 32];
        assert!(dequantize_rows(GgmlType::Q8_0, &[0; 33], 32, &mut out).is_err());
        assert!(dequantize_rows(GgmlType::Q8_0, &[0; 34], 16, &mut out).is_err());
    }
}
