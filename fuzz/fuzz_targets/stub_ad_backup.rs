//! Decoding any bytes as an ad_backup request or response stub, every opnum.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dsbackup_proto::iface::fuzzing::decode_ad_backup(data));
