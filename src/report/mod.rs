//! (report) — being built.
