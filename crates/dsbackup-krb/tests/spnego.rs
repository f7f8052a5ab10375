//! SPNEGO with NTLM inside, initiator against acceptor without I/O: NTLM alone, NTLM chosen by
//! an acceptor without Kerberos after the initiator offered Kerberos first, the mechanism list
//! MICs both ways (and the fragments after them), and every refusal: a tampered list, a
//! tampered or missing MIC, a downgrade to a mechanism that was not offered.
#![expect(clippy::unwrap_used, clippy::panic, reason = "test assertions")]

use std::sync::Arc;

use dsbackup_krb::{
    Credential, EncType, Grant, InitiatorInputs, KerberosInitiator, KerberosTime, Key,
    PrincipalName,
};
use dsbackup_krb::{
    MechFactory, NTLM_OID, NegTokenInit, NegTokenResp, Offer, SpnegoAcceptor, SpnegoInitiator,
    is_kerberos, neg_state,
};
use dsbackup_ntlm::{
    Acceptor, AcceptorConfig, ClientInputs, Credentials, InMemoryCredentials, Initiator,
    InitiatorConfig, ServerInputs,
};
use dsbackup_proto::{AuthStep, Protection, SecurityError, SecurityProvider, SpnegoMechanism};

const USER: &str = "svc-backup";
const DOMAIN: &str = "CORP";
const PASSWORD: &str = "s3cret!";

fn ntlm_initiator(protection: Protection) -> Box<dyn SpnegoMechanism> {
    let config = InitiatorConfig::for_protection(
        Credentials::from_password(USER, DOMAIN, PASSWORD),
        protection,
    );
    let inputs = ClientInputs {
        client_challenge: [1; 8],
        random_session_key: [2; 16],
        timestamp: 0,
    };
    Box::new(Initiator::new(config, inputs))
}

/// A server with NTLM alone (no keytab): every other mechanism is unknown to it.
fn ntlm_only_server() -> SpnegoAcceptor {
    let mut users = InMemoryCredentials::new();
    users.insert_password(USER, DOMAIN, PASSWORD);
    let config = AcceptorConfig::new(Arc::new(users), "DC1", DOMAIN, "corp.example");
    let factory: MechFactory = Box::new(move |oid| {
        (oid == NTLM_OID).then(|| {
            let inputs = ServerInputs {
                server_challenge: [7; 8],
                timestamp: 133_000_000_000_000_000,
            };
            Box::new(Acceptor::new(config.clone(), inputs)) as Box<dyn SpnegoMechanism>
        })
    });
    SpnegoAcceptor::new(factory)
}

/// A Kerberos initiator with a ticket of a realm the NTLM-only server knows nothing of.
fn kerberos_initiator() -> KerberosInitiator {
    let session_key = Key::new(EncType::AES256_CTS_HMAC_SHA1_96, &[0x5a; 32]).unwrap();
    let service_key = Key::new(EncType::AES256_CTS_HMAC_SHA1_96, &[0x33; 32]).unwrap();
    let grant = Grant {
        crealm: "CORP.EXAMPLE".into(),
        client: PrincipalName::user(USER),
        srealm: "CORP.EXAMPLE".into(),
        server: PrincipalName::service("host/dc1.corp.example"),
        session_key,
        authtime: KerberosTime(1_800_000_000),
        endtime: KerberosTime(1_800_036_000),
        flags: 0,
    };
    let ticket = Credential::issue(grant, &service_key, Some(2), &[9; 16]);
    let inputs = InitiatorInputs {
        now: KerberosTime(1_800_000_060),
        usec: 1,
        seq: 5,
        subkey: [0x11; 32],
        confounders: Box::new(|| [4; 16]),
    };
    KerberosInitiator::new(ticket, Protection::Privacy, inputs)
}

fn continue_token(step: Result<AuthStep, SecurityError>) -> Vec<u8> {
    match step {
        Ok(AuthStep::Continue(token)) => token,
        other => panic!("expected another leg, got {other:?}"),
    }
}

fn resp(token: &[u8]) -> NegTokenResp {
    NegTokenResp::decode(token).unwrap()
}

/// A fragment each way at `protection`, checked by the other side; returns the sequence
/// number the client's signature carried.
fn exchange(
    client: &mut dyn SecurityProvider,
    server: &mut dyn SecurityProvider,
    protection: Protection,
) -> u32 {
    let plain = b"header..the stub of a call.....trailer".to_vec();
    let mut pdu = plain.clone();
    let mut signature = [0u8; 16];
    client
        .wrap(protection, &mut pdu, 8..31, &mut signature)
        .unwrap();
    if protection == Protection::Privacy {
        assert_ne!(pdu, plain, "sealed");
    }
    server
        .unwrap(protection, &mut pdu, 8..31, &signature)
        .unwrap();
    assert_eq!(pdu, plain);
    let mut back = plain.clone();
    let mut answer = [0u8; 16];
    server
        .wrap(protection, &mut back, 8..31, &mut answer)
        .unwrap();
    client
        .unwrap(protection, &mut back, 8..31, &answer)
        .unwrap();
    assert_eq!(back, plain);
    u32::from_le_bytes(signature[12..16].try_into().unwrap())
}

