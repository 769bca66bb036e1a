//! The one place a trial's cache policy becomes a KV store
//! (`LoadedModel::policy_store`): every policy on the CPU engine; dense and
//! DMS on device engines (their KV stays in device memory; the scored and
//! paged policies would attend through host memory).

use super::WiringError;
use crate::device::DeviceKind;
use crate::kv::{CachePolicy, DmsParams, KvStore};
use crate::runtime::LoadedModel;

/// Whether `policy`'s parameters are valid (DMS's model-dependent defaults
/// are checked by [`kv_store_for`], against the loaded checkpoint).
pub fn policy_supported(policy: &CachePolicy) -> Result<(), WiringError> {
    let placeholder = DmsParams {
        window: 1,
        shifted: true,
    };
    policy.resolve(Some(placeholder))?;
    Ok(())
}

/// Whether `policy` is valid and runs on `device`: every policy on the CPU;
/// dense and DMS on a device engine (the scored and paged policies attend
/// through host memory). Decided without loading anything, so a sweep skips
/// what the device cannot run before it starts.
pub fn policy_supported_on(policy: &CachePolicy, device: DeviceKind) -> Result<(), WiringError> {
    policy_supported(policy)?;
    let on_device = matches!(policy, CachePolicy::Dense {} | CachePolicy::Dms { .. });
    if !on_device && !matches!(device, DeviceKind::Cpu) {
        return Err(WiringError::UnsupportedPolicy {
            policy: policy.method(),
        });
    }
    Ok(())
}

/// An empty store for `model` that keeps entries as `policy` says; DMS
/// takes its defaults from the checkpoint and fails on a model without DMS
/// parameters. On a cubecl device with a KV memory budget (`kv_memory`,
/// the requests in flight's), the store's device pools are allocated once
/// for the budget at the first write
/// ([`KvStore::with_device_pool_bytes`]), never copied to grow while the
/// requests stay within it; the store's drop gives the memory back.
pub fn kv_store_for(
    model: &LoadedModel,
    policy: &CachePolicy,
    kv_memory: Option<u64>,
) -> Result<KvStore, WiringError> {
    policy_supported_on(policy, model.device)?;
    let store = if matches!(policy, CachePolicy::Dense {}) {
        model.new_store()
    } else {
        model.policy_store(policy)?
    };
    Ok(match kv_memory {
        Some(bytes) if model.device != DeviceKind::Cpu => store.with_device_pool_bytes(bytes),
        _ => store,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::DeviceKind;
    use crate::kv::Budget;

    #[test]
    fn policies_build_and_dms_needs_a_dms_checkpoint() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/models/tiny-llama");
        let model = LoadedModel::load(&dir, DeviceKind::Cpu).unwrap();
        let store = kv_store_for(&model, &CachePolicy::Dense {}, None).unwrap();
        assert_eq!(store.shape(), model.new_store().shape());
        let tova = CachePolicy::Tova {
            budget: Budget::Ratio {
                cr: 2.0,
                min_tokens: 8,
            },
            granularity: crate::kv::TovaGranularity::Layer,
        };
        let store = kv_store_for(&model, &tova, None).unwrap();
        assert_eq!(store.policy().method(), "tova");
        let dms = CachePolicy::Dms {
            window: None,
            shifted: None,
        };
        assert!(policy_supported(&dms).is_ok());
        let err = kv_store_for(&model, &dms, None).unwrap_err().to_string();
        assert!(err.contains("DMS parameters"), "{err}");
        let bad = CachePolicy::Tova {
            budget: Budget::Ratio {
                cr: 0.5,
                min_tokens: 8,
            },
            granularity: crate::kv::TovaGranularity::Layer,
        };
        assert!(policy_supported(&bad).is_err());
    }

    /// Regression (a CUDA sweep stopped mid-run on TOVA, H2O or Quest): the
    /// device is part of the check a sweep makes before it starts.
    #[test]
    fn host_attention_policies_are_refused_on_a_device_up_front() {
        let budget = Budget::Ratio {
            cr: 2.0,
            min_tokens: 8,
        };
        let tova = CachePolicy::Tova {
            budget,
            granularity: crate::kv::TovaGranularity::Layer,
        };
        let dms = CachePolicy::Dms {
            window: None,
            shifted: None,
        };
        for device in [DeviceKind::Cuda(0), DeviceKind::Wgpu] {
            let err = policy_supported_on(&tova, device).unwrap_err().to_string();
            assert!(err.contains("tova"), "{err}");
            assert!(policy_supported_on(&dms, device).is_ok());
            assert!(policy_supported_on(&CachePolicy::Dense {}, device).is_ok());
        }
        assert!(policy_supported_on(&tova, DeviceKind::Cpu).is_ok());
    }
}
