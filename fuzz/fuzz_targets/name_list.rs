//! Parsing any UTF-16 units as a BFT name list, and building it back.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dsbackup_proto::fuzzing::name_list(data));
