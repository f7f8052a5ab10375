//! The saved inputs of the Kerberos fuzz targets (`fixtures/fuzz/krb_*/*`) replayed through
//! their oracles, so that a plain `cargo test` keeps them fixed (the other targets' inputs are
//! replayed by dsbackup-proto's and dsbackup-ntlm's `fuzz_regression` tests).
#![cfg(test)]

use std::path::Path;

/// A fuzzing oracle: panics when the input breaks a property.
type Oracle = fn(&[u8]);

/// The targets whose oracles live in this crate, by their name under `fuzz/fuzz_targets/`.
const ORACLES: &[(&str, Oracle)] = &[
    ("krb_acceptor", dsbackup_krb::fuzzing::acceptor_tokens),
    ("krb_files", dsbackup_krb::fuzzing::parse_files),
    ("krb_message", dsbackup_krb::fuzzing::decode_message),
    ("krb_peer_tokens", dsbackup_krb::fuzzing::peer_tokens),
    (
        "krb_seal_many",
        dsbackup_krb::fuzzing::seal_many_differential,
    ),
];

#[test]
fn every_saved_kerberos_input_passes_its_oracle() {
    let saved = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/fuzz");
    let mut failures = Vec::new();
    let mut replayed = 0;
    for (target, oracle) in ORACLES {
        let Ok(entries) = std::fs::read_dir(saved.join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            if std::panic::catch_unwind(|| oracle(&bytes)).is_err() {
                failures.push(path.display().to_string());
            }
            replayed += 1;
        }
    }
    assert!(failures.is_empty(), "saved inputs that fail: {failures:?}");
    assert!(
        replayed > 0,
        "no saved input under {}/krb_*",
        saved.display()
    );
}
