//! Our RC4 (the sealing keystream) against the `rc4` crate, byte for byte.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dsbackup_ntlm::fuzzing::rc4_differential(data));
