//! (kv) — being built.
