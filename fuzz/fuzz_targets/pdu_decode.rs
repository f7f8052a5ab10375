//! Decoding any bytes as a connection-oriented PDU returns a value or a typed error, never panics.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dsbackup_proto::fuzzing::decode_pdu(data));
