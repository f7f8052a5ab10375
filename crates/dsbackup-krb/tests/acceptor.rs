//! Our initiator against our acceptor, sans-IO: the DCE-style handshake, tokens both ways at
//! integrity and privacy, and every refusal the acceptor owes (another service, an expired
//! ticket, clock skew, a replayed authenticator, a client name that is not the ticket's, a
//! tampered token, a forged last leg).
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test: a step that fails fails the test"
)]

use dsbackup_krb::{
    AcceptorConfig, AcceptorInputs, Credential, EncType, Grant, InitiatorInputs, KerberosAcceptor,
    KerberosInitiator, KerberosTime, Key, KeytabEntry, KrbError, PrincipalName, ReplayCache,
    ServiceKeys, encode_keytab, parse_keytab,
};
use dsbackup_krb::{MAX_SKEW, verify_ap_req};
use dsbackup_proto::{
    AuthStep, BatchError, PeerIdentity, ProtectedFragment, Protection, SecurityError,
    SecurityProvider, SpnegoMechanism,
};

const REALM: &str = "MOCK.EXAMPLE";
const SPN: &str = "host/dc1.mock.example";
const NOW: i64 = 1_800_000_000;

fn service_key() -> Key {
    Key::from_password(
        EncType::AES256_CTS_HMAC_SHA1_96,
        "machine password",
        b"MOCK.EXAMPLEhostdc1.mock.example",
        None,
    )
    .unwrap()
}

fn keys() -> ServiceKeys {
    let entry = KeytabEntry {
        realm: REALM.into(),
        principal: PrincipalName::service(SPN),
        kvno: 3,
        key: service_key(),
    };
    // Through a keytab file and back, as mock-dc --keytab reads it.
    let entries = parse_keytab(&encode_keytab(std::slice::from_ref(&entry))).unwrap();
    assert_eq!(entries, [entry]);
    ServiceKeys::new(entries, Some(SPN))
}

fn grant(server: &str, authtime: i64, endtime: i64) -> Grant {
    Grant {
        crealm: REALM.into(),
        client: PrincipalName::user("backup"),
        srealm: REALM.into(),
        server: PrincipalName::service(server),
        session_key: Key::new(EncType::AES256_CTS_HMAC_SHA1_96, &[0x5a; 32]).unwrap(),
        authtime: KerberosTime(authtime),
        endtime: KerberosTime(endtime),
        flags: 0,
    }
}

fn ticket() -> Credential {
    Credential::issue(
        grant(SPN, NOW - 60, NOW + 36_000),
        &service_key(),
        Some(3),
        &[1; 16],
    )
}

fn initiator(ticket: Credential, protection: Protection, now: i64) -> KerberosInitiator {
    let mut n = 0u8;
    let inputs = InitiatorInputs {
        now: KerberosTime(now),
        usec: 1234,
        seq: 100,
        subkey: [0x11; 32],
        confounders: Box::new(move || {
            n = n.wrapping_add(1);
            [n; 16]
        }),
    };
    KerberosInitiator::new(ticket, protection, inputs)
}

fn acceptor(config: &AcceptorConfig, protection: Protection, now: i64) -> KerberosAcceptor {
    let mut n = 0x80u8;
    let inputs = AcceptorInputs {
        now: KerberosTime(now),
        seq: 7000,
        subkey: [0x22; 32],
        confounders: Box::new(move || {
            n = n.wrapping_add(1);
            [n; 16]
        }),
    };
    let mut acceptor = KerberosAcceptor::new(config.clone(), inputs);
    acceptor.require(protection);
    acceptor
}

fn config() -> AcceptorConfig {
    let mut config = AcceptorConfig::new(keys());
    config.domain = Some("MOCK".into());
    config
}

fn ap_req(initiator: &mut KerberosInitiator) -> Vec<u8> {
    match initiator.step(None).unwrap() {
        AuthStep::Continue(token) => token,
        other => panic!("{other:?}"),
    }
}

