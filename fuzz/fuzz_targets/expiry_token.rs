//! Decoding any bytes as an expiry token, and its expiry arithmetic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dsbackup_proto::fuzzing::expiry_token(data));
