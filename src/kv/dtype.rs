//! The element type K and V are stored in, and how `--kv-dtype` picks it.
//!
//! The host payload (the CPU, and every policy the host serves on a device)
//! stores f32. The device payload of a cubecl backend (dense and DMS on
//! `--device cuda` / `wgpu`) may store f16 or bf16: the kernels round each
//! entry once when they write it and accumulate attention in f32. The
//! ledger counts resident bytes, `peak_bytes` and the bytes behind KV reads
//! in the stored width ([`KvDtype::bytes`]).

use std::fmt;

use crate::device::{DeviceError, DeviceKind};

/// The element K and V are stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KvDtype {
    /// 4 bytes per value: every CPU run, and the form `--kv-dtype f32`
    /// keeps on a device.
    #[default]
    F32,
    /// IEEE half: 2 bytes per value (wgpu where the adapter has
    /// `shader-f16`; CUDA).
    F16,
    /// bfloat16: 2 bytes per value (CUDA with compute capability ≥ 8.0;
    /// WGSL has no bf16).
    Bf16,
}

impl KvDtype {
    /// Bytes of one stored value.
    pub fn bytes(self) -> u64 {
        match self {
            KvDtype::F32 => 4,
            KvDtype::F16 | KvDtype::Bf16 => 2,
        }
    }
}

impl fmt::Display for KvDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KvDtype::F32 => "f32",
            KvDtype::F16 => "f16",
            KvDtype::Bf16 => "bf16",
        })
    }
}

/// `--kv-dtype`: a stored element, or `auto` (bf16 on CUDA with compute
/// capability ≥ 8.0, f32 elsewhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum KvDtypeChoice {
    #[default]
    Auto,
    F32,
    F16,
    Bf16,
}

impl KvDtypeChoice {
    /// The element this choice names; `None` for `auto`.
    pub fn fixed(self) -> Option<KvDtype> {
        match self {
            KvDtypeChoice::Auto => None,
            KvDtypeChoice::F32 => Some(KvDtype::F32),
            KvDtypeChoice::F16 => Some(KvDtype::F16),
            KvDtypeChoice::Bf16 => Some(KvDtype::Bf16),
        }
    }
}

/// What a device can store K/V in, as [`KvDtypeChoice::resolve`] needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvTarget {
    /// The host payload: f32 only.
    Cpu,
    /// A CUDA device; `bf16`: compute capability ≥ 8.0.
    Cuda { bf16: bool },
    /// A wgpu adapter; `f16`: it has `shader-f16`.
    Wgpu { f16: bool },
}

impl KvTarget {
    /// Ask `device` what it can store (the CUDA driver's compute
    /// capability; the wgpu adapter's features).
    ///
    /// # Errors
    /// When the CUDA driver cannot describe the device.
    pub fn probe(device: DeviceKind) -> Result<Self, DeviceError> {
        match device {
            DeviceKind::Cpu => Ok(KvTarget::Cpu),
            DeviceKind::Cuda(index) => {
                let info = crate::device::cuda_device_info(index).map_err(|reason| {
                    DeviceError::Unavailable {
                        device: device.to_string(),
                        reason,
                    }
                })?;
                Ok(KvTarget::Cuda {
                    bf16: info.capability.has_bf16(),
                })
            }
            #[cfg(feature = "wgpu")]
            DeviceKind::Wgpu => {
                use cubecl::Runtime;
                let client =
                    cubecl::wgpu::WgpuRuntime::client(&cubecl::wgpu::WgpuDevice::default());
                Ok(KvTarget::Wgpu {
                    f16: super::cube_kernel::supports(&client, KvDtype::F16),
                })
            }
            #[cfg(not(feature = "wgpu"))]
            DeviceKind::Wgpu => Ok(KvTarget::Wgpu { f16: false }),
        }
    }
}