/// Runs the three legs; the established pair.
fn handshake(protection: Protection) -> (KerberosInitiator, KerberosAcceptor) {
    let config = config();
    let mut client = initiator(ticket(), protection, NOW);
    let mut server = acceptor(&config, protection, NOW);
    let token = ap_req(&mut client);
    let AuthStep::Continue(ap_rep) = server.step(Some(&token)).unwrap() else {
        panic!("the acceptor answers the AP-REQ with its AP-REP");
    };
    assert!(!server.is_established());
    let AuthStep::Complete(Some(reply)) = client.step(Some(&ap_rep)).unwrap() else {
        panic!("the client answers with its own AP-REP");
    };
    assert_eq!(server.step(Some(&reply)).unwrap(), AuthStep::Complete(None));
    assert!(client.is_established() && server.is_established());
    (client, server)
}

fn fragment(len: usize) -> (Vec<u8>, core::ops::Range<usize>) {
    let pdu: Vec<u8> = (0..16 + len + 8)
        .map(|i| u8::try_from(i % 249).unwrap())
        .collect();
    (pdu, 16..16 + len)
}

#[test]
fn initiator_and_acceptor_protect_fragments_both_ways_at_every_level() {
    for protection in [Protection::Integrity, Protection::Privacy] {
        let (mut client, mut server) = handshake(protection);
        assert_eq!(
            server.peer_identity(),
            Some(PeerIdentity {
                user: "backup".into(),
                domain: "MOCK".into()
            })
        );
        assert_eq!(client.signature_len(), server.signature_len());
        for round in 0..3 {
            for (from_client, len) in [(true, 100), (false, 5000)] {
                let (clear, stub) = fragment(len + round);
                let mut pdu = clear.clone();
                let mut sig = vec![0; client.signature_len()];
                let (sender, receiver): (&mut dyn SecurityProvider, &mut dyn SecurityProvider) =
                    if from_client {
                        (&mut client, &mut server)
                    } else {
                        (&mut server, &mut client)
                    };
                sender
                    .wrap(protection, &mut pdu, stub.clone(), &mut sig)
                    .unwrap();
                if protection == Protection::Privacy {
                    assert_ne!(pdu[stub.clone()], clear[stub.clone()], "sealed");
                }
                receiver
                    .unwrap(protection, &mut pdu, stub.clone(), &sig)
                    .unwrap();
                assert_eq!(pdu, clear);
            }
        }
    }
}

#[test]
fn a_tampered_or_replayed_fragment_is_refused() {
    for protection in [Protection::Integrity, Protection::Privacy] {
        let (mut client, mut server) = handshake(protection);
        let (clear, stub) = fragment(64);
        let mut pdu = clear.clone();
        let mut sig = vec![0; client.signature_len()];
        client
            .wrap(protection, &mut pdu, stub.clone(), &mut sig)
            .unwrap();
        for i in [0, 20, pdu.len() - 1] {
            let mut bad = pdu.clone();
            bad[i] ^= 1;
            assert_eq!(
                server.unwrap(protection, &mut bad, stub.clone(), &sig),
                Err(SecurityError::BadSignature),
                "{protection:?}: byte {i} of the fragment"
            );
        }
        let mut bad_sig = sig.clone();
        *bad_sig.last_mut().unwrap() ^= 1;
        let mut copy = pdu.clone();
        assert_eq!(
            server.unwrap(protection, &mut copy, stub.clone(), &bad_sig),
            Err(SecurityError::BadSignature)
        );
        let mut copy = pdu.clone();
        server
            .unwrap(protection, &mut copy, stub.clone(), &sig)
            .unwrap();
        // The same fragment again: its sequence number is spent.
        let mut again = pdu.clone();
        assert_eq!(
            server.unwrap(protection, &mut again, stub.clone(), &sig),
            Err(SecurityError::BadSignature)
        );
    }
}

