//! Our initiator against our acceptor: logons accepted and refused, and protected PDUs.

use dsbackup_proto::{AuthStep, Protection, SecurityError, SecurityProvider};

use super::{acceptor, acceptor_config, initiator};
use crate::messages::{AuthenticateMessage, AvFlags, AvId, AvPairs, ChallengeMessage};
use crate::{
    Acceptor, Credentials, Initiator, InitiatorConfig, LogonFailure, NegotiateFlags, NtlmError,
    ServerInputs,
};

/// Runs NEGOTIATE and CHALLENGE; returns the AUTHENTICATE.
fn authenticate_for(client: &mut Initiator, server: &mut Acceptor) -> Vec<u8> {
    let AuthStep::Continue(negotiate) = client.step(None).unwrap() else {
        panic!("the initiator's first leg is a NEGOTIATE")
    };
    let AuthStep::Continue(challenge) = server.step(Some(&negotiate)).unwrap() else {
        panic!("the acceptor answers with a CHALLENGE")
    };
    let AuthStep::Complete(Some(authenticate)) = client.step(Some(&challenge)).unwrap() else {
        panic!("the initiator completes with an AUTHENTICATE")
    };
    authenticate
}

fn established_pair() -> (Initiator, Acceptor) {
    let mut client = initiator("Administrator", "CORP", "Passw0rd!123");
    let mut server = acceptor();
    let authenticate = authenticate_for(&mut client, &mut server);
    assert_eq!(
        server.step(Some(&authenticate)).unwrap(),
        AuthStep::Complete(None)
    );
    assert!(client.is_established() && server.is_established());
    (client, server)
}

/// Re-encodes an AUTHENTICATE after `edit`, keeping its MIC as it was.
fn edited(authenticate: &[u8], edit: impl FnOnce(&mut AuthenticateMessage)) -> Vec<u8> {
    let mut message = AuthenticateMessage::decode(authenticate).unwrap();
    edit(&mut message);
    message.encode().unwrap()
}

fn refusal(server: &mut Acceptor, authenticate: &[u8]) -> NtlmError {
    server.authenticate(authenticate).unwrap_err()
}

#[test]
fn right_password_is_accepted_with_a_mic() {
    let mut client = initiator("Administrator", "CORP", "Passw0rd!123");
    let mut server = acceptor();
    let authenticate = authenticate_for(&mut client, &mut server);
    let message = AuthenticateMessage::decode(&authenticate).unwrap();
    // The challenge carries MsvAvTimestamp: MIC made, LmChallengeResponse Z(24).
    assert!(message.mic.is_some_and(|mic| mic != [0; 16]));
    assert_eq!(message.lm_challenge_response, [0; 24]);
    let identity = server.authenticate(&authenticate).unwrap().clone();
    assert_eq!(identity.user, "Administrator");
    assert_eq!(identity.domain, "CORP");
    assert_eq!(identity.workstation, "WS1");
    assert!(!identity.anonymous);
    assert_eq!(client.exported_session_key(), server.exported_session_key());
    assert_eq!(
        client.exported_session_key().unwrap().as_bytes(),
        &[0xa5; 16]
    );
}

#[test]
fn wrong_password_is_refused() {
    let mut client = initiator("Administrator", "CORP", "Passw0rd!124");
    let mut server = acceptor();
    let authenticate = authenticate_for(&mut client, &mut server);
    assert_eq!(
        server.step(Some(&authenticate)),
        Err(SecurityError::LogonFailure("NTProofStr does not verify"))
    );
    assert!(!server.is_established());
    assert_eq!(server.session().map(|_| ()), None);
}

