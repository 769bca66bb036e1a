//! Device selection — being built.