/// The first leg of a fresh acceptor at `now` with `config`, on an AP-REQ made at `client_now`.
fn first_leg(
    config: &AcceptorConfig,
    ticket: Credential,
    client_now: i64,
    now: i64,
) -> (Result<AuthStep, SecurityError>, Option<KrbError>) {
    let mut client = initiator(ticket, Protection::Privacy, client_now);
    let mut server = acceptor(config, Protection::Privacy, now);
    let result = server.step(Some(&ap_req(&mut client)));
    (result, server.error().cloned())
}

#[test]
fn the_acceptor_refuses_each_bad_ap_req_with_its_own_error() {
    let config = config();
    // A ticket for another service, under another key.
    let other_key = Key::new(EncType::AES256_CTS_HMAC_SHA1_96, &[9; 32]).unwrap();
    let other = Credential::issue(
        grant("host/other.mock.example", NOW, NOW + 3600),
        &other_key,
        Some(1),
        &[2; 16],
    );
    let (result, error) = first_leg(&config, other, NOW, NOW);
    assert!(matches!(result, Err(SecurityError::LogonFailure(_))));
    assert!(matches!(error, Some(KrbError::NoKey(_))), "{error:?}");

    // Our service's name, someone else's key: the ticket does not decrypt.
    let forged = Credential::issue(grant(SPN, NOW, NOW + 3600), &other_key, Some(3), &[2; 16]);
    let (_, error) = first_leg(&config, forged, NOW, NOW);
    assert!(matches!(error, Some(KrbError::Crypto(_))), "{error:?}");

    // Expired (past its end and the skew allowed), and not yet valid.
    let expired = Credential::issue(
        grant(SPN, NOW - 7200, NOW - MAX_SKEW - 1),
        &service_key(),
        Some(3),
        &[3; 16],
    );
    let (_, error) = first_leg(&config, expired, NOW, NOW);
    assert_eq!(error, Some(KrbError::TicketExpired));
    let early = Credential::issue(
        grant(SPN, NOW + MAX_SKEW + 60, NOW + 7200),
        &service_key(),
        Some(3),
        &[3; 16],
    );
    let (_, error) = first_leg(&config, early, NOW, NOW);
    assert_eq!(error, Some(KrbError::TicketExpired));

    // The client's clock 5 minutes and 1 second behind, or ahead; exactly 5 minutes passes.
    let (_, error) = first_leg(&config, ticket(), NOW - MAX_SKEW - 1, NOW);
    assert_eq!(error, Some(KrbError::ClockSkew(-MAX_SKEW - 1)));
    let (_, error) = first_leg(&config, ticket(), NOW + MAX_SKEW + 1, NOW);
    assert_eq!(error, Some(KrbError::ClockSkew(MAX_SKEW + 1)));
    let (result, _) = first_leg(&config, ticket(), NOW + MAX_SKEW, NOW);
    assert!(matches!(result, Ok(AuthStep::Continue(_))));
}

#[test]
fn a_replayed_authenticator_is_refused_by_any_acceptor_of_the_server() {
    let config = config();
    let mut client = initiator(ticket(), Protection::Privacy, NOW);
    let token = ap_req(&mut client);
    let mut first = acceptor(&config, Protection::Privacy, NOW);
    assert!(matches!(
        first.step(Some(&token)),
        Ok(AuthStep::Continue(_))
    ));
    let mut second = acceptor(&config, Protection::Privacy, NOW + 10);
    assert!(matches!(
        second.step(Some(&token)),
        Err(SecurityError::LogonFailure(_))
    ));
    assert_eq!(second.error(), Some(&KrbError::Replay));
    // A fresh authenticator (a second later) of the same ticket passes.
    let mut later = initiator(ticket(), Protection::Privacy, NOW + 1);
    let mut third = acceptor(&config, Protection::Privacy, NOW + 10);
    assert!(matches!(
        third.step(Some(&ap_req(&mut later))),
        Ok(AuthStep::Continue(_))
    ));
}

