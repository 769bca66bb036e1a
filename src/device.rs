//! Where the model runs. CPU (burn Flex) always; CUDA only when this binary
//! was built with the `cuda` feature *and* asked for with `--device cuda`,
//! after a probe of the driver so a missing GPU is a one-line error rather
//! than a panic in a worker thread. The CUDA probe also checks what cubecl
//! compiles kernels with ([`crate::cuda_toolkit`]: NVRTC against the driver,
//! the headers), reporting every failure, one line each, before any work;
//! both GPU backends then get the persistent kernel cache
//! ([`crate::kernel_cache`]).

use std::ffi::CStr;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::cuda_toolkit::{ComputeCapability, CudaVersion, ToolkitSearch};
use crate::model::DecodeWeights;

/// A device as named on the command line: `cpu`, `cuda`, `cuda:N`, `wgpu`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceKind {
    Cpu,
    Cuda(usize),
    Wgpu,
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceKind::Cpu => write!(f, "cpu"),
            DeviceKind::Cuda(i) => write!(f, "cuda:{i}"),
            DeviceKind::Wgpu => write!(f, "wgpu"),
        }
    }
}

impl FromStr for DeviceKind {
    type Err = DeviceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" => Ok(DeviceKind::Cpu),
            "cuda" => Ok(DeviceKind::Cuda(0)),
            "wgpu" => Ok(DeviceKind::Wgpu),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|i| i.parse().ok())
                .map(DeviceKind::Cuda)
                .ok_or_else(|| DeviceError::Unknown(s.to_string())),
        }
    }
}

/// A device that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device `{0}` (expected cpu, cuda, cuda:N or wgpu)")]
    Unknown(String),
    #[error("device `{device}` needs a binary built with `--features {feature}`")]
    NotCompiled {
        device: String,
        feature: &'static str,
    },
    #[error("device `{device}` is not usable: {reason}")]
    Unavailable { device: String, reason: String },
    /// NVRTC or the headers cubecl compiles with are missing or unusable;
    /// `failures` holds one line per failure.
    #[error("device `{device}` cannot compile kernels:\n{failures}")]
    Toolkit { device: String, failures: String },
    #[error("device `{device}`: {source}")]
    Capability {
        device: String,
        #[source]
        source: crate::cuda_toolkit::ToolkitError,
    },
}

impl DeviceKind {
    /// Check that the device can be used, before any backend touches it.
    pub fn probe(self) -> Result<(), DeviceError> {
        match self {
            DeviceKind::Cpu => Ok(()),
            DeviceKind::Cuda(index) => {
                if !cfg!(feature = "cuda") {
                    return Err(DeviceError::NotCompiled {
                        device: self.to_string(),
                        feature: "cuda",
                    });
                }
                let info = cuda_device_info(index).map_err(|reason| DeviceError::Unavailable {
                    device: self.to_string(),
                    reason,
                })?;
                ToolkitSearch::system()
                    .probe(info.driver)
                    .map_err(|failures| DeviceError::Toolkit {
                        device: self.to_string(),
                        failures: failures
                            .iter()
                            .map(|f| format!("  - {f}"))
                            .collect::<Vec<_>>()
                            .join("\n"),
                    })?;
                crate::kernel_cache::configure();
                Ok(())
            }
            DeviceKind::Wgpu => {
                if cfg!(feature = "wgpu") {
                    crate::kernel_cache::configure();
                    Ok(())
                } else {
                    Err(DeviceError::NotCompiled {
                        device: self.to_string(),
                        feature: "wgpu",
                    })
                }
            }
        }
    }
}

/// What the driver says about one CUDA device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CudaDeviceInfo {
    /// The CUDA version the driver supports (`cuDriverGetVersion`).
    pub driver: CudaVersion,
    pub capability: ComputeCapability,
}

/// The projections' weight form on CUDA device `index`
/// ([`crate::cuda_toolkit::cuda_decode_weights`]: bf16 only from compute
/// capability 8.0).
pub fn cuda_decode_weights(
    index: usize,
    decode: DecodeWeights,
) -> Result<DecodeWeights, DeviceError> {
    let device = DeviceKind::Cuda(index).to_string();
    let info = cuda_device_info(index).map_err(|reason| DeviceError::Unavailable {
        device: device.clone(),
        reason,
    })?;
    crate::cuda_toolkit::cuda_decode_weights(decode, info.capability)
        .map_err(|source| DeviceError::Capability { device, source })
}

