//! What cubecl's CUDA runtime needs besides the driver, checked before any
//! work so that a missing piece is a one-line error rather than a panic at
//! the first kernel.
//!
//! cubecl-cuda 0.10 compiles every kernel at run time with NVRTC (cudarc
//! opens `libnvrtc.so*` through the dynamic loader) against the toolkit's
//! headers: it takes `CUDA_PATH`, else `/usr/local/cuda`, else `/opt/cuda`,
//! else `/usr` when `/usr/bin/nvcc` exists, and panics when none is there.
//! The PTX NVRTC emits is loaded by the driver, which accepts PTX of its own
//! CUDA version or older only. bf16 arithmetic needs compute capability 8.0
//! (Ampere) or newer.
//!
//! Every search path is a field of [`ToolkitSearch`], so the checks run in
//! tests against fake library and include directories;
//! [`ToolkitSearch::system`] is this machine's.

use std::ffi::{CStr, CString};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::model::DecodeWeights;

/// The headers the kernels cubecl generates for this harness include
/// (`cubecl-cpp`'s CUDA dialect: the runtime, both half types, and `mma.h`
/// for the matmuls).
pub const REQUIRED_HEADERS: [&str; 4] = ["cuda_runtime.h", "cuda_fp16.h", "cuda_bf16.h", "mma.h"];

/// The file names cudarc's loader tries for NVRTC, newest first.
pub const NVRTC_NAMES: [&str; 5] = [
    "libnvrtc.so",
    "libnvrtc.so.13",
    "libnvrtc.so.12",
    "libnvrtc.so.11",
    "libnvrtc.so.1",
];

/// A CUDA version as the driver API encodes it: `1000 * major + 10 * minor`
/// (12.4 is 12040).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CudaVersion(pub i32);

impl CudaVersion {
    /// From a major and minor version, as `nvrtcVersion` returns them.
    pub fn new(major: i32, minor: i32) -> Self {
        Self(1000 * major + 10 * minor)
    }
}

impl fmt::Display for CudaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0 / 1000, (self.0 % 1000) / 10)
    }
}

/// A compute capability, `(major, minor)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ComputeCapability(pub i32, pub i32);

impl ComputeCapability {
    /// bf16 arithmetic (and cubecl's bf16 matmuls) need Ampere, 8.0.
    pub fn has_bf16(self) -> bool {
        self.0 >= 8
    }
}

impl fmt::Display for ComputeCapability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// One missing or unusable piece of the toolkit; each message is one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolkitError {
    #[error(
        "no CUDA installation for NVRTC's headers: CUDA_PATH is unset and none of {tried} exists (set CUDA_PATH to the toolkit)"
    )]
    NoCudaRoot { tried: String },
    #[error(
        "CUDA headers missing from `{include}`: {missing} (set CUDA_PATH to a toolkit that has them)"
    )]
    MissingHeaders { include: PathBuf, missing: String },
    #[error(
        "NVRTC (libnvrtc.so*) not found {searched}; install the toolkit's NVRTC and put its lib64 on LD_LIBRARY_PATH"
    )]
    NvrtcNotFound { searched: String },
    #[error("NVRTC `{path}` cannot be loaded: {detail}")]
    NvrtcUnloadable { path: String, detail: String },
    #[error("NVRTC `{path}` has no usable nvrtcVersion")]
    NvrtcNoVersion { path: String },
    #[error(
        "NVRTC {nvrtc} (`{path}`) emits PTX that the driver (CUDA {driver}) cannot load; use an NVRTC of CUDA {driver} or older, or a newer driver"
    )]
    NvrtcNewerThanDriver {
        path: String,
        nvrtc: CudaVersion,
        driver: CudaVersion,
    },
    #[error(
        "--decode-weights bf16 needs compute capability 8.0 or newer, but the device has {capability}; use --decode-weights f32 or auto"
    )]
    Bf16Unsupported { capability: ComputeCapability },
}