#[test]
fn the_replay_cache_forgets_what_the_skew_would_refuse_anyway() {
    let mut cache = ReplayCache::default();
    let t = KerberosTime(NOW);
    cache.check("backup@MOCK.EXAMPLE", t, 1, t).unwrap();
    assert_eq!(
        cache.check("backup@MOCK.EXAMPLE", t, 1, KerberosTime(NOW + MAX_SKEW)),
        Err(KrbError::Replay)
    );
    cache.check("backup@MOCK.EXAMPLE", t, 2, t).unwrap();
    cache.check("other@MOCK.EXAMPLE", t, 1, t).unwrap();
    // Past the window the entry is gone (and the authenticator would be refused as skewed).
    cache
        .check(
            "backup@MOCK.EXAMPLE",
            t,
            1,
            KerberosTime(NOW + MAX_SKEW + 2),
        )
        .unwrap();
}

#[test]
fn an_authenticator_for_another_client_than_the_ticket_is_refused() {
    let config = config();
    let mut ticket = ticket();
    // The initiator puts the credential's client in its authenticator: make it lie.
    ticket.client = PrincipalName::user("administrator");
    let (_, error) = first_leg(&config, ticket, NOW, NOW);
    assert!(
        matches!(error, Some(KrbError::Mismatch(reason)) if reason.contains("another client")),
        "{error:?}"
    );
}

#[test]
fn a_forged_last_leg_is_refused() {
    let config = config();
    let mut client = initiator(ticket(), Protection::Privacy, NOW);
    let mut server = acceptor(&config, Protection::Privacy, NOW);
    let token = ap_req(&mut client);
    let AuthStep::Continue(ap_rep) = server.step(Some(&token)).unwrap() else {
        panic!()
    };
    let AuthStep::Complete(Some(mut reply)) = client.step(Some(&ap_rep)).unwrap() else {
        panic!()
    };
    let last = reply.len() - 1;
    reply[last] ^= 1;
    assert!(server.step(Some(&reply)).is_err());
    assert!(!server.is_established());
    assert_eq!(server.peer_identity(), None);
    let mut sig = vec![0; server.signature_len()];
    let (mut pdu, stub) = fragment(10);
    assert!(
        server
            .wrap(Protection::Privacy, &mut pdu, stub, &mut sig)
            .is_err()
    );
}

#[test]
fn verify_ap_req_names_the_client_and_the_flags() {
    let config = config();
    let mut client = initiator(ticket(), Protection::Integrity, NOW);
    let token = ap_req(&mut client);
    // Skip the GSS framing: 0x60, its DER length, the OID (11 bytes), TOK_ID (2 bytes).
    let len_len = if token[1] & 0x80 == 0 {
        1
    } else {
        1 + usize::from(token[1] & 0x7f)
    };
    let message = &token[1 + len_len + 11 + 2..];
    let accepted = verify_ap_req(&config.keys, &config.replay, message, KerberosTime(NOW)).unwrap();
    assert_eq!(accepted.client, PrincipalName::user("backup"));
    assert_eq!(accepted.crealm, REALM);
    assert_eq!(accepted.seq_number, 100);
    assert!(accepted.mutual);
    // DCE style, integrity, no confidentiality.
    assert_eq!(accepted.gss_flags & 0x1030, 0x1020);
}

#[test]
fn an_accounts_keys_serve_its_spns_and_spn_restricts_them() {
    // The keytab of the account the SPN is registered on (as `samba-tool domain exportkeytab
    // --principal=ACCOUNT` writes it): its keys decrypt tickets for any of its SPNs.
    let account = KeytabEntry {
        realm: REALM.into(),
        principal: PrincipalName::user("mockdc"),
        kvno: 3,
        key: service_key(),
    };
    for (spn, accepted) in [(None, true), (Some(SPN), true), (Some("host/other"), false)] {
        let mut config = AcceptorConfig::new(ServiceKeys::new(vec![account.clone()], spn));
        config.domain = None;
        let (result, error) = first_leg(&config, ticket(), NOW, NOW);
        assert_eq!(result.is_ok(), accepted, "--spn {spn:?}: {error:?}");
        if !accepted {
            assert!(matches!(error, Some(KrbError::NoKey(_))), "{error:?}");
        }
    }
}

