//! (model) — being built.