/// Load the CUDA driver library, check device `index` exists, and read the
/// driver's CUDA version and the device's compute capability.
pub fn cuda_device_info(index: usize) -> Result<CudaDeviceInfo, String> {
    // SAFETY: dlopen/dlsym with valid C strings; the symbols are called with
    // the signatures of the CUDA driver API (`CUresult cuInit(unsigned)`,
    // `CUresult cuDeviceGetCount(int*)`, `CUresult cuDriverGetVersion(int*)`,
    // `CUresult cuDeviceGet(CUdevice*, int)`,
    // `CUresult cuDeviceGetAttribute(int*, CUdevice_attribute, CUdevice)`).
    unsafe {
        let lib = libc::dlopen(c"libcuda.so.1".as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
        if lib.is_null() {
            let err = libc::dlerror();
            let detail = if err.is_null() {
                String::new()
            } else {
                CStr::from_ptr(err).to_string_lossy().into_owned()
            };
            return Err(format!(
                "the NVIDIA driver library libcuda.so.1 could not be loaded ({detail}); is there a GPU and driver on this machine?"
            ));
        }
        let init = libc::dlsym(lib, c"cuInit".as_ptr());
        let count = libc::dlsym(lib, c"cuDeviceGetCount".as_ptr());
        if init.is_null() || count.is_null() {
            return Err("libcuda.so.1 lacks cuInit/cuDeviceGetCount".into());
        }
        let init: extern "C" fn(u32) -> i32 = std::mem::transmute(init);
        let count: extern "C" fn(*mut i32) -> i32 = std::mem::transmute(count);
        let rc = init(0);
        if rc != 0 {
            return Err(format!(
                "cuInit failed with CUDA error {rc} (100 = no CUDA-capable device)"
            ));
        }
        let mut n = 0i32;
        let rc = count(&mut n);
        if rc != 0 {
            return Err(format!("cuDeviceGetCount failed with CUDA error {rc}"));
        }
        if index >= n as usize {
            return Err(format!("device index {index} but {n} CUDA device(s) found"));
        }
        let version = libc::dlsym(lib, c"cuDriverGetVersion".as_ptr());
        let get = libc::dlsym(lib, c"cuDeviceGet".as_ptr());
        let attribute = libc::dlsym(lib, c"cuDeviceGetAttribute".as_ptr());
        if version.is_null() || get.is_null() || attribute.is_null() {
            return Err(
                "libcuda.so.1 lacks cuDriverGetVersion/cuDeviceGet/cuDeviceGetAttribute".into(),
            );
        }
        let version: extern "C" fn(*mut i32) -> i32 = std::mem::transmute(version);
        let get: extern "C" fn(*mut i32, i32) -> i32 = std::mem::transmute(get);
        let attribute: extern "C" fn(*mut i32, i32, i32) -> i32 = std::mem::transmute(attribute);
        let mut driver = 0i32;
        if version(&mut driver) != 0 {
            return Err("cuDriverGetVersion failed".into());
        }
        let mut dev = 0i32;
        if get(&mut dev, index as i32) != 0 {
            return Err(format!("cuDeviceGet({index}) failed"));
        }
        // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR / _MINOR.
        let (mut major, mut minor) = (0i32, 0i32);
        if attribute(&mut major, 75, dev) != 0 || attribute(&mut minor, 76, dev) != 0 {
            return Err("cuDeviceGetAttribute(compute capability) failed".into());
        }
        Ok(CudaDeviceInfo {
            driver: CudaVersion(driver),
            capability: ComputeCapability(major, minor),
        })
    }
}

/// Free and total memory of CUDA device `index`, in bytes, as the driver
/// counts them (`cuMemGetInfo` in the device's primary context, which the
/// CUDA runtime of this process shares: memory this process and every other
/// one holds is not free).
pub fn cuda_free_memory(index: usize) -> Result<(u64, u64), String> {
    // SAFETY: dlopen/dlsym with valid C strings; the symbols are called with
    // the signatures of the CUDA driver API (`CUresult cuInit(unsigned)`,
    // `CUresult cuDeviceGet(CUdevice*, int)`,
    // `CUresult cuDevicePrimaryCtxRetain(CUcontext*, CUdevice)`,
    // `CUresult cuCtxPushCurrent(CUcontext)`,
    // `CUresult cuMemGetInfo(size_t*, size_t*)`,
    // `CUresult cuCtxPopCurrent(CUcontext*)`,
    // `CUresult cuDevicePrimaryCtxRelease(CUdevice)`); the context pushed is
    // popped and the retained one released before returning.
    unsafe {
        let lib = libc::dlopen(c"libcuda.so.1".as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
        if lib.is_null() {
            return Err("the NVIDIA driver library libcuda.so.1 could not be loaded".into());
        }
        let sym = |name: &CStr| libc::dlsym(lib, name.as_ptr());
        let names = [
            c"cuInit",
            c"cuDeviceGet",
            c"cuDevicePrimaryCtxRetain",
            c"cuCtxPushCurrent_v2",
            c"cuMemGetInfo_v2",
            c"cuCtxPopCurrent_v2",
            c"cuDevicePrimaryCtxRelease_v2",
        ];
        let ptrs: Vec<*mut libc::c_void> = names.iter().map(|n| sym(n)).collect();
        if let Some(i) = ptrs.iter().position(|p| p.is_null()) {
            return Err(format!("libcuda.so.1 lacks {}", names[i].to_string_lossy()));
        }
        type Ctx = *mut libc::c_void;
        let init: extern "C" fn(u32) -> i32 = std::mem::transmute(ptrs[0]);
        let get: extern "C" fn(*mut i32, i32) -> i32 = std::mem::transmute(ptrs[1]);
        let retain: extern "C" fn(*mut Ctx, i32) -> i32 = std::mem::transmute(ptrs[2]);
        let push: extern "C" fn(Ctx) -> i32 = std::mem::transmute(ptrs[3]);
        let info: extern "C" fn(*mut usize, *mut usize) -> i32 = std::mem::transmute(ptrs[4]);
        let pop: extern "C" fn(*mut Ctx) -> i32 = std::mem::transmute(ptrs[5]);
        let release: extern "C" fn(i32) -> i32 = std::mem::transmute(ptrs[6]);
        if init(0) != 0 {
            return Err("cuInit failed".into());
        }
        let mut dev = 0i32;
        if get(&mut dev, index as i32) != 0 {
            return Err(format!("cuDeviceGet({index}) failed"));
        }
        let mut ctx: Ctx = std::ptr::null_mut();
        if retain(&mut ctx, dev) != 0 {
            return Err(format!("cuDevicePrimaryCtxRetain({index}) failed"));
        }
        let (mut free, mut total) = (0usize, 0usize);
        let rc = if push(ctx) == 0 {
            let rc = info(&mut free, &mut total);
            let mut popped: Ctx = std::ptr::null_mut();
            pop(&mut popped);
            rc
        } else {
            -1
        };
        release(dev);
        if rc != 0 {
            return Err(format!(
                "cuMemGetInfo on device {index} failed (CUDA error {rc})"
            ));
        }
        Ok((free as u64, total as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_names() {
        assert_eq!("cpu".parse::<DeviceKind>().unwrap(), DeviceKind::Cpu);
        assert_eq!("cuda".parse::<DeviceKind>().unwrap(), DeviceKind::Cuda(0));
        assert_eq!("cuda:3".parse::<DeviceKind>().unwrap(), DeviceKind::Cuda(3));
        assert!("tpu".parse::<DeviceKind>().is_err());
    }

    #[test]
    fn cuda_without_a_gpu_is_an_error_not_a_panic() {
        // On a machine without a driver (CI) or a build without the feature,
        // the probe answers with an error; on a GPU box with the feature it
        // succeeds. Either way it must not panic.
        let r = DeviceKind::Cuda(0).probe();
        if !cfg!(feature = "cuda") {
            assert!(matches!(r, Err(DeviceError::NotCompiled { .. })));
        }
    }
}