/// Where to look for NVRTC and the headers.
#[derive(Debug, Clone, Default)]
pub struct ToolkitSearch {
    /// Ask the dynamic loader for NVRTC by name first, as cudarc does.
    pub use_loader: bool,
    /// Directories searched for NVRTC by file name (after the loader).
    pub lib_dirs: Vec<PathBuf>,
    /// `CUDA_PATH` when set: cubecl takes it as the root unchecked.
    pub cuda_path: Option<PathBuf>,
    /// Roots tried in order when `CUDA_PATH` is unset; the first that exists
    /// is the one cubecl uses.
    pub roots: Vec<PathBuf>,
}

/// A usable NVRTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nvrtc {
    /// The name or path it was loaded by.
    pub path: String,
    pub version: CudaVersion,
}

/// The toolkit as found: what a run will compile with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toolkit {
    pub nvrtc: Nvrtc,
    /// The directory passed to NVRTC as `--include-path`.
    pub include: PathBuf,
}

impl ToolkitSearch {
    /// This machine: the loader, `LD_LIBRARY_PATH`, the toolkit's `lib64`
    /// (to say where an NVRTC off the loader path lies), and cubecl's roots.
    pub fn system() -> Self {
        let cuda_path = std::env::var_os("CUDA_PATH").map(PathBuf::from);
        let mut roots = vec![PathBuf::from("/usr/local/cuda"), PathBuf::from("/opt/cuda")];
        if Path::new("/usr/bin/nvcc").exists() {
            roots.push(PathBuf::from("/usr"));
        }
        let mut lib_dirs: Vec<PathBuf> = std::env::var_os("LD_LIBRARY_PATH")
            .map(|v| std::env::split_paths(&v).collect())
            .unwrap_or_default();
        for root in cuda_path.iter().chain(&roots) {
            lib_dirs.push(root.join("lib64"));
        }
        Self {
            use_loader: true,
            lib_dirs,
            cuda_path,
            roots,
        }
    }

    /// The root cubecl will take, or why there is none.
    pub fn cuda_root(&self) -> Result<PathBuf, ToolkitError> {
        if let Some(path) = &self.cuda_path {
            return Ok(path.clone());
        }
        self.roots
            .iter()
            .find(|r| r.exists())
            .cloned()
            .ok_or_else(|| ToolkitError::NoCudaRoot {
                tried: join_paths(&self.roots),
            })
    }

    /// The include directory, when it holds every [`REQUIRED_HEADERS`].
    pub fn headers(&self) -> Result<PathBuf, ToolkitError> {
        let include = self.cuda_root()?.join("include");
        let missing: Vec<&str> = REQUIRED_HEADERS
            .iter()
            .copied()
            .filter(|h| !include.join(h).is_file())
            .collect();
        if missing.is_empty() {
            Ok(include)
        } else {
            Err(ToolkitError::MissingHeaders {
                include,
                missing: missing.join(", "),
            })
        }
    }

    /// Load NVRTC as cudarc would and read its version.
    pub fn nvrtc(&self) -> Result<Nvrtc, ToolkitError> {
        if self.use_loader {
            for name in NVRTC_NAMES {
                if let Ok(lib) = Library::open(name) {
                    return nvrtc_version(&lib, name);
                }
            }
        }
        for dir in &self.lib_dirs {
            for name in NVRTC_NAMES {
                let path = dir.join(name);
                if path.exists() {
                    let shown = path.display().to_string();
                    let lib =
                        Library::open(&shown).map_err(|detail| ToolkitError::NvrtcUnloadable {
                            path: shown.clone(),
                            detail,
                        })?;
                    return nvrtc_version(&lib, &shown);
                }
            }
        }
        let dirs = join_paths(&self.lib_dirs);
        Err(ToolkitError::NvrtcNotFound {
            searched: match (self.use_loader, self.lib_dirs.is_empty()) {
                (true, true) => "on the loader path".into(),
                (true, false) => format!("on the loader path nor in {dirs}"),
                (false, _) => format!("in {dirs}"),
            },
        })
    }

