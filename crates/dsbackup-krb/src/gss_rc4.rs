//! The per-message tokens of RC4-HMAC ([RFC 4757 §7]) for DCE/RPC: what Windows uses with an
//! rc4-hmac session key, and Samba (Heimdal's `arcfour.c` in DCE style) and impacket with it.
//!
//! Each token is the GSS framing of the Kerberos OID and a 24-byte MIC token or a 32-byte wrap
//! token: `TOK_ID`, `SGN_ALG` (HMAC-MD5), `SEAL_ALG` (RC4, wrap only), filler, the sequence
//! number with the sender's direction (encrypted under a key drawn from the checksum), an
//! 8-byte checksum, and (wrap only) the encrypted confounder. In DCE style nothing pads the
//! stub and the framing's length counts the token alone (37 and 45 bytes); with header signing
//! the checksum covers the whole fragment, the stub alone without.
//!
//! [RFC 4757 §7]: https://www.rfc-editor.org/rfc/rfc4757#section-7

use core::ops::Range;

use dsbackup_proto::SecurityError;
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::crypto::{hmac_md5, rc4_stream};

/// `auth_value` of a MIC token: 13 bytes of framing, 24 of token.
pub(crate) const MIC_LEN: usize = 37;
/// `auth_value` of a wrap token: 13 bytes of framing, 32 of token.
pub(crate) const WRAP_LEN: usize = 45;

/// GSS framing (`[APPLICATION 0]`, the OID 1.2.840.113554.1.2.2) around a token of `len` bytes.
const fn framing(len: u8) -> [u8; 13] {
    [
        0x60,
        len + 11,
        0x06,
        0x09,
        0x2a,
        0x86,
        0x48,
        0x86,
        0xf7,
        0x12,
        0x01,
        0x02,
        0x02,
    ]
}
const MIC_FRAMING: [u8; 13] = framing(24);
const WRAP_FRAMING: [u8; 13] = framing(32);
/// `TOK_ID`, `SGN_ALG` HMAC-MD5 (0x11), filler.
const MIC_HEADER: [u8; 8] = [0x01, 0x01, 0x11, 0x00, 0xff, 0xff, 0xff, 0xff];
/// `TOK_ID`, `SGN_ALG` HMAC-MD5 (0x11), `SEAL_ALG` RC4 (0x10), filler.
const WRAP_HEADER: [u8; 8] = [0x02, 0x01, 0x11, 0x00, 0x10, 0x00, 0xff, 0xff];
/// The checksum's message types: 15 for a MIC token, 13 for a wrap token.
const MIC_USAGE: u32 = 15;
const WRAP_USAGE: u32 = 13;

/// The second half of `SND_SEQ`: the sender's direction.
fn direction(acceptor: bool) -> [u8; 4] {
    if acceptor { [0xff; 4] } else { [0; 4] }
}

/// `SGN_CKSUM`: HMAC-MD5 under `Ksign` of MD5(usage, the token's first 8 bytes, `parts`).
fn checksum(key: &[u8], usage: u32, header: &[u8; 8], parts: &[&[u8]]) -> [u8; 8] {
    let ksign = Zeroizing::new(hmac_md5(key, &[b"signaturekey\0"]));
    let mut md5 = Md5::new();
    md5.update(usage.to_le_bytes());
    md5.update(header);
    for part in parts {
        md5.update(part);
    }
    let digest = md5.finalize();
    let mac = hmac_md5(&*ksign, &[&digest]);
    let mut out = [0; 8];
    out.copy_from_slice(&mac[..8]);
    out
}

/// Encrypts (or decrypts) `SND_SEQ` under the key drawn from the checksum.
fn crypt_seq(key: &[u8], cksum: &[u8; 8], snd_seq: &mut [u8; 8]) {
    let base = Zeroizing::new(hmac_md5(key, &[&0u32.to_le_bytes()]));
    let kseq = Zeroizing::new(hmac_md5(&*base, &[cksum]));
    rc4_stream(&kseq, &mut [snd_seq]);
}

/// The key that encrypts confounder and data: from the key XOR 0xF0 and the sequence number.
fn crypt_key(key: &[u8], seq: [u8; 4]) -> Zeroizing<[u8; 16]> {
    let local: Zeroizing<Vec<u8>> = Zeroizing::new(key.iter().map(|b| b ^ 0xf0).collect());
    let base = Zeroizing::new(hmac_md5(&local, &[&0u32.to_le_bytes()]));
    Zeroizing::new(hmac_md5(&*base, &[&seq]))
}