#[test]
fn wrong_password_is_refused_without_a_mic() {
    // No MsvAvTimestamp in the challenge (timestamp omitted by editing the challenge): no MIC;
    // the proof is still checked.
    let mut client = initiator("Administrator", "CORP", "wrong");
    let mut server = acceptor();
    let negotiate = client.negotiate().unwrap();
    let challenge = server.challenge(&negotiate).unwrap();
    let mut message = ChallengeMessage::decode(&challenge).unwrap();
    let pairs = message.target_info.as_mut().unwrap();
    pairs.0.retain(|pair| pair.id != AvId::TIMESTAMP);
    let authenticate = client.authenticate(&message.encode().unwrap()).unwrap();
    assert_eq!(
        AuthenticateMessage::decode(&authenticate).unwrap().mic,
        None
    );
    assert_eq!(
        refusal(&mut server, &authenticate),
        LogonFailure::BadProof.into()
    );
}

#[test]
fn right_password_is_accepted_without_a_mic() {
    let mut client = initiator("Administrator", "CORP", "Passw0rd!123");
    let mut server = acceptor();
    let challenge = server.challenge(&client.negotiate().unwrap()).unwrap();
    let mut message = ChallengeMessage::decode(&challenge).unwrap();
    let pairs = message.target_info.as_mut().unwrap();
    pairs.0.retain(|pair| pair.id != AvId::TIMESTAMP);
    let authenticate = client.authenticate(&message.encode().unwrap()).unwrap();
    server.authenticate(&authenticate).unwrap();
}

#[test]
fn unknown_user_is_refused() {
    let mut client = initiator("Mallory", "CORP", "Passw0rd!123");
    let mut server = acceptor();
    let authenticate = authenticate_for(&mut client, &mut server);
    assert_eq!(
        refusal(&mut server, &authenticate),
        LogonFailure::UnknownUser.into()
    );
}

#[test]
fn user_and_domain_match_without_case_and_by_dns_or_empty_domain() {
    for (user, domain) in [
        ("administrator", "corp"),
        ("ADMINISTRATOR", "Corp.Example"),
        ("Administrator", ""),
        ("administrator@corp.example", ""),
    ] {
        let mut client = initiator(user, domain, "Passw0rd!123");
        let mut server = acceptor();
        let authenticate = authenticate_for(&mut client, &mut server);
        let identity = server.authenticate(&authenticate).unwrap();
        assert_eq!(
            (identity.user.as_str(), identity.domain.as_str()),
            (user, domain)
        );
    }
}

#[test]
fn changed_flag_breaks_the_mic() {
    let mut client = initiator("Administrator", "CORP", "Passw0rd!123");
    let mut server = acceptor();
    let authenticate = authenticate_for(&mut client, &mut server);
    let tampered = edited(&authenticate, |m| {
        m.flags.remove(NegotiateFlags::NEGOTIATE_SEAL)
    });
    assert_eq!(refusal(&mut server, &tampered), LogonFailure::BadMic.into());
}

#[test]
fn changed_workstation_breaks_the_mic() {
    let mut client = initiator("Administrator", "CORP", "Passw0rd!123");
    let mut server = acceptor();
    let authenticate = authenticate_for(&mut client, &mut server);
    let tampered = edited(&authenticate, |m| {
        m.workstation = crate::crypto::utf16le("EVIL")
    });
    assert_eq!(refusal(&mut server, &tampered), LogonFailure::BadMic.into());
}

#[test]
fn zeroed_or_missing_mic_is_refused() {
    let mut client = initiator("Administrator", "CORP", "Passw0rd!123");
    let mut server = acceptor();
    let authenticate = authenticate_for(&mut client, &mut server);
    let zeroed = edited(&authenticate, |m| m.mic = Some([0; 16]));
    assert_eq!(refusal(&mut server, &zeroed), LogonFailure::BadMic.into());

    let mut client = initiator("Administrator", "CORP", "Passw0rd!123");
    let mut server = acceptor();
    let authenticate = authenticate_for(&mut client, &mut server);
    let removed = edited(&authenticate, |m| m.mic = None);
    assert_eq!(refusal(&mut server, &removed), LogonFailure::BadMic.into());
}

