//! (task) — being built.
