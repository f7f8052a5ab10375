//! The multi-buffer HMAC-MD5 against the `hmac` and `md-5` crates, and a session's batch calls
//! against one call per fragment.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dsbackup_ntlm::fuzzing::md5_multibuffer(data));
