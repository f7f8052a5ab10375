//! A PDU that decodes re-encodes to bytes that decode to the same PDU.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dsbackup_proto::fuzzing::round_trip_pdu(data));