/// The legs of an NTLM-only initiator up to its AUTHENTICATE, which it sends with its MIC.
fn ntlm_legs(
    client: &mut SpnegoInitiator,
    server: &mut SpnegoAcceptor,
) -> (NegTokenInit, NegTokenResp) {
    let init = continue_token(client.step(None));
    let decoded = NegTokenInit::decode(&init).unwrap();
    let challenge = continue_token(server.step(Some(&init)));
    let answer = resp(&challenge);
    assert_eq!(answer.neg_state, Some(neg_state::ACCEPT_INCOMPLETE));
    assert_eq!(answer.supported_mech.as_deref(), Some(NTLM_OID));
    let authenticate = continue_token(client.step(Some(&challenge)));
    (decoded, resp(&authenticate))
}

#[test]
fn ntlm_alone_exchanges_the_mech_list_mics_then_protects_from_sequence_one() {
    for protection in [Protection::Integrity, Protection::Privacy] {
        let mut client = SpnegoInitiator::new(vec![Offer::ntlm(ntlm_initiator(protection))]);
        let mut server = ntlm_only_server();
        server.require(protection);
        let (init, authenticate) = ntlm_legs(&mut client, &mut server);
        assert_eq!(init.mech_types, [NTLM_OID.to_vec()]);
        assert!(init.mech_token.unwrap().starts_with(b"NTLMSSP\0\x01"));
        // The AUTHENTICATE carries a MIC, so the mechanism list MIC goes with it.
        assert!(
            authenticate
                .response_token
                .as_ref()
                .unwrap()
                .starts_with(b"NTLMSSP\0\x03")
        );
        let client_mic = authenticate.mech_list_mic.clone().unwrap();
        assert_eq!(client_mic.len(), 16);
        assert_eq!(
            client_mic[12..16],
            0u32.to_le_bytes(),
            "the MIC takes seq 0"
        );
        let Ok(AuthStep::Complete(Some(done))) = server.step(Some(&authenticate.encode())) else {
            panic!("the acceptor completes")
        };
        let done = resp(&done);
        assert_eq!(done.neg_state, Some(neg_state::ACCEPT_COMPLETED));
        assert!(done.mech_list_mic.is_some());
        assert_eq!(
            client.step(Some(&done.encode())),
            Ok(AuthStep::Complete(None))
        );
        assert!(client.is_established() && server.is_established());
        assert_eq!(client.mechanism_oid(), Some(NTLM_OID));
        assert_eq!(server.peer_identity().unwrap().user, USER);
        // The sequence numbers go on after the MICs; the RC4 handles start afresh on both
        // sides (or nothing sealed would unseal).
        for expected in 1..4 {
            assert_eq!(exchange(&mut client, &mut server, protection), expected);
        }
    }
}

#[test]
fn at_connect_ntlm_signs_nothing_and_no_mic_is_exchanged() {
    let mut client = SpnegoInitiator::new(vec![Offer::ntlm(ntlm_initiator(Protection::None))]);
    let mut server = ntlm_only_server();
    let (_, authenticate) = ntlm_legs(&mut client, &mut server);
    assert_eq!(authenticate.mech_list_mic, None);
    let Ok(AuthStep::Complete(Some(done))) = server.step(Some(&authenticate.encode())) else {
        panic!("the acceptor completes")
    };
    assert_eq!(resp(&done).mech_list_mic, None);
    assert_eq!(client.step(Some(&done)), Ok(AuthStep::Complete(None)));
    assert!(server.is_established());
}

#[test]
fn an_acceptor_without_kerberos_asks_for_ntlm_and_the_mics() {
    let mut client = SpnegoInitiator::new(vec![
        Offer::kerberos(kerberos_initiator()),
        Offer::ntlm(ntlm_initiator(Protection::Privacy)),
    ]);
    let mut server = ntlm_only_server();
    server.require(Protection::Privacy);
    let init = continue_token(client.step(None));
    let decoded = NegTokenInit::decode(&init).unwrap();
    assert_eq!(decoded.mech_types.len(), 3);
    assert!(is_kerberos(&decoded.mech_types[0]) && is_kerberos(&decoded.mech_types[1]));
    assert_eq!(decoded.mech_types[2], NTLM_OID);
    // RFC 4178 §5: a mechanism other than the initiator's first, with request-mic.
    let choice = continue_token(server.step(Some(&init)));
    assert_eq!(
        resp(&choice),
        NegTokenResp {
            neg_state: Some(neg_state::REQUEST_MIC),
            supported_mech: Some(NTLM_OID.to_vec()),
            response_token: None,
            mech_list_mic: None,
        }
    );
    // The client follows with NTLM's NEGOTIATE.
    let negotiate = continue_token(client.step(Some(&choice)));
    assert!(
        resp(&negotiate)
            .response_token
            .unwrap()
            .starts_with(b"NTLMSSP\0\x01")
    );
    assert_eq!(client.mechanism_oid(), Some(NTLM_OID));
    let challenge = continue_token(server.step(Some(&negotiate)));
    let authenticate = continue_token(client.step(Some(&challenge)));
    assert!(resp(&authenticate).mech_list_mic.is_some());
    let Ok(AuthStep::Complete(Some(done))) = server.step(Some(&authenticate)) else {
        panic!("the acceptor completes")
    };
    assert_eq!(client.step(Some(&done)), Ok(AuthStep::Complete(None)));
    assert_eq!(server.peer_identity().unwrap().user, USER);
    assert_eq!(exchange(&mut client, &mut server, Protection::Privacy), 1);
}