#[test]
fn spnego_carries_kerberos_and_refuses_a_downgrade_to_ntlm() {
    use dsbackup_krb::{
        MechFactory, NTLM_OID, NegTokenInit, NegTokenResp, SpnegoAcceptor, SpnegoInitiator,
        is_kerberos, neg_state,
    };
    let config = config();
    // Our SPNEGO initiator against our SPNEGO acceptor, Kerberos inside.
    let mut client = SpnegoInitiator::kerberos(initiator(ticket(), Protection::Privacy, NOW));
    let config_for_mech = config.clone();
    let factory: MechFactory = Box::new(move |oid| {
        is_kerberos(oid).then(|| {
            Box::new(acceptor(&config_for_mech, Protection::Privacy, NOW))
                as Box<dyn SpnegoMechanism>
        })
    });
    let mut server = SpnegoAcceptor::new(factory);
    server.require(Protection::Privacy);
    let AuthStep::Continue(init) = client.step(None).unwrap() else {
        panic!()
    };
    let decoded = NegTokenInit::decode(&init).unwrap();
    assert!(is_kerberos(&decoded.mech_types[0]));
    assert_eq!(NegTokenInit::decode(&decoded.encode()).unwrap(), decoded);
    let AuthStep::Continue(resp) = server.step(Some(&init)).unwrap() else {
        panic!()
    };
    let AuthStep::Continue(last) = client.step(Some(&resp)).unwrap() else {
        panic!("the client's AP-REP goes in an alter_context")
    };
    let AuthStep::Complete(Some(done)) = server.step(Some(&last)).unwrap() else {
        panic!()
    };
    assert_eq!(
        NegTokenResp::decode(&done).unwrap().neg_state,
        Some(neg_state::ACCEPT_COMPLETED)
    );
    assert_eq!(client.step(Some(&done)).unwrap(), AuthStep::Complete(None));
    assert!(client.is_established() && server.is_established());
    assert_eq!(server.peer_identity().unwrap().user, "backup");

    // An acceptor answering with NTLM: the client, which asked for Kerberos, refuses.
    let mut client = SpnegoInitiator::kerberos(initiator(ticket(), Protection::Privacy, NOW + 1));
    client.step(None).unwrap();
    let downgrade = NegTokenResp {
        neg_state: Some(neg_state::ACCEPT_INCOMPLETE),
        supported_mech: Some(NTLM_OID.to_vec()),
        response_token: Some(b"NTLMSSP\0\x02\0\0\0".to_vec()),
        mech_list_mic: None,
    };
    assert_eq!(
        NegTokenResp::decode(&downgrade.encode()).unwrap(),
        downgrade
    );
    assert_eq!(
        client.step(Some(&downgrade.encode())),
        Err(SecurityError::Downgrade(
            "the SPNEGO acceptor chose a mechanism this client does not accept"
        ))
    );
    assert!(!client.is_established());

    // An acceptor with none of the initiator's mechanisms refuses.
    let mut none = SpnegoAcceptor::new(Box::new(|_| None));
    let mut client = SpnegoInitiator::kerberos(initiator(ticket(), Protection::Privacy, NOW + 2));
    let AuthStep::Continue(init) = client.step(None).unwrap() else {
        panic!()
    };
    assert_eq!(
        none.step(Some(&init)),
        Err(SecurityError::NoCommonMechanism)
    );
}

/// Fragments of several stub lengths (whole blocks, as DCE/RPC pads them for Kerberos, and
/// others), each a pdu, its stub range and a signature buffer of `sig_len` bytes.
fn batch_of_fragments(sig_len: usize) -> Vec<(Vec<u8>, core::ops::Range<usize>, Vec<u8>)> {
    [4096, 16, 5808, 0, 32, 1000, 65_488, 48, 4000, 7]
        .into_iter()
        .map(|len| {
            let (pdu, stub) = fragment(len);
            (pdu, stub, vec![0; sig_len])
        })
        .collect()
}

