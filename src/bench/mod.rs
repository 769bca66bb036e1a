//! (bench) — being built.
