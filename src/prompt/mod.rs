//! (prompt) — being built.

pub mod template;
