//! Framing a byte stream into PDUs (`frame_len`) agrees with decoding, whatever the bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dsbackup_proto::fuzzing::frame_split(data));