#[test]
fn changed_av_pair_breaks_the_proof() {
    // Clearing the MIC bit of MsvAvFlags (to skip the MIC check) changes the blob.
    let mut client = initiator("Administrator", "CORP", "Passw0rd!123");
    let mut server = acceptor();
    let authenticate = authenticate_for(&mut client, &mut server);
    let tampered = edited(&authenticate, |m| {
        let blob = m.nt_challenge_response.split_off(16);
        let (pairs, _) = AvPairs::decode(&blob[28..]).unwrap();
        let mut pairs = pairs;
        assert_eq!(pairs.flags(), Some(AvFlags::MIC_PRESENT));
        pairs.set(AvId::FLAGS, 0u32.to_le_bytes().to_vec());
        let mut new_blob = blob[..28].to_vec();
        pairs.encode(&mut new_blob).unwrap();
        new_blob.extend_from_slice(&[0; 4]);
        m.nt_challenge_response.extend_from_slice(&new_blob);
    });
    assert_eq!(
        refusal(&mut server, &tampered),
        LogonFailure::BadProof.into()
    );
}

#[test]
fn replayed_authenticate_is_refused() {
    let mut client = initiator("Administrator", "CORP", "Passw0rd!123");
    let mut server = acceptor();
    let authenticate = authenticate_for(&mut client, &mut server);
    server.authenticate(&authenticate).unwrap();
    // The same AUTHENTICATE again, to the same acceptor.
    assert!(matches!(
        refusal(&mut server, &authenticate),
        NtlmError::WrongState(_)
    ));
    assert!(matches!(
        server.step(Some(&authenticate)),
        Err(SecurityError::WrongState(_))
    ));
    // To a fresh acceptor with another server challenge: the proof no longer matches.
    let mut other = Acceptor::new(
        acceptor_config(),
        ServerInputs {
            server_challenge: [9; 8],
            timestamp: 1,
        },
    );
    let mut client2 = initiator("Administrator", "CORP", "Passw0rd!123");
    other.challenge(&client2.negotiate().unwrap()).unwrap();
    assert_eq!(
        refusal(&mut other, &authenticate),
        LogonFailure::BadProof.into()
    );
}

#[test]
fn a_failed_acceptor_stays_failed() {
    let mut client = initiator("Administrator", "CORP", "wrong");
    let mut server = acceptor();
    let authenticate = authenticate_for(&mut client, &mut server);
    assert!(server.authenticate(&authenticate).is_err());
    assert_eq!(
        refusal(&mut server, &authenticate),
        NtlmError::WrongState("failed")
    );
}

#[test]
fn anonymous_is_refused_unless_allowed() {
    let anonymous = || {
        Initiator::new(
            InitiatorConfig::new(Credentials::anonymous()),
            super::client_inputs(),
        )
    };
    let mut client = anonymous();
    let mut server = acceptor();
    let authenticate = authenticate_for(&mut client, &mut server);
    assert_eq!(
        refusal(&mut server, &authenticate),
        LogonFailure::AnonymousRefused.into()
    );

    let mut config = acceptor_config();
    config.danger_allow_anonymous = true;
    let mut server = Acceptor::new(
        config,
        ServerInputs {
            server_challenge: [7; 8],
            timestamp: 5,
        },
    );
    let mut client = anonymous();
    let authenticate = authenticate_for(&mut client, &mut server);
    assert!(server.authenticate(&authenticate).unwrap().anonymous);
    assert_eq!(client.exported_session_key(), server.exported_session_key());
    // An anonymous logon names nobody to the interface implementation.
    assert_eq!(server.peer_identity(), None);
}

#[test]
fn peer_identity_names_the_account_the_store_authenticated_not_the_name_as_sent() {
    for (user, domain) in [("Administrator@CORP", ""), ("Administrator", "")] {
        let mut client = initiator(user, domain, "Passw0rd!123");
        let mut server = acceptor();
        let authenticate = authenticate_for(&mut client, &mut server);
        server.step(Some(&authenticate)).unwrap();
        assert_eq!(
            server.peer_identity(),
            Some(dsbackup_proto::PeerIdentity {
                user: "Administrator".into(),
                domain: "CORP".into(),
            }),
            "{user:?} in {domain:?}"
        );
    }
}

