//! The server association state machine fed any sequence of frames from a client.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dsbackup_proto::fuzzing::server_association(data));
