//! Decoding any bytes as every Kerberos message (KDC replies, AP-REQ/REP, tickets, authenticators).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dsbackup_krb::fuzzing::decode_message(data));