#[test]
fn peer_identity_names_the_user_once_established_and_never_for_the_initiator() {
    let mut client = initiator("Administrator", "CORP", "Passw0rd!123");
    let mut server = acceptor();
    let authenticate = authenticate_for(&mut client, &mut server);
    assert_eq!(server.peer_identity(), None);
    server.step(Some(&authenticate)).unwrap();
    assert_eq!(
        server.peer_identity(),
        Some(dsbackup_proto::PeerIdentity {
            user: "Administrator".into(),
            domain: "CORP".into(),
        })
    );
    assert_eq!(client.peer_identity(), None);
}

#[test]
fn ntlm_v1_response_is_refused() {
    let mut client = initiator("Administrator", "CORP", "Passw0rd!123");
    let mut server = acceptor();
    let authenticate = authenticate_for(&mut client, &mut server);
    let v1 = edited(&authenticate, |m| m.nt_challenge_response = vec![0x11; 24]);
    assert_eq!(
        refusal(&mut server, &v1),
        LogonFailure::NtlmV1Refused.into()
    );
}

#[test]
fn steps_out_of_order_are_refused() {
    let mut client = initiator("Administrator", "CORP", "Passw0rd!123");
    assert!(matches!(
        client.step(Some(b"x")),
        Err(SecurityError::WrongState(_))
    ));
    let mut server = acceptor();
    assert!(matches!(
        server.step(None),
        Err(SecurityError::WrongState(_))
    ));
    let mut pdu = [0u8; 32];
    let mut signature = [0u8; 16];
    assert!(matches!(
        client.wrap(Protection::Integrity, &mut pdu, 0..0, &mut signature),
        Err(SecurityError::WrongState(_))
    ));
}

/// A fake PDU: 24 header bytes, a 32-byte stub, an 8-byte sec_trailer.
fn pdu(tag: u8) -> Vec<u8> {
    let mut pdu: Vec<u8> = (0..64u8).collect();
    pdu[0] = tag;
    pdu
}

const STUB: core::ops::Range<usize> = 24..56;

#[test]
fn protected_pdus_round_trip_both_ways_at_both_levels() {
    let (mut client, mut server) = established_pair();
    for round in 0..3u8 {
        for protection in [Protection::Integrity, Protection::Privacy] {
            let plain = pdu(round);
            let mut wire = plain.clone();
            let mut signature = [0u8; 16];
            client
                .wrap(protection, &mut wire, STUB, &mut signature)
                .unwrap();
            if protection == Protection::Privacy {
                assert_eq!(wire[..24], plain[..24], "header stays clear");
                assert_ne!(wire[STUB], plain[STUB], "stub is sealed");
            } else {
                assert_eq!(wire, plain);
            }
            server
                .unwrap(protection, &mut wire, STUB, &signature)
                .unwrap();
            assert_eq!(wire, plain);

            let mut wire = plain.clone();
            server
                .wrap(protection, &mut wire, STUB, &mut signature)
                .unwrap();
            client
                .unwrap(protection, &mut wire, STUB, &signature)
                .unwrap();
            assert_eq!(wire, plain);
        }
    }
    assert_eq!(client.session().unwrap().next_send_seq_num(), 6);
    assert_eq!(server.session().unwrap().next_recv_seq_num(), 6);
}

#[test]
fn tampered_pdu_is_refused() {
    let (mut client, mut server) = established_pair();
    let mut wire = pdu(1);
    let mut signature = [0u8; 16];
    client
        .wrap(Protection::Privacy, &mut wire, STUB, &mut signature)
        .unwrap();
    wire[2] ^= 1; // a header byte, covered by the signature only
    assert_eq!(
        server.unwrap(Protection::Privacy, &mut wire, STUB, &signature),
        Err(SecurityError::BadSignature)
    );
    // The direction is dead from then on, even for a genuine PDU.
    let mut next = pdu(2);
    client
        .wrap(Protection::Privacy, &mut next, STUB, &mut signature)
        .unwrap();
    assert_eq!(
        server.unwrap(Protection::Privacy, &mut next, STUB, &signature),
        Err(SecurityError::BadSignature)
    );
}

