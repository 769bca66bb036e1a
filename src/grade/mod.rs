//! (grade) — being built.
