//! Oracles for the cargo-fuzz targets; not a stable API.

use dsbackup_proto::{AuthStep, Protection, SecurityProvider};

use crate::acceptor::{AcceptorConfig, AcceptorInputs, KerberosAcceptor, ServiceKeys};
use crate::crypto::{EncType, Key, TokenKey};
use crate::der::KerberosTime;
use crate::exchange::Credential;
use crate::files::KeytabEntry;
use crate::gss::{self, InitiatorInputs, KerberosInitiator};
use crate::gss_rc4;
use crate::messages::{
    ApRep, ApReq, Authenticator, EncApRepPart, EncKdcRepPart, EncTicketPart, EncryptedData,
    EtypeInfo2, KdcReply, PrincipalName, Ticket, usage,
};

/// Decodes `data` as every Kerberos message this crate reads; those it also writes must
/// survive a round trip.
///
/// # Panics
/// When a decoded message re-encodes to something that decodes differently.
#[expect(
    clippy::panic,
    reason = "the oracle reports a broken round trip to the fuzzer"
)]
pub fn decode_message(data: &[u8]) {
    let _ = KdcReply::decode(data);
    if let Ok(m) = crate::spnego::NegTokenInit::decode(data)
        && crate::spnego::NegTokenInit::decode(&m.encode()).as_ref() != Ok(&m)
    {
        panic!("NegTokenInit round trip: {m:?}");
    }
    if let Ok(m) = crate::spnego::NegTokenResp::decode(data)
        && crate::spnego::NegTokenResp::decode(&m.encode()).as_ref() != Ok(&m)
    {
        panic!("NegTokenResp round trip: {m:?}");
    }
    let _ = EncKdcRepPart::decode(data);
    let _ = EtypeInfo2::decode_list(data);
    if let Ok(m) = ApReq::decode(data)
        && ApReq::decode(&m.encode()).as_ref() != Ok(&m)
    {
        panic!("AP-REQ round trip: {m:?}");
    }
    if let Ok(m) = ApRep::decode(data)
        && ApRep::decode(&m.encode()).as_ref() != Ok(&m)
    {
        panic!("AP-REP round trip: {m:?}");
    }
    if let Ok(m) = Ticket::decode(data)
        && Ticket::decode(&m.encode()).as_ref() != Ok(&m)
    {
        panic!("Ticket round trip: {m:?}");
    }
    if let Ok(m) = Authenticator::decode(data)
        && Authenticator::decode(&m.encode()).as_ref() != Ok(&m)
    {
        panic!("Authenticator round trip: {m:?}");
    }
    if let Ok(m) = EncApRepPart::decode(data)
        && EncApRepPart::decode(&m.encode()).as_ref() != Ok(&m)
    {
        panic!("EncAPRepPart round trip: {m:?}");
    }
    if let Ok(m) = EncTicketPart::decode(data)
        && EncTicketPart::decode(&m.encode()).as_ref() != Ok(&m)
    {
        panic!("EncTicketPart round trip: {m:?}");
    }
}

/// Parses `data` as a keytab and as a credential cache: a value or a typed error, never a
/// panic or an allocation past the input.
pub fn parse_files(data: &[u8]) {
    let _ = crate::files::parse_keytab(data);
    let _ = crate::files::parse_ccache(data);
}

fn test_key() -> Key {
    Key::new(EncType::AES256_CTS_HMAC_SHA1_96, &[0x42; 32]).unwrap_or_else(|_| unreachable!())
}

