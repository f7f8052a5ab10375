//! The saved inputs of this crate's fuzz targets (`fixtures/fuzz/<target>/*`) replayed through
//! their oracles, so that a plain `cargo test` keeps them fixed (the other targets' inputs are
//! replayed by dsbackup-proto's `fuzz_regression` test).
#![cfg(test)]

use std::path::Path;

fn replay(target: &str, oracle: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/fuzz")
        .join(target);
    let mut failures = Vec::new();
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        if std::panic::catch_unwind(|| oracle(&bytes)).is_err() {
            failures.push(path.display().to_string());
        }
        replayed += 1;
    }
    assert!(failures.is_empty(), "saved inputs that fail: {failures:?}");
    assert!(replayed > 0, "no saved input under {}", dir.display());
}

#[test]
fn every_saved_ntlm_message_input_passes_its_oracle() {
    replay("ntlm_message", dsbackup_ntlm::fuzzing::decode_message);
}

#[test]
fn every_saved_rc4_differential_input_passes_its_oracle() {
    replay("rc4_differential", dsbackup_ntlm::fuzzing::rc4_differential);
}

#[test]
fn every_saved_md5_multibuffer_input_passes_its_oracle() {
    replay("md5_multibuffer", dsbackup_ntlm::fuzzing::md5_multibuffer);
}

#[test]
fn every_saved_stitch_differential_input_passes_its_oracle() {
    replay(
        "stitch_differential",
        dsbackup_ntlm::fuzzing::stitch_differential,
    );
}
