//! The saved inputs of the `ntlm_message` fuzz target (`fixtures/fuzz/ntlm_message/*`) replayed
//! through its oracle, so that a plain `cargo test` keeps them fixed (the other targets' inputs
//! are replayed by dsbackup-proto's `fuzz_regression` test).
#![cfg(test)]

use std::path::Path;

#[test]
fn every_saved_ntlm_message_input_passes_its_oracle() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/fuzz/ntlm_message");
    let mut failures = Vec::new();
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        if std::panic::catch_unwind(|| dsbackup_ntlm::fuzzing::decode_message(&bytes)).is_err() {
            failures.push(path.display().to_string());
        }
        replayed += 1;
    }
    assert!(failures.is_empty(), "saved inputs that fail: {failures:?}");
    assert!(replayed > 0, "no saved input under {}", dir.display());
}
