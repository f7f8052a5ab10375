//! Decoding any bytes as a management-interface stub.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dsbackup_proto::iface::fuzzing::decode_mgmt(data));
