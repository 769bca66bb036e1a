//! (generate) — being built.
