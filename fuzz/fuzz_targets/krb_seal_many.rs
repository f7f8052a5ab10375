//! Kerberos messages sealed together (their AES-CBC chains side by side, as a batch of wrap
//! tokens is sealed) against each sealed alone: the same ciphertext and checksum.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dsbackup_krb::fuzzing::seal_many_differential(data));
