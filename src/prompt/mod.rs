//! (prompt) — being built.