/// A fragment split around its stub: before, stub, after.
type Parts<'a> = (&'a mut [u8], &'a mut [u8], &'a mut [u8]);

/// Splits `pdu` around `stub`.
fn around(pdu: &mut [u8], stub: Range<usize>) -> Result<Parts<'_>, SecurityError> {
    let (before, rest) = pdu
        .split_at_mut_checked(stub.start)
        .ok_or(SecurityError::BadSignature)?;
    let (data, after) = rest
        .split_at_mut_checked(stub.len())
        .ok_or(SecurityError::BadSignature)?;
    Ok((before, data, after))
}

/// Protects one outgoing fragment (`pdu`, already cut to what the token covers): a wrap token
/// with the stub sealed in place at privacy, a MIC token otherwise. `acceptor`: whether the
/// sender is the acceptor.
pub(crate) fn protect(
    key: &[u8],
    (acceptor, seq): (bool, u32),
    confounder: [u8; 8],
    privacy: bool,
    pdu: &mut [u8],
    stub: Range<usize>,
    signature: &mut [u8],
) -> Result<(), SecurityError> {
    let mut snd_seq = [0u8; 8];
    snd_seq[..4].copy_from_slice(&seq.to_be_bytes());
    snd_seq[4..].copy_from_slice(&direction(acceptor));
    let mut token = Vec::with_capacity(WRAP_LEN);
    if privacy {
        let (before, data, after) = around(pdu, stub)
            .map_err(|_| SecurityError::WrongState("stub outside the fragment"))?;
        let cksum = checksum(
            key,
            WRAP_USAGE,
            &WRAP_HEADER,
            &[&confounder, before, data, after],
        );
        let mut sealed_confounder = confounder;
        rc4_stream(
            &crypt_key(key, seq.to_be_bytes()),
            &mut [&mut sealed_confounder, data],
        );
        crypt_seq(key, &cksum, &mut snd_seq);
        token.extend_from_slice(&WRAP_FRAMING);
        token.extend_from_slice(&WRAP_HEADER);
        token.extend_from_slice(&snd_seq);
        token.extend_from_slice(&cksum);
        token.extend_from_slice(&sealed_confounder);
    } else {
        let cksum = checksum(key, MIC_USAGE, &MIC_HEADER, &[pdu]);
        crypt_seq(key, &cksum, &mut snd_seq);
        token.extend_from_slice(&MIC_FRAMING);
        token.extend_from_slice(&MIC_HEADER);
        token.extend_from_slice(&snd_seq);
        token.extend_from_slice(&cksum);
    }
    signature
        .get_mut(..token.len())
        .ok_or(SecurityError::WrongState("signature buffer too short"))?
        .copy_from_slice(&token);
    Ok(())
}

