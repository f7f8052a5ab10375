//! The observer behind `dsbackup inspect` fed both directions of an association, keys and all.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dsbackup_proto::fuzzing::observe(data));