/// Feeds peer bytes where a peer can put them: as a sealed fragment with its wrap token, as a
/// signed fragment with its MIC token (RFC 4121's and RFC 4757's), and as the AP-REP answering
/// an initiator's AP-REQ.
///
/// # Panics
/// When forged bytes pass: a token that verifies, or an AP-REP that establishes the context
/// (no fuzzer knows the key).
#[expect(clippy::panic, reason = "the oracle reports a forgery to the fuzzer")]
pub fn peer_tokens(data: &[u8]) {
    let key = test_key();
    let split = usize::from(data.first().copied().unwrap_or(0)).min(data.len());
    let (signature, pdu) = data.split_at(split);
    let mut pdu = pdu.to_vec();
    let stub = pdu.len().min(16)..pdu.len();
    for privacy in [false, true] {
        let rc4 = gss_rc4::check(
            &[0x5a; 16],
            true,
            privacy,
            &mut pdu.clone(),
            stub.clone(),
            signature,
        );
        if rc4.is_ok() {
            panic!("a forged RC4-HMAC token verified");
        }
    }
    let token_key = TokenKey::new(key.clone(), &[usage::ACCEPTOR_SEAL]);
    if gss::unseal_dce(
        &token_key,
        usage::ACCEPTOR_SEAL,
        0x05,
        &mut pdu,
        stub,
        signature,
    )
    .is_ok()
    {
        panic!("a forged wrap token verified");
    }
    if gss::verify_mic(&key, usage::ACCEPTOR_SIGN, 0x05, signature, &[&pdu]).is_ok() {
        panic!("a forged MIC token verified");
    }
    let credential = Credential {
        crealm: "R".into(),
        client: PrincipalName::user("u"),
        srealm: "R".into(),
        server: PrincipalName::service("host/h"),
        ticket: Ticket {
            realm: "R".into(),
            sname: PrincipalName::service("host/h"),
            enc_part: EncryptedData {
                etype: EncType::AES256_CTS_HMAC_SHA1_96,
                kvno: None,
                cipher: vec![0; 64],
            },
        },
        session_key: key,
        authtime: KerberosTime(0),
        endtime: KerberosTime(1),
        flags: 0,
    };
    let inputs = InitiatorInputs {
        now: KerberosTime(0),
        usec: 0,
        seq: 1,
        subkey: [7; 32],
        confounders: Box::new(|| [9; 16]),
    };
    let mut initiator = KerberosInitiator::new(credential, Protection::Privacy, inputs);
    if let Ok(AuthStep::Continue(_)) = initiator.step(None)
        && initiator.step(Some(data)).is_ok()
    {
        panic!("a forged AP-REP established the context");
    }
}

/// An acceptor holding the key of `host/h@R` (the oracles' test key).
fn test_acceptor(protection: Protection) -> KerberosAcceptor {
    let entry = KeytabEntry {
        realm: "R".into(),
        principal: PrincipalName::service("host/h"),
        kvno: 1,
        key: test_key(),
    };
    let config = AcceptorConfig::new(ServiceKeys::new(vec![entry], None));
    let inputs = AcceptorInputs {
        now: KerberosTime(0),
        seq: 5,
        subkey: [3; 32],
        confounders: Box::new(|| [8; 16]),
    };
    let mut acceptor = KerberosAcceptor::new(config, inputs);
    acceptor.require(protection);
    acceptor
}

/// Feeds peer bytes to a Kerberos acceptor: as the AP-REQ of a bind, as the NegTokenInit and
/// the next NegTokenResp of an SPNEGO bind, and as a fragment's token before the context is
/// established.
///
/// # Panics
/// When forged bytes pass: an AP-REQ accepted (no fuzzer holds the service key), an SPNEGO
/// context established, or a fragment verified by an acceptor with no context.
#[expect(clippy::panic, reason = "the oracle reports a forgery to the fuzzer")]
pub fn acceptor_tokens(data: &[u8]) {
    let mut acceptor = test_acceptor(Protection::Privacy);
    if acceptor.step(Some(data)).is_ok() {
        panic!("a forged AP-REQ was accepted");
    }
    if acceptor.is_established() || acceptor.peer_identity().is_some() {
        panic!("a failed handshake left an identity");
    }
    let factory: crate::spnego::MechFactory = Box::new(|oid| {
        crate::spnego::is_kerberos(oid).then(|| {
            Box::new(test_acceptor(Protection::Privacy)) as Box<dyn dsbackup_proto::SpnegoMechanism>
        })
    });
    let mut spnego = crate::spnego::SpnegoAcceptor::new(factory);
    spnego.require(Protection::Privacy);
    for _ in 0..2 {
        let _ = spnego.step(Some(data));
        if spnego.is_established() || spnego.peer_identity().is_some() {
            panic!("forged SPNEGO tokens established a context");
        }
    }
    let mut fresh = test_acceptor(Protection::Integrity);
    let split = usize::from(data.first().copied().unwrap_or(0)).min(data.len());
    let (signature, pdu) = data.split_at(split);
    let mut pdu = pdu.to_vec();
    let stub = pdu.len().min(16)..pdu.len();
    if fresh
        .unwrap(Protection::Integrity, &mut pdu, stub, signature)
        .is_ok()
    {
        panic!("a fragment verified before the handshake");
    }
}