/// Checks one incoming fragment (the mirror of [`protect`]), decrypting the stub in place at
/// privacy; returns the token's sequence number. `acceptor`: whether the sender is the
/// acceptor.
pub(crate) fn check(
    key: &[u8],
    acceptor: bool,
    privacy: bool,
    pdu: &mut [u8],
    stub: Range<usize>,
    signature: &[u8],
) -> Result<u64, SecurityError> {
    let (framing, header, len) = if privacy {
        (&WRAP_FRAMING, &WRAP_HEADER, WRAP_LEN)
    } else {
        (&MIC_FRAMING, &MIC_HEADER, MIC_LEN)
    };
    if signature.len() != len
        || signature.get(..13) != Some(&framing[..])
        || signature.get(13..21) != Some(&header[..])
    {
        return Err(SecurityError::BadSignature);
    }
    let field = |range: Range<usize>| -> [u8; 8] {
        let mut out = [0; 8];
        if let Some(bytes) = signature.get(range) {
            out.copy_from_slice(bytes);
        }
        out
    };
    let mut snd_seq = field(21..29);
    let cksum = field(29..37);
    crypt_seq(key, &cksum, &mut snd_seq);
    if snd_seq[4..] != direction(acceptor) {
        return Err(SecurityError::BadSignature);
    }
    let seq = [snd_seq[0], snd_seq[1], snd_seq[2], snd_seq[3]];
    let expected = if privacy {
        let (before, data, after) = around(pdu, stub)?;
        let mut confounder = field(37..45);
        let mut clear = Zeroizing::new(data.to_vec());
        rc4_stream(&crypt_key(key, seq), &mut [&mut confounder, &mut clear]);
        let expected = checksum(
            key,
            WRAP_USAGE,
            header,
            &[&confounder, before, &clear, after],
        );
        if bool::from(expected.ct_eq(&cksum)) {
            data.copy_from_slice(&clear);
        }
        expected
    } else {
        checksum(key, MIC_USAGE, header, &[pdu])
    };
    if !bool::from(expected.ct_eq(&cksum)) {
        return Err(SecurityError::BadSignature);
    }
    Ok(u64::from(u32::from_be_bytes(seq)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

    fn stub() -> Vec<u8> {
        (0u8..40)
            .map(|i| i.wrapping_mul(7).wrapping_add(3))
            .collect()
    }

    /// impacket 0.13.1's `GSSAPI_RC4` tokens (fixtures/PROVENANCE.md): the initiator's wrap
    /// token and MIC token over a 40-byte stub, sequence number 5, under the key 00 01 02 ...
    #[test]
    fn impacket_tokens_open_and_verify() {
        let wrap = include_bytes!("../../../fixtures/krb/impacket-wrap-rc4.token");
        let sealed = include_bytes!("../../../fixtures/krb/impacket-wrap-rc4.stub");
        let mic = include_bytes!("../../../fixtures/krb/impacket-mic-rc4.token");
        let open = |token: &[u8], sealed: &[u8]| {
            let mut data = sealed.to_vec();
            let range = 0..data.len();
            check(&KEY, false, true, &mut data, range, token).map(|seq| (seq, data))
        };
        assert_eq!(open(wrap, sealed).unwrap(), (5, stub()));
        for at in 0..wrap.len() {
            let mut changed = wrap.to_vec();
            changed[at] ^= 0x10;
            assert!(open(&changed, sealed).is_err(), "token byte {at}");
        }
        let mut changed = sealed.to_vec();
        changed[3] ^= 1;
        assert!(open(wrap, &changed).is_err(), "a stub byte");
        assert!(
            check(&KEY, true, true, &mut sealed.to_vec(), 0..40, wrap).is_err(),
            "the initiator's token taken for the acceptor's"
        );

        let mut data = stub();
        assert_eq!(check(&KEY, false, false, &mut data, 0..40, mic).unwrap(), 5);
        data[39] ^= 1;
        assert!(check(&KEY, false, false, &mut data, 0..40, mic).is_err());
        // Our MIC over the same stub and sequence number is byte for byte impacket's.
        let mut ours = [0u8; MIC_LEN];
        protect(
            &KEY,
            (false, 5),
            [0; 8],
            false,
            &mut stub(),
            0..40,
            &mut ours,
        )
        .unwrap();
        assert_eq!(&ours[..], &mic[..]);
    }

    /// Ours open: every direction and level, with header signing's whole fragment, and any
    /// changed byte of fragment or token refused.
    #[test]
    fn tokens_round_trip_and_refuse_any_change() {
        for privacy in [false, true] {
            for acceptor in [false, true] {
                let clear: Vec<u8> = (0u8..80).collect();
                let stub = 16..64;
                let mut pdu = clear.clone();
                let mut token = vec![0u8; if privacy { WRAP_LEN } else { MIC_LEN }];
                let sender = (acceptor, 0x0102_0304);
                protect(
                    &KEY,
                    sender,
                    [9; 8],
                    privacy,
                    &mut pdu,
                    stub.clone(),
                    &mut token,
                )
                .unwrap();
                assert_eq!(pdu[..16], clear[..16]);
                assert_eq!(
                    pdu[16..64] != clear[16..64],
                    privacy,
                    "sealed at privacy only"
                );
                let mut opened = pdu.clone();
                let seq = check(&KEY, acceptor, privacy, &mut opened, stub.clone(), &token);
                assert_eq!(seq.unwrap(), 0x0102_0304);
                assert_eq!(opened, clear);
                for at in (0..pdu.len()).step_by(7) {
                    let mut changed = pdu.clone();
                    changed[at] ^= 1;
                    let verdict =
                        check(&KEY, acceptor, privacy, &mut changed, stub.clone(), &token);
                    assert!(verdict.is_err(), "privacy {privacy}, byte {at}");
                }
                for at in 0..token.len() {
                    let mut changed = token.clone();
                    changed[at] ^= 1;
                    let verdict = check(
                        &KEY,
                        acceptor,
                        privacy,
                        &mut pdu.clone(),
                        stub.clone(),
                        &changed,
                    );
                    // The checksum does not cover SND_SEQ (RFC 4757): a changed sequence
                    // number comes out as another number, which the provider's order
                    // check refuses.
                    assert!(
                        verdict.is_err() || verdict.is_ok_and(|seq| seq != 0x0102_0304),
                        "privacy {privacy}, token byte {at}"
                    );
                }
            }
        }
    }
}