#[test]
fn out_of_order_sequence_number_is_refused() {
    let (mut client, mut server) = established_pair();
    let mut first = pdu(1);
    let mut first_sig = [0u8; 16];
    client
        .wrap(Protection::Integrity, &mut first, STUB, &mut first_sig)
        .unwrap();
    let mut second = pdu(2);
    let mut second_sig = [0u8; 16];
    client
        .wrap(Protection::Integrity, &mut second, STUB, &mut second_sig)
        .unwrap();
    let session = server.session().unwrap();
    assert_eq!(
        session.verify(&second, &second_sig),
        Err(crate::SignatureError::OutOfSequence {
            expected: 0,
            got: 1
        })
    );
}

#[test]
fn wrong_signature_version_is_refused() {
    let (mut client, mut server) = established_pair();
    let mut wire = pdu(1);
    let mut signature = [0u8; 16];
    client
        .wrap(Protection::Integrity, &mut wire, STUB, &mut signature)
        .unwrap();
    signature[0] = 2;
    assert_eq!(
        server.session().unwrap().verify(&wire, &signature),
        Err(crate::SignatureError::BadVersion(2))
    );
    // Nothing was consumed: with the right version the same signature verifies.
    signature[0] = 1;
    server.session().unwrap().verify(&wire, &signature).unwrap();
}

#[test]
fn wrong_signature_is_refused() {
    let (mut client, mut server) = established_pair();
    let mut wire = pdu(1);
    let mut signature = [0u8; 16];
    client
        .wrap(Protection::Integrity, &mut wire, STUB, &mut signature)
        .unwrap();
    signature[6] ^= 0x80;
    assert_eq!(
        server.session().unwrap().verify(&wire, &signature),
        Err(crate::SignatureError::BadChecksum)
    );
    assert_eq!(
        server.session().unwrap().verify(&wire, &signature[..15]),
        Err(crate::SignatureError::BadLength(15))
    );
}

#[test]
fn secrets_never_show_in_debug() {
    let (client, server) = established_pair();
    let shown = format!(
        "{client:?} {server:?} {:?}",
        Credentials::from_password("u", "d", "hunter2")
    );
    assert!(!shown.contains("hunter2"));
    assert!(!shown.to_lowercase().contains("a5a5"));
    assert!(!shown.contains("165, 165"));
    assert!(shown.contains("<redacted>"));
}

// --- Flags by authentication level. ---

/// The NEGOTIATE of [`InitiatorConfig::for_protection`], whole.
fn negotiate_at(protection: Protection) -> Vec<u8> {
    let credentials = Credentials::from_password("Administrator", "CORP", "Passw0rd!123");
    let config = InitiatorConfig::for_protection(credentials, protection);
    Initiator::new(config, super::client_inputs())
        .negotiate()
        .unwrap()
}

#[test]
fn the_negotiate_asks_for_signing_and_sealing_only_when_the_level_needs_them() {
    #[rustfmt::skip]
    let connect: &[u8] = &[
        b'N', b'T', b'L', b'M', b'S', b'S', b'P', 0, // Signature
        0x01, 0x00, 0x00, 0x00,                       // MessageType: NtLmNegotiate
        // NegotiateFlags 0xe2888205: 56, KEY_EXCH, 128, VERSION, TARGET_INFO,
        // EXTENDED_SESSIONSECURITY, ALWAYS_SIGN, NTLM, REQUEST_TARGET, UNICODE;
        // no SIGN (0x10), no SEAL (0x20).
        0x05, 0x82, 0x88, 0xe2,
        0x00, 0x00, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00, // DomainNameFields: empty, offset 40
        0x00, 0x00, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00, // WorkstationFields: empty, offset 40
        0x0a, 0x00, 0x7c, 0x4f,                         // Version: 10.0, build 20348
        0x00, 0x00, 0x00, 0x0f,                         // reserved, NTLMSSP_REVISION_W2K3
    ];
    assert_eq!(negotiate_at(Protection::None), connect);
    // The same message with other flags: SIGN at integrity, SIGN and SEAL at privacy, which is
    // what `InitiatorConfig::new` offers.
    for (protection, flags) in [
        (Protection::Integrity, [0x15, 0x82, 0x88, 0xe2]),
        (Protection::Privacy, [0x35, 0x82, 0x88, 0xe2]),
    ] {
        let mut expected = connect.to_vec();
        expected[12..16].copy_from_slice(&flags);
        assert_eq!(negotiate_at(protection), expected, "at {protection:?}");
    }
    assert_eq!(
        InitiatorConfig::new(Credentials::anonymous()).flags,
        InitiatorConfig::for_protection(Credentials::anonymous(), Protection::Privacy).flags
    );
}