/// Several messages sealed together, their CBC chains side by side (`UsageKeys::seal_many`,
/// as a batch of wrap tokens is sealed), against each sealed alone (`UsageKeys::seal`, whose
/// CTS and checksum the RFC 3962 vectors and the reference tests pin): the same ciphertext and
/// checksum for every message.
///
/// `data`: one byte (bit 0: AES-128 or AES-256; the rest: the key usage), the key, then up to
/// twelve messages of four bytes each: the lengths of the signed bytes before and after the
/// data (0 to 63), of the data (with bit 7 set, whole blocks: 0 to 127 of them; else 0 to
/// 127 bytes) and of the tail (with whole-block data, 0, 16 or 32 bytes, as a wrap token's
/// filler and header copy; else 0 to 63). Each message has a 16-byte confounder; the bytes
/// are a pattern of the message's index.
///
/// # Panics
/// When the batch and the single seals disagree (a bug the fuzzer is looking for).
#[expect(
    clippy::panic,
    reason = "the oracle reports a disagreement to the fuzzer"
)]
pub fn seal_many_differential(data: &[u8]) {
    use crate::crypto::SealMessage;

    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let (etype, key_len) = if choice & 1 == 0 {
        (EncType::AES128_CTS_HMAC_SHA1_96, 16)
    } else {
        (EncType::AES256_CTS_HMAC_SHA1_96, 32)
    };
    let usage = u32::from(choice >> 1);
    let Some((key, mut rest)) = rest.split_at_checked(key_len) else {
        return;
    };
    let Ok(key) = Key::new(etype, key) else {
        return;
    };
    let token_key = TokenKey::new(key, &[usage]);
    // Confounder, before, data, after, tail.
    let mut messages: Vec<[Vec<u8>; 5]> = Vec::new();
    while messages.len() < 12 {
        let Some((&[before, len, after, tail], more)) = rest.split_first_chunk::<4>() else {
            break;
        };
        rest = more;
        let whole = len & 0x80 != 0;
        let data_len = usize::from(len & 0x7f) * if whole { 16 } else { 1 };
        let tail_len = if whole {
            usize::from(tail % 3) * 16
        } else {
            usize::from(tail % 64)
        };
        let mark = u8::try_from(messages.len()).unwrap_or(0);
        let bytes = |n: usize| -> Vec<u8> { (0..n).map(|i| mark ^ i.to_le_bytes()[0]).collect() };
        messages.push([
            bytes(16),
            bytes(usize::from(before % 64)),
            bytes(data_len),
            bytes(usize::from(after % 64)),
            bytes(tail_len),
        ]);
    }
    let mut alone = messages.clone();
    let mut expected = Vec::new();
    for [confounder, before, data, after, tail] in &mut alone {
        match token_key.aes_seal(usage, [confounder, data, tail], [before, after]) {
            Ok(checksum) => expected.push(checksum),
            Err(_) => return,
        }
    }
    let mut together = messages;
    let mut batch: Vec<SealMessage<'_>> = together
        .iter_mut()
        .map(|[confounder, before, data, after, tail]| {
            (
                [&mut confounder[..], &mut data[..], &mut tail[..]],
                [&before[..], &after[..]],
            )
        })
        .collect();
    let Ok(checksums) = token_key.aes_seal_many(usage, &mut batch) else {
        return;
    };
    drop(batch);
    if checksums != expected || together != alone {
        panic!(
            "sealing {} messages together differs from one at a time",
            alone.len()
        );
    }
}
