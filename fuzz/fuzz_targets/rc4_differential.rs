//! This crate's RC4 against the `rc4` crate: the same key and message pieces give the same bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dsbackup_ntlm::fuzzing::rc4_differential(data));
