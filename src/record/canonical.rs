//! Canonical JSON: serde_json's compact form with every object's keys in
//! sorted order, so a value hashes the same whatever order its maps were
//! built in. Trial ids and the run's config hash are SHA-256 over it.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Compact JSON of `v` with object keys sorted (recursively).
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

/// `sha256:` + the hex SHA-256 of [`canonical_json`] of the resolved config:
/// the identity [`super::Manifest::config_hash`] records and `merge` checks.
pub fn config_hash(config: &Value) -> String {
    format!(
        "sha256:{}",
        hex::encode(Sha256::digest(canonical_json(config).as_bytes()))
    )
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_at_every_depth() {
        let v = json!({"b": [1, {"z": 1, "a": 2}], "a": "x"});
        assert_eq!(canonical_json(&v), r#"{"a":"x","b":[1,{"a":2,"z":1}]}"#);
    }

    #[test]
    fn config_hash_is_sha256_of_the_canonical_form() {
        let v = json!({"grid": {"widths": [1, 2]}, "run": {"name": "r"}});
        let text = r#"{"grid":{"widths":[1,2]},"run":{"name":"r"}}"#;
        let expect = hex::encode(Sha256::digest(text.as_bytes()));
        assert_eq!(config_hash(&v), format!("sha256:{expect}"));
        assert_ne!(config_hash(&v), config_hash(&json!({"grid": {}})));
    }
}
