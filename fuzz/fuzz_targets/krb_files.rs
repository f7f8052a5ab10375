//! Parsing any bytes as a keytab and as a credential cache.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dsbackup_krb::fuzzing::parse_files(data));
