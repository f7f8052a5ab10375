//! Every saved fuzzing input (`fixtures/fuzz/<target>/*`: crashes found by `cargo fuzz`, and
//! inputs kept because they once broke a property) replayed through the oracle of its target,
//! the same function the cargo-fuzz target calls. A plain `cargo test` thus keeps them fixed,
//! without cargo-fuzz or a nightly toolchain.
#![cfg(test)]

use std::path::{Path, PathBuf};

use dsbackup_proto::fuzzing;
use dsbackup_proto::iface::fuzzing as stubs;

/// A fuzzing oracle: panics when the input breaks a property.
type Oracle = fn(&[u8]);

/// The targets this crate's oracles serve, by their name under `fuzz/fuzz_targets/`.
const ORACLES: &[(&str, Oracle)] = &[
    ("pdu_decode", fuzzing::decode_pdu),
    ("pdu_round_trip", fuzzing::round_trip_pdu),
    ("frame_split", fuzzing::frame_split),
    ("client_association", fuzzing::client_association),
    ("server_association", fuzzing::server_association),
    ("name_list", fuzzing::name_list),
    ("expiry_token", fuzzing::expiry_token),
    ("observe", fuzzing::observe),
    ("verification_trailer", fuzzing::verification_trailer),
    ("stub_ad_backup", stubs::decode_ad_backup),
    ("stub_ad_restore", stubs::decode_ad_restore),
    ("stub_epm", stubs::decode_epm),
    ("stub_mgmt", stubs::decode_mgmt),
];

/// Targets whose oracle lives in another crate, which replays their inputs in its own tests.
const ELSEWHERE: &[(&str, &str)] = &[
    ("ntlm_message", "dsbackup-ntlm"),
    ("krb_acceptor", "dsbackup-krb"),
    ("rc4_differential", "dsbackup-ntlm"),
    ("md5_multibuffer", "dsbackup-ntlm"),
    ("stitch_differential", "dsbackup-ntlm"),
    ("krb_files", "dsbackup-krb"),
    ("krb_message", "dsbackup-krb"),
    ("krb_peer_tokens", "dsbackup-krb"),
    ("krb_seal_many", "dsbackup-krb"),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_saved_input_passes_its_oracle() {
    let saved = root().join("fixtures/fuzz");
    let mut replayed = 0;
    let mut failures = Vec::new();
    for (target, oracle) in ORACLES {
        let dir = saved.join(target);
        if !dir.is_dir() {
            continue;
        }
        for name in names_in(&dir) {
            let bytes = std::fs::read(dir.join(&name)).unwrap();
            if std::panic::catch_unwind(|| oracle(&bytes)).is_err() {
                failures.push(format!("{target}/{name}"));
            }
            replayed += 1;
        }
    }
    assert!(failures.is_empty(), "saved inputs that fail: {failures:?}");
    assert!(replayed > 0, "no saved input under {}", saved.display());
}

#[test]
fn every_saved_directory_and_every_target_has_an_oracle() {
    let known = |name: &str| {
        ORACLES.iter().any(|(target, _)| *target == name)
            || ELSEWHERE.iter().any(|(target, _)| *target == name)
    };
    let saved = names_in(&root().join("fixtures/fuzz"));
    let orphans: Vec<&String> = saved.iter().filter(|name| !known(name)).collect();
    assert!(
        orphans.is_empty(),
        "fixtures/fuzz/ directories of no target: {orphans:?}"
    );
    let targets: Vec<String> = names_in(&root().join("fuzz/fuzz_targets"))
        .into_iter()
        .filter_map(|file| file.strip_suffix(".rs").map(str::to_owned))
        .collect();
    let unreplayed: Vec<&String> = targets.iter().filter(|name| !known(name)).collect();
    assert!(
        unreplayed.is_empty(),
        "fuzz targets whose saved inputs no test replays: {unreplayed:?}"
    );
    assert_eq!(
        targets.len(),
        ORACLES.len() + ELSEWHERE.len(),
        "one oracle per target"
    );
}
