//! Any bytes as a wrap token, a MIC token and an AP-REP: none may verify or establish.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dsbackup_krb::fuzzing::peer_tokens(data));
