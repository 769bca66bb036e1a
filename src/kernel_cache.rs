//! A persistent cache for the GPU backends' compiled kernels (cubecl's PTX
//! cache on CUDA, its shader cache on wgpu) and autotune results, so a
//! second process neither recompiles nor re-autotunes.
//!
//! cubecl 0.10 reads one process-wide configuration
//! (`cubecl::config::CubeClRuntimeConfig`) the first time a device is
//! opened: from a `cubecl.toml` above the working directory, then
//! `CUBECL_*` variables. [`configure`] takes that same configuration and,
//! where it names no cache of its own, points both caches at
//! [`kernel_cache_dir`] — before any device work, from
//! [`crate::device::DeviceKind::probe`]. A configuration cubecl already
//! loaded is left as it is. The same configuration carries the launch log
//! of `bench decode --profile` ([`with_launch_log`]).

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::OnceLock;

use cubecl::config::cache::CacheConfig;
use cubecl::config::profiling::ProfilingLogLevel;
use cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};

/// `HYPERSCALE_KERNEL_CACHE` if set, else `$XDG_CACHE_HOME/hyperscale/kernels`,
/// else `$HOME/.cache/hyperscale/kernels`; `None` with neither (cubecl's
/// default then applies). `var` reads the environment.
pub fn kernel_cache_dir(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    set("HYPERSCALE_KERNEL_CACHE")
        .or_else(|| set("XDG_CACHE_HOME").map(|d| d.join("hyperscale").join("kernels")))
        .or_else(|| set("HOME").map(|d| d.join(".cache").join("hyperscale").join("kernels")))
}

/// `config` with its compilation and autotune caches in `dir`, unless it
/// already names its own.
pub fn with_cache_dir(mut config: CubeClRuntimeConfig, dir: PathBuf) -> CubeClRuntimeConfig {
    if config.compilation.cache.is_none() {
        config.compilation.cache = Some(CacheConfig::File(dir.clone()));
    }
    if matches!(config.autotune.cache, CacheConfig::Target) {
        config.autotune.cache = CacheConfig::File(dir);
    }
    config
}

/// `config` recording every kernel launch in `log`, untimed (profiling
/// level `minimal`: no synchronisation added), for
/// [`crate::bench::launches`].
pub fn with_launch_log(mut config: CubeClRuntimeConfig, log: PathBuf) -> CubeClRuntimeConfig {
    config.profiling.logger.level = ProfilingLogLevel::Minimal;
    config.profiling.logger.file = Some(log);
    config.profiling.logger.append = false;
    config
}

/// Install the cache configuration once per process (see the module docs);
/// returns the directory in use, `None` when cubecl's own applies.
pub fn configure() -> Option<PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = kernel_cache_dir(|name| std::env::var_os(name));
        let launches = crate::bench::launches::requested();
        if dir.is_none() && launches.is_none() {
            return None;
        }
        let mut slot = CubeClRuntimeConfig::storage().lock();
        if slot.is_some() {
            return None;
        }
        let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
        if let Some(dir) = &dir {
            config = with_cache_dir(config, dir.clone());
        }
        if let Some(log) = launches {
            config = with_launch_log(config, log.to_path_buf());
        }
        *slot = Some(std::sync::Arc::new(config));
        dir
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn the_cache_dir_follows_the_environment_in_order() {
        let all = [
            ("HYPERSCALE_KERNEL_CACHE", "/k"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(kernel_cache_dir(env(&all)), Some(PathBuf::from("/k")));
        assert_eq!(
            kernel_cache_dir(env(&all[1..])),
            Some(PathBuf::from("/x/hyperscale/kernels"))
        );
        assert_eq!(
            kernel_cache_dir(env(&all[2..])),
            Some(PathBuf::from("/h/.cache/hyperscale/kernels"))
        );
        assert_eq!(kernel_cache_dir(env(&[("HOME", "")])), None);
    }

    #[test]
    fn both_caches_go_to_the_dir_unless_configured() {
        let c = with_cache_dir(CubeClRuntimeConfig::default(), "/k".into());
        assert!(
            matches!(c.compilation.cache, Some(CacheConfig::File(ref p)) if p == &PathBuf::from("/k"))
        );
        assert!(matches!(c.autotune.cache, CacheConfig::File(ref p) if p == &PathBuf::from("/k")));
        let mut own = CubeClRuntimeConfig::default();
        own.compilation.cache = Some(CacheConfig::Local);
        own.autotune.cache = CacheConfig::Global;
        let c = with_cache_dir(own, "/k".into());
        assert!(matches!(c.compilation.cache, Some(CacheConfig::Local)));
        assert!(matches!(c.autotune.cache, CacheConfig::Global));
    }
}
