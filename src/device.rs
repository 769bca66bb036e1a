//! Where the model runs. CPU (burn Flex) always; CUDA only when this binary
//! was built with the `cuda` feature *and* asked for with `--device cuda`,
//! after a probe of the driver so a missing GPU is a one-line error rather
//! than a panic in a worker thread.

use std::ffi::CStr;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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
                probe_cuda(index).map_err(|reason| DeviceError::Unavailable {
                    device: self.to_string(),
                    reason,
                })
            }
            DeviceKind::Wgpu => {
                if cfg!(feature = "wgpu") {
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

/// Load the CUDA driver library and count devices through the driver API.
fn probe_cuda(index: usize) -> Result<(), String> {
    // SAFETY: dlopen/dlsym with valid C strings; the symbols are called with
    // the signatures of the CUDA driver API (`CUresult cuInit(unsigned)`,
    // `CUresult cuDeviceGetCount(int*)`).
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
    }
    Ok(())
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