    /// Every check against a driver of CUDA version `driver`; all failures,
    /// each one line, when any fails.
    pub fn probe(&self, driver: CudaVersion) -> Result<Toolkit, Vec<ToolkitError>> {
        let mut failures = Vec::new();
        let nvrtc = self
            .nvrtc()
            .and_then(|n| nvrtc_fits_driver(&n, driver).map(|()| n))
            .map_err(|e| failures.push(e))
            .ok();
        let include = self.headers().map_err(|e| failures.push(e)).ok();
        match (nvrtc, include) {
            (Some(nvrtc), Some(include)) => Ok(Toolkit { nvrtc, include }),
            _ => Err(failures),
        }
    }
}

/// The driver loads PTX of its own CUDA version or older.
pub fn nvrtc_fits_driver(nvrtc: &Nvrtc, driver: CudaVersion) -> Result<(), ToolkitError> {
    if nvrtc.version <= driver {
        Ok(())
    } else {
        Err(ToolkitError::NvrtcNewerThanDriver {
            path: nvrtc.path.clone(),
            nvrtc: nvrtc.version,
            driver,
        })
    }
}

/// The projections' weight form on a CUDA device of `capability`: `Auto` is
/// bf16 from 8.0 and f32 below; an explicit bf16 below 8.0 is refused.
pub fn cuda_decode_weights(
    decode: DecodeWeights,
    capability: ComputeCapability,
) -> Result<DecodeWeights, ToolkitError> {
    match decode {
        DecodeWeights::Auto if capability.has_bf16() => Ok(DecodeWeights::Bf16),
        DecodeWeights::Auto => Ok(DecodeWeights::F32),
        DecodeWeights::Bf16 if !capability.has_bf16() => {
            Err(ToolkitError::Bf16Unsupported { capability })
        }
        other => Ok(other),
    }
}

fn join_paths(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| format!("`{}`", p.display())).collect();
    if shown.is_empty() {
        "no directory".into()
    } else {
        shown.join(", ")
    }
}

/// A `dlopen`ed library, closed on drop.
struct Library(*mut libc::c_void);

impl Library {
    fn open(name: &str) -> Result<Self, String> {
        let c = CString::new(name).map_err(|_| format!("`{name}` holds a NUL byte"))?;
        // SAFETY: a valid C string; the handle is closed once, in Drop.
        let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            Err(last_dl_error())
        } else {
            Ok(Self(handle))
        }
    }

    fn symbol(&self, name: &CStr) -> Option<*mut libc::c_void> {
        // SAFETY: a live handle and a valid C string.
        let sym = unsafe { libc::dlsym(self.0, name.as_ptr()) };
        (!sym.is_null()).then_some(sym)
    }
}

impl Drop for Library {
    fn drop(&mut self) {
        // SAFETY: the handle came from dlopen and is closed only here.
        unsafe { libc::dlclose(self.0) };
    }
}

fn last_dl_error() -> String {
    // SAFETY: dlerror returns null or a C string valid until the next dl call.
    unsafe {
        let err = libc::dlerror();
        if err.is_null() {
            "unknown dlopen error".into()
        } else {
            CStr::from_ptr(err).to_string_lossy().into_owned()
        }
    }
}

/// `nvrtcResult nvrtcVersion(int *major, int *minor)`.
fn nvrtc_version(lib: &Library, path: &str) -> Result<Nvrtc, ToolkitError> {
    let no_version = || ToolkitError::NvrtcNoVersion { path: path.into() };
    let sym = lib.symbol(c"nvrtcVersion").ok_or_else(no_version)?;
    // SAFETY: NVRTC's documented signature.
    let version: extern "C" fn(*mut i32, *mut i32) -> i32 = unsafe { std::mem::transmute(sym) };
    let (mut major, mut minor) = (0i32, 0i32);
    if version(&mut major, &mut minor) != 0 || major <= 0 {
        return Err(no_version());
    }
    Ok(Nvrtc {
        path: path.into(),
        version: CudaVersion::new(major, minor),
    })
}

#[cfg(test)]
#[path = "cuda_toolkit_tests.rs"]
mod tests;
