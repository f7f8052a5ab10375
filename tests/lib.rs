//! Workspace integration tests live in `main.rs` (one test binary, modules inside); this
//! library is empty.
