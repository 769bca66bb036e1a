//! The one place a trial's cache policy becomes a KV store. Only `dense` is
//! implemented by the store today; the other policies are being added to the
//! KV stage, and when `KvStore::with_policy` lands these two functions are
//! all that changes.

use super::WiringError;
use crate::kv::{CachePolicy, KvShape, KvStore};

/// Whether [`kv_store_for`] can build a store for `policy`.
pub fn policy_supported(policy: &CachePolicy) -> Result<(), WiringError> {
    match policy {
        CachePolicy::Dense {} => Ok(()),
        other => Err(WiringError::UnsupportedPolicy {
            policy: other.method(),
        }),
    }
}

/// An empty store of `shape` that keeps entries as `policy` says.
pub fn kv_store_for(shape: KvShape, policy: &CachePolicy) -> Result<KvStore, WiringError> {
    policy_supported(policy)?;
    Ok(KvStore::new(shape))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::Budget;

    #[test]
    fn dense_builds_and_unimplemented_policies_say_which() {
        let shape = KvShape {
            layers: 2,
            kv_heads: 1,
            head_dim: 4,
        };
        assert!(kv_store_for(shape, &CachePolicy::Dense {}).is_ok());
        let tova = CachePolicy::Tova {
            budget: Budget::Ratio {
                cr: 2.0,
                min_tokens: 8,
            },
        };
        let err = kv_store_for(shape, &tova).unwrap_err().to_string();
        assert!(err.contains("`tova`"), "{err}");
    }
}
