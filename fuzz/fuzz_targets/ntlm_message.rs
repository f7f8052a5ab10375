//! Decoding any bytes as an NTLM NEGOTIATE, CHALLENGE or AUTHENTICATE message.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dsbackup_ntlm::fuzzing::decode_message(data));
