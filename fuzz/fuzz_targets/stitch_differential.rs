//! The stitched RC4 + HMAC-MD5 of sealing against the `hmac`, `md-5` and `rc4` crates: the same
//! bytes and checksum both ways, at any sealed range, keystream position and MD5 offset.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dsbackup_ntlm::fuzzing::stitch_differential(data));
