//! Any bytes as the AP-REQ of a bind, as the tokens of an SPNEGO bind and as a fragment's
//! token: none may be accepted.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dsbackup_krb::fuzzing::acceptor_tokens(data));