#[test]
fn a_tampered_mech_list_fails_the_acceptors_mic_check() {
    let mut client = SpnegoInitiator::new(vec![
        Offer::kerberos(kerberos_initiator()),
        Offer::ntlm(ntlm_initiator(Protection::Privacy)),
    ]);
    let mut server = ntlm_only_server();
    server.require(Protection::Privacy);
    // A man in the middle puts NTLM first and drops the Kerberos token.
    let mut init = NegTokenInit::decode(&continue_token(client.step(None))).unwrap();
    init.mech_types.rotate_right(1);
    init.mech_token = None;
    let choice = continue_token(server.step(Some(&init.encode())));
    assert_eq!(resp(&choice).neg_state, Some(neg_state::ACCEPT_INCOMPLETE));
    let negotiate = continue_token(client.step(Some(&choice)));
    let challenge = continue_token(server.step(Some(&negotiate)));
    let authenticate = continue_token(client.step(Some(&challenge)));
    assert_eq!(
        server.step(Some(&authenticate)),
        Err(SecurityError::MechListMic("does not verify"))
    );
    assert!(!server.is_established() && server.peer_identity().is_none());
}

#[test]
fn a_tampered_or_missing_acceptor_mic_is_refused() {
    for tamper in [true, false] {
        let mut client =
            SpnegoInitiator::new(vec![Offer::ntlm(ntlm_initiator(Protection::Privacy))]);
        let mut server = ntlm_only_server();
        server.require(Protection::Privacy);
        let (_, authenticate) = ntlm_legs(&mut client, &mut server);
        let Ok(AuthStep::Complete(Some(done))) = server.step(Some(&authenticate.encode())) else {
            panic!("the acceptor completes")
        };
        let mut done = resp(&done);
        let expected = if tamper {
            done.mech_list_mic.as_mut().unwrap()[5] ^= 1;
            SecurityError::MechListMic("does not verify")
        } else {
            done.mech_list_mic = None;
            SecurityError::MechListMic("is missing")
        };
        assert_eq!(client.step(Some(&done.encode())), Err(expected));
        assert!(!client.is_established());
    }
}

#[test]
fn an_initiator_that_withholds_its_mic_is_refused() {
    let mut client = SpnegoInitiator::new(vec![Offer::ntlm(ntlm_initiator(Protection::Privacy))]);
    let mut server = ntlm_only_server();
    server.require(Protection::Privacy);
    let (_, mut authenticate) = ntlm_legs(&mut client, &mut server);
    authenticate.mech_list_mic = None;
    // The acceptor sends its MIC and waits for the initiator's, which never comes.
    let waiting = resp(&continue_token(server.step(Some(&authenticate.encode()))));
    assert_eq!(waiting.neg_state, Some(neg_state::ACCEPT_INCOMPLETE));
    assert!(waiting.mech_list_mic.is_some());
    let nothing = NegTokenResp::default().encode();
    assert_eq!(
        server.step(Some(&nothing)),
        Err(SecurityError::MechListMic("is missing"))
    );
    assert!(!server.is_established());
}

#[test]
fn a_kerberos_only_initiator_refuses_ntlm_and_an_acceptor_without_a_common_mechanism_says_so() {
    // Kerberos required: the acceptor's choice of NTLM (with request-mic) is a downgrade.
    let mut client = SpnegoInitiator::kerberos(kerberos_initiator());
    let init = continue_token(client.step(None));
    let mut server = ntlm_only_server();
    assert_eq!(
        server.step(Some(&init)),
        Err(SecurityError::NoCommonMechanism)
    );
    let choice = NegTokenResp {
        neg_state: Some(neg_state::REQUEST_MIC),
        supported_mech: Some(NTLM_OID.to_vec()),
        response_token: None,
        mech_list_mic: None,
    };
    assert!(matches!(
        client.step(Some(&choice.encode())),
        Err(SecurityError::Downgrade(_))
    ));
    assert!(!client.is_established());
}