#[test]
fn at_connect_neither_side_grants_signing_and_the_logon_still_completes() {
    let credentials = Credentials::from_password("Administrator", "CORP", "Passw0rd!123");
    let config = InitiatorConfig::for_protection(credentials, Protection::None);
    let mut client = Initiator::new(config, super::client_inputs());
    let mut server = acceptor();
    let AuthStep::Continue(negotiate) = client.step(None).unwrap() else {
        panic!("the initiator's first leg is a NEGOTIATE")
    };
    let AuthStep::Continue(challenge) = server.step(Some(&negotiate)).unwrap() else {
        panic!("the acceptor answers with a CHALLENGE")
    };
    let unasked = NegotiateFlags::NEGOTIATE_SIGN | NegotiateFlags::NEGOTIATE_SEAL;
    let granted = ChallengeMessage::decode(&challenge).unwrap().flags;
    assert!(!granted.intersects(unasked), "{granted:?}");
    let AuthStep::Complete(Some(authenticate)) = client.step(Some(&challenge)).unwrap() else {
        panic!("the initiator completes with an AUTHENTICATE")
    };
    let sent = AuthenticateMessage::decode(&authenticate).unwrap().flags;
    assert!(!sent.intersects(unasked), "{sent:?}");
    assert_eq!(
        server.step(Some(&authenticate)).unwrap(),
        AuthStep::Complete(None)
    );
    assert_eq!(
        server.identity().map(|who| who.user.as_str()),
        Some("Administrator")
    );
}

/// An initiator configured for `protection`, as a DCE/RPC client at that level.
fn initiator_for(protection: Protection) -> Initiator {
    let mut config = InitiatorConfig::for_protection(
        Credentials::from_password("Administrator", "CORP", "Passw0rd!123"),
        protection,
    );
    config.workstation = "WS1".to_owned();
    Initiator::new(config, super::client_inputs())
}

/// The server's CHALLENGE to `client`'s NEGOTIATE, with `dropped` taken out of its flags.
fn challenge_without(
    client: &mut Initiator,
    server: &mut Acceptor,
    dropped: NegotiateFlags,
) -> Vec<u8> {
    let negotiate = client.negotiate().unwrap();
    let mut challenge = ChallengeMessage::decode(&server.challenge(&negotiate).unwrap()).unwrap();
    challenge.flags.remove(dropped);
    challenge.encode().unwrap()
}

#[test]
fn an_initiator_fails_when_the_challenge_drops_what_its_level_needs() {
    let cases = [
        (
            Protection::Integrity,
            NegotiateFlags::NEGOTIATE_SIGN,
            "NEGOTIATE_SIGN",
        ),
        (
            Protection::Privacy,
            NegotiateFlags::NEGOTIATE_SEAL,
            "NEGOTIATE_SEAL",
        ),
        (
            Protection::Privacy,
            NegotiateFlags::NEGOTIATE_SIGN | NegotiateFlags::NEGOTIATE_SEAL,
            "NEGOTIATE_SIGN",
        ),
    ];
    for (protection, dropped, missing) in cases {
        let mut client = initiator_for(protection);
        let challenge = challenge_without(&mut client, &mut acceptor(), dropped);
        assert_eq!(
            client.step(Some(&challenge)),
            Err(SecurityError::CapabilityNotNegotiated(missing)),
            "{protection:?} without {dropped:?}"
        );
        assert!(!client.is_established());
        assert!(client.session().is_none() && client.exported_session_key().is_none());
        // Failed for good: nothing signs or seals.
        let mut pdu = pdu(1);
        let mut signature = [0; 16];
        assert!(
            client
                .wrap(protection, &mut pdu, 24..32, &mut signature)
                .is_err()
        );
    }
}