/// The batch's view of `frags`.
fn protected(
    frags: &mut [(Vec<u8>, core::ops::Range<usize>, Vec<u8>)],
) -> Vec<ProtectedFragment<'_>> {
    frags
        .iter_mut()
        .map(|(pdu, stub, sig)| ProtectedFragment {
            pdu,
            stub: stub.clone(),
            signature: sig,
        })
        .collect()
}

/// One more fragment wrapped by `sender` is taken by `receiver`: their sequence numbers are in
/// step.
fn next_wrap_is_taken(
    sender: &mut dyn SecurityProvider,
    receiver: &mut dyn SecurityProvider,
    protection: Protection,
) {
    let (mut pdu, stub) = fragment(64);
    let mut sig = vec![0; sender.signature_len()];
    sender
        .wrap(protection, &mut pdu, stub.clone(), &mut sig)
        .unwrap();
    receiver.unwrap(protection, &mut pdu, stub, &sig).unwrap();
}

/// Wraps `fragments` with `batch`'s `wrap_batch` and each again with `single`'s `wrap`, the
/// two sides in the same state; both must give the same bytes.
fn same_as_one_by_one(
    single: &mut dyn SecurityProvider,
    batch: &mut dyn SecurityProvider,
    protection: Protection,
) -> Vec<(Vec<u8>, core::ops::Range<usize>, Vec<u8>)> {
    let mut one = batch_of_fragments(single.signature_len());
    for (pdu, stub, sig) in &mut one {
        single.wrap(protection, pdu, stub.clone(), sig).unwrap();
    }
    let mut many = batch_of_fragments(batch.signature_len());
    let mut fragments = protected(&mut many);
    batch.wrap_batch(protection, &mut fragments).unwrap();
    assert!(
        one == many,
        "the batch's bytes differ from one wrap at a time"
    );
    many
}

/// A batch of wraps (at privacy the encryptions run side by side) gives the bytes of one wrap
/// at a time, on both sides and at both levels, and the peer takes them, then what follows.
#[test]
fn a_batch_of_wraps_is_one_wrap_at_a_time() {
    for protection in [Protection::Integrity, Protection::Privacy] {
        let (mut client_a, mut server_a) = handshake(protection);
        let (mut client_b, mut server_b) = handshake(protection);
        let sent = same_as_one_by_one(&mut client_a, &mut client_b, protection);
        for (mut pdu, stub, sig) in sent {
            server_a.unwrap(protection, &mut pdu, stub, &sig).unwrap();
        }
        let answered = same_as_one_by_one(&mut server_a, &mut server_b, protection);
        for (mut pdu, stub, sig) in answered {
            client_a
                .unwrap(protection, &mut pdu, stub.clone(), &sig)
                .unwrap();
            assert_eq!(
                pdu,
                fragment(stub.len()).0,
                "the client reads the clear stub"
            );
        }
        // The sequence numbers went on in step: the next single wrap is taken.
        next_wrap_is_taken(&mut server_b, &mut client_a, protection);
    }
}

/// A fragment the batch cannot wrap (its stub outside it) stops the batch there: the ones
/// before it are wrapped and taken by the peer, the error names it, and the sequence numbers
/// go on from the last one wrapped.
#[test]
fn a_bad_fragment_stops_a_batch_of_wraps_after_the_ones_before_it() {
    let protection = Protection::Privacy;
    let (mut client, mut server) = handshake(protection);
    let mut frags = batch_of_fragments(server.signature_len());
    frags[3].1 = 10..400;
    let mut fragments = protected(&mut frags);
    let error = server.wrap_batch(protection, &mut fragments).unwrap_err();
    assert!(
        matches!(
            error,
            BatchError {
                index: 3,
                error: SecurityError::WrongState(_)
            }
        ),
        "{error:?}"
    );
    drop(fragments);
    for (mut pdu, stub, sig) in frags.into_iter().take(3) {
        client.unwrap(protection, &mut pdu, stub, &sig).unwrap();
    }
    next_wrap_is_taken(&mut server, &mut client, protection);
}
