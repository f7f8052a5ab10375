//! Locating and decoding an MS-RPCE verification trailer at the end of any request stub.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dsbackup_proto::fuzzing::verification_trailer(data));