#[test]
fn an_initiator_names_the_missing_flag_in_its_error() {
    let mut client = initiator_for(Protection::Integrity);
    let challenge = challenge_without(&mut client, &mut acceptor(), NegotiateFlags::NEGOTIATE_SIGN);
    // NegotiateFlags of that CHALLENGE (offset 20, little-endian) 0xe2898205, no
    // NEGOTIATE_SIGN (0x00000010): 0x01 UNICODE | 0x04 REQUEST_TARGET | 0x0200 NTLM |
    // 0x8000 ALWAYS_SIGN | 0x01_0000 TARGET_TYPE_DOMAIN | 0x08_0000 EXTENDED_SESSIONSECURITY |
    // 0x80_0000 TARGET_INFO | 0x0200_0000 VERSION | 0x2000_0000 128 | 0x4000_0000 KEY_EXCH |
    // 0x8000_0000 56.
    assert_eq!(challenge[20..24], [0x05, 0x82, 0x89, 0xe2]);
    let error = client.authenticate(&challenge).unwrap_err();
    assert_eq!(error, NtlmError::NotNegotiated("NEGOTIATE_SIGN"));
    assert_eq!(
        error.to_string(),
        "NEGOTIATE_SIGN was not negotiated, and the required protection needs it"
    );
}

#[test]
fn an_acceptor_fails_an_authenticate_without_what_the_level_needs() {
    // (the client's level, the server's, the flag missing)
    let cases = [
        (Protection::None, Protection::Integrity, "NEGOTIATE_SIGN"),
        (Protection::None, Protection::Privacy, "NEGOTIATE_SIGN"),
        (Protection::Integrity, Protection::Privacy, "NEGOTIATE_SEAL"),
    ];
    for (offered, required, missing) in cases {
        let mut client = initiator_for(offered);
        let mut server = acceptor();
        SecurityProvider::require(&mut server, required);
        let authenticate = authenticate_for(&mut client, &mut server);
        assert_eq!(
            server.step(Some(&authenticate)),
            Err(SecurityError::CapabilityNotNegotiated(missing)),
            "a client at {offered:?}, a server at {required:?}"
        );
        assert!(!server.is_established());
        assert!(server.session().is_none() && server.peer_identity().is_none());
    }
}

#[test]
fn an_acceptor_fails_an_authenticate_that_drops_signing() {
    // A client that offered signing, then an AUTHENTICATE without it (no MIC, so only the
    // flags tell).
    let mut client = initiator_for(Protection::Integrity);
    let mut server = acceptor();
    server.require(Protection::Integrity);
    let authenticate = authenticate_for(&mut client, &mut server);
    let dropped = edited(&authenticate, |m| {
        m.flags.remove(NegotiateFlags::NEGOTIATE_SIGN);
        m.mic = None;
    });
    assert_eq!(
        refusal(&mut server, &dropped),
        NtlmError::NotNegotiated("NEGOTIATE_SIGN")
    );
}

#[test]
fn each_level_is_served_when_its_flags_are_negotiated() {
    for protection in [Protection::None, Protection::Integrity, Protection::Privacy] {
        let mut client = initiator_for(protection);
        let mut server = acceptor();
        server.require(protection);
        let authenticate = authenticate_for(&mut client, &mut server);
        assert_eq!(
            server.step(Some(&authenticate)),
            Ok(AuthStep::Complete(None)),
            "{protection:?}"
        );
        let flags = server.session().unwrap().flags();
        assert!(flags.contains(NegotiateFlags::required_for(protection)));
        if protection == Protection::None {
            // Nothing asked, nothing granted: connect-level contexts never sign.
            assert!(
                !flags.intersects(NegotiateFlags::NEGOTIATE_SIGN | NegotiateFlags::NEGOTIATE_SEAL)
            );
        }
    }
}
