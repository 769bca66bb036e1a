//! Which SIMD instruction set the CPU decode kernels ([`crate::model::kernels::gemv`],
//! [`crate::model::kernels::block_gemv`]) use.
//!
//! Every path computes the same f32 operations in the same order, lane for
//! lane, so the choice changes the speed and never a bit of a result (each
//! kernel's tests compare every path the CPU has with the portable one).
//! The best the CPU supports is used unless `HYPERSCALE_CPU_KERNELS`
//! (`portable`, `avx2`, `avx512`) or [`force`] asks for a lower one, which
//! is how benchmarks compare them on one machine.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

/// A kernel instruction set, from least to most capable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// Plain Rust: `mul_add` over 8 interleaved lanes.
    Portable,
    /// AVX2 + FMA + F16C: 8-lane vectors.
    Avx2,
    /// AVX-512 F + DQ on top of AVX2: 16-lane vectors, each holding two
    /// activation rows' 8 lanes side by side.
    Avx512,
}

impl Isa {
    /// Every instruction set this CPU runs, least capable first.
    pub fn supported() -> Vec<Isa> {
        [Isa::Portable, Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|i| i.runs_here())
            .collect()
    }

    /// The most capable instruction set this CPU runs.
    pub fn best() -> Isa {
        *Self::supported().last().expect("portable always runs")
    }

    /// Whether this CPU runs `self`.
    pub fn runs_here(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                    && std::arch::is_x86_feature_detected!("f16c")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                Isa::Avx2.runs_here()
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512dq")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The instruction set the kernels use now: [`force`]'s choice, else
    /// `HYPERSCALE_CPU_KERNELS`'s (capped at what the CPU runs), else
    /// [`Isa::best`].
    pub fn active() -> Isa {
        match FORCED.load(Ordering::Relaxed) {
            0 => *FROM_ENV.get_or_init(|| {
                let best = Isa::best();
                match std::env::var("HYPERSCALE_CPU_KERNELS") {
                    Ok(v) if !v.is_empty() => match v.parse::<Isa>() {
                        Ok(isa) => isa.min(best),
                        Err(e) => {
                            tracing::warn!("HYPERSCALE_CPU_KERNELS: {e}; using {best}");
                            best
                        }
                    },
                    _ => best,
                }
            }),
            code => Isa::from_code(code),
        }
    }

    fn code(self) -> u8 {
        self as u8 + 1
    }

    fn from_code(code: u8) -> Isa {
        match code {
            1 => Isa::Portable,
            2 => Isa::Avx2,
            _ => Isa::Avx512,
        }
    }
}

/// 0: not forced; otherwise [`Isa::code`].
static FORCED: AtomicU8 = AtomicU8::new(0);
static FROM_ENV: OnceLock<Isa> = OnceLock::new();

/// Makes every later kernel call in this process use `isa` (`None`: back
/// to [`Isa::active`]'s default). Errors if the CPU does not run it.
pub fn force(isa: Option<Isa>) -> Result<(), String> {
    match isa {
        Some(i) if !i.runs_here() => Err(format!("this CPU does not run {i} kernels")),
        Some(i) => {
            FORCED.store(i.code(), Ordering::Relaxed);
            Ok(())
        }
        None => {
            FORCED.store(0, Ordering::Relaxed);
            Ok(())
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        })
    }
}

impl FromStr for Isa {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "portable" => Ok(Isa::Portable),
            "avx2" => Ok(Isa::Avx2),
            "avx512" | "avx-512" => Ok(Isa::Avx512),
            other => Err(format!(
                "unknown kernel instruction set {other:?} (expected portable, avx2 or avx512)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_support_is_ordered() {
        for isa in [Isa::Portable, Isa::Avx2, Isa::Avx512] {
            assert_eq!(isa.to_string().parse::<Isa>(), Ok(isa));
            assert_eq!(Isa::from_code(isa.code()), isa);
        }
        assert!("sse".parse::<Isa>().is_err());
        let s = Isa::supported();
        assert_eq!(s[0], Isa::Portable);
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        // AVX-512 kernels build on the AVX2 ones.
        assert!(!Isa::Avx512.runs_here() || Isa::Avx2.runs_here());
    }
}
