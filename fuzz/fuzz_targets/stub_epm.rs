//! Decoding any bytes as an endpoint-mapper stub (ept_map, ept_lookup, towers).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dsbackup_proto::iface::fuzzing::decode_epm(data));