/// A `--kv-dtype` the device cannot store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvDtypeError {
    #[error("--kv-dtype {0}: the CPU stores K/V in f32; use --kv-dtype f32 or auto")]
    Cpu(KvDtype),
    #[error(
        "--kv-dtype bf16 needs compute capability 8.0 or newer on CUDA; use --kv-dtype f16, f32 or auto"
    )]
    CudaBf16,
    #[error("--kv-dtype bf16: wgpu (WGSL) has no bf16; use --kv-dtype f16 or f32")]
    WgpuBf16,
    #[error("--kv-dtype f16: this wgpu adapter lacks shader-f16; use --kv-dtype f32")]
    WgpuF16,
}

impl KvDtypeChoice {
    /// The element K/V are stored in on `target`: `auto` is bf16 on CUDA
    /// with bf16 support and f32 everywhere else; an element the device
    /// cannot store is refused.
    pub fn resolve(self, target: KvTarget) -> Result<KvDtype, KvDtypeError> {
        match (self, target) {
            (KvDtypeChoice::Auto, KvTarget::Cuda { bf16: true }) => Ok(KvDtype::Bf16),
            (KvDtypeChoice::Auto | KvDtypeChoice::F32, _) => Ok(KvDtype::F32),
            (KvDtypeChoice::F16 | KvDtypeChoice::Bf16, KvTarget::Cpu) => {
                Err(KvDtypeError::Cpu(self.fixed().expect("not auto")))
            }
            (KvDtypeChoice::Bf16, KvTarget::Cuda { bf16: false }) => Err(KvDtypeError::CudaBf16),
            (KvDtypeChoice::Bf16, KvTarget::Wgpu { .. }) => Err(KvDtypeError::WgpuBf16),
            (KvDtypeChoice::F16, KvTarget::Wgpu { f16: false }) => Err(KvDtypeError::WgpuF16),
            (KvDtypeChoice::F16, _) => Ok(KvDtype::F16),
            (KvDtypeChoice::Bf16, KvTarget::Cuda { bf16: true }) => Ok(KvDtype::Bf16),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_and_names() {
        assert_eq!(KvDtype::F32.bytes(), 4);
        assert_eq!(KvDtype::F16.bytes(), 2);
        assert_eq!(KvDtype::Bf16.bytes(), 2);
        assert_eq!(KvDtype::Bf16.to_string(), "bf16");
        assert_eq!(KvDtypeChoice::Auto.fixed(), None);
        assert_eq!(KvDtypeChoice::F16.fixed(), Some(KvDtype::F16));
    }

    #[test]
    fn auto_is_bf16_on_cuda_with_bf16_and_f32_elsewhere() {
        use KvDtypeChoice as C;
        let ampere = KvTarget::Cuda { bf16: true };
        let turing = KvTarget::Cuda { bf16: false };
        let lavapipe = KvTarget::Wgpu { f16: true };
        assert_eq!(C::Auto.resolve(ampere), Ok(KvDtype::Bf16));
        assert_eq!(C::Auto.resolve(turing), Ok(KvDtype::F32));
        assert_eq!(C::Auto.resolve(lavapipe), Ok(KvDtype::F32));
        assert_eq!(C::Auto.resolve(KvTarget::Cpu), Ok(KvDtype::F32));
        assert_eq!(C::F32.resolve(ampere), Ok(KvDtype::F32));
        assert_eq!(C::F16.resolve(lavapipe), Ok(KvDtype::F16));
        assert_eq!(C::F16.resolve(turing), Ok(KvDtype::F16));
        assert_eq!(C::Bf16.resolve(ampere), Ok(KvDtype::Bf16));
    }

    #[test]
    fn narrow_dtypes_the_device_cannot_store_are_refused() {
        use KvDtypeChoice as C;
        assert_eq!(
            C::F16.resolve(KvTarget::Cpu),
            Err(KvDtypeError::Cpu(KvDtype::F16))
        );
        assert_eq!(
            C::Bf16.resolve(KvTarget::Cuda { bf16: false }),
            Err(KvDtypeError::CudaBf16)
        );
        assert_eq!(
            C::Bf16.resolve(KvTarget::Wgpu { f16: true }),
            Err(KvDtypeError::WgpuBf16)
        );
        assert_eq!(
            C::F16.resolve(KvTarget::Wgpu { f16: false }),
            Err(KvDtypeError::WgpuF16)
        );
    }
}
