//! The client association state machine fed any sequence of frames from the server.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dsbackup_proto::fuzzing::client_association(data));
