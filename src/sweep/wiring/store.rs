//! The one place a trial's cache policy becomes a KV store. Only `dense` is
//! implemented by the store on this branch; the other policies are being
//! added to the KV stage (`LoadedModel::policy_store`), and when they land
//! the body of these two functions is all that changes.

use super::WiringError;
use crate::kv::{CachePolicy, KvStore};
use crate::runtime::LoadedModel;

/// Whether [`kv_store_for`] can build a store for `policy`.
pub fn policy_supported(policy: &CachePolicy) -> Result<(), WiringError> {
    match policy {
        CachePolicy::Dense {} => Ok(()),
        other => Err(WiringError::UnsupportedPolicy {
            policy: other.method(),
        }),
    }
}

/// An empty store for `model` that keeps entries as `policy` says.
pub fn kv_store_for(model: &LoadedModel, policy: &CachePolicy) -> Result<KvStore, WiringError> {
    policy_supported(policy)?;
    Ok(model.new_store())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::DeviceKind;
    use crate::kv::Budget;

    #[test]
    fn dense_builds_and_unimplemented_policies_say_which() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/models/tiny-llama");
        let model = LoadedModel::load(&dir, DeviceKind::Cpu).unwrap();
        let store = kv_store_for(&model, &CachePolicy::Dense {}).unwrap();
        assert_eq!(store.shape(), model.new_store().shape());
        let tova = CachePolicy::Tova {
            budget: Budget::Ratio {
                cr: 2.0,
                min_tokens: 8,
            },
        };
        let err = kv_store_for(&model, &tova).unwrap_err().to_string();
        assert!(err.contains("`tova`"), "{err}");
        assert!(policy_supported(&tova).is_err());
    }
}
