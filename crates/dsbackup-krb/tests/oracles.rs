//! The fuzz oracles on random and mutated inputs, so that `cargo test` runs a little of what
//! `cargo xtask fuzz` runs at length.

use dsbackup_krb::fuzzing;
use proptest::prelude::*;

/// A DER-looking prefix (an AP-REP, a KDC reply, a keytab header) followed by random bytes.
fn seeded() -> impl Strategy<Value = Vec<u8>> {
    let prefixes: Vec<&'static [u8]> = vec![
        b"\x6f\x81\x80\x30\x7e\xa0\x03\x02\x01\x05\xa1\x03\x02\x01\x0f",
        b"\x6b\x82\x01\x00\x30\x81\xfc",
        b"\x7e\x30\x30\x2e",
        b"\x05\x02\x00\x00\x00\x40",
        b"\x05\x04\x00\x0c\x00\x01\x00\x08",
        b"\x05\x04\x06\xff\x00\x10\x00\x1c",
        b"\x60\x82\x01\x00\x06\x09\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x01\x00\x6e\x81\xf0",
    ];
    (
        proptest::sample::select(prefixes),
        proptest::collection::vec(any::<u8>(), 0..512),
    )
        .prop_map(|(p, rest)| [p, &rest].concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn messages_decode_or_fail_cleanly(data in seeded()) {
        fuzzing::decode_message(&data);
    }

    #[test]
    fn files_parse_or_fail_cleanly(data in seeded()) {
        fuzzing::parse_files(&data);
    }

    #[test]
    fn forged_ap_reqs_are_never_accepted(data in seeded()) {
        fuzzing::acceptor_tokens(&data);
    }

    #[test]
    fn forged_tokens_never_pass(data in seeded()) {
        fuzzing::peer_tokens(&data);
    }
}
