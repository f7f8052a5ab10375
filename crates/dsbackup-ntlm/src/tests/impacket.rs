//! Interop with impacket: vectors made by scripts/vectors/ntlm_vectors.py (see
//! fixtures/PROVENANCE.md), every input and expected value in fixtures/ntlm/impacket-vectors.json.

use std::path::PathBuf;

use serde_json::Value;

use super::hex;
use crate::messages::AuthenticateMessage;
use crate::session::{Role, SessionSecurity};
use crate::{
    Acceptor, AcceptorConfig, ClientInputs, Credentials, InMemoryCredentials, Initiator,
    InitiatorConfig, Key, LogonFailure, NegotiateFlags, NtlmError, ServerInputs,
};

const MANIFEST: &str = include_str!("../../../../fixtures/ntlm/impacket-vectors.json");

fn manifest() -> Value {
    serde_json::from_str(MANIFEST).unwrap()
}

/// A fixture named in the manifest, checked against its recorded sha256 length-wise by content.
fn fixture(entry: &Value) -> Vec<u8> {
    let name = entry["file"].as_str().unwrap();
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "..",
        "fixtures",
        "ntlm",
        name,
    ]
    .iter()
    .collect();
    std::fs::read(path).unwrap()
}

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap()
}

fn acceptor_for(manifest: &Value) -> Acceptor {
    let server = &manifest["server"];
    let mut store = InMemoryCredentials::new();
    store.insert_password(
        str_of(server, "user"),
        str_of(server, "domain"),
        str_of(server, "password"),
    );
    let mut config = AcceptorConfig::new(
        std::sync::Arc::new(store),
        str_of(server, "nb_computer_name"),
        str_of(server, "nb_domain_name"),
        str_of(server, "dns_domain_name"),
    );
    config.dns_computer_name = str_of(server, "dns_computer_name").to_owned();
    Acceptor::new(
        config,
        ServerInputs {
            server_challenge: hex(str_of(server, "server_challenge")).try_into().unwrap(),
            timestamp: server["timestamp"].as_u64().unwrap(),
        },
    )
}

#[test]
fn our_challenge_is_byte_for_byte_what_impacket_encodes() {
    let manifest = manifest();
    for name in ["plain", "version"] {
        let handshake = &manifest["handshakes"][name];
        let mut acceptor = acceptor_for(&manifest);
        let challenge = acceptor
            .challenge(&fixture(&handshake["negotiate"]))
            .unwrap();
        assert_eq!(challenge, fixture(&handshake["challenge"]), "{name}");
    }
}

#[test]
fn impacket_initiator_with_the_right_password_is_accepted() {
    let manifest = manifest();
    for name in ["plain", "version"] {
        let handshake = &manifest["handshakes"][name];
        let case = &handshake["right-password"];
        let mut acceptor = acceptor_for(&manifest);
        acceptor
            .challenge(&fixture(&handshake["negotiate"]))
            .unwrap();
        let authenticate = fixture(&case["authenticate"]);
        let identity = acceptor.authenticate(&authenticate).unwrap();
        assert_eq!(identity.user, str_of(case, "user"), "{name}");
        assert_eq!(
            acceptor.exported_session_key().unwrap().as_bytes().to_vec(),
            hex(str_of(case, "exported_session_key")),
            "{name}"
        );
        if name == "version" {
            // impacket fills a MIC field but announces none in MsvAvFlags: it is not checked.
            let mic = AuthenticateMessage::decode(&authenticate).unwrap().mic;
            assert!(mic.is_some_and(|mic| mic != [0; 16]));
        }
    }
}

#[test]
fn impacket_initiator_with_a_wrong_password_or_user_is_refused() {
    let manifest = manifest();
    let handshake = &manifest["handshakes"]["plain"];
    for (case, expected) in [
        ("wrong-password", LogonFailure::BadProof),
        ("unknown-user", LogonFailure::UnknownUser),
    ] {
        let mut acceptor = acceptor_for(&manifest);
        acceptor
            .challenge(&fixture(&handshake["negotiate"]))
            .unwrap();
        let authenticate = fixture(&handshake[case]["authenticate"]);
        assert_eq!(
            acceptor.authenticate(&authenticate),
            Err(NtlmError::LogonFailure(expected)),
            "{case}"
        );
    }
}

#[test]
fn impacket_messages_round_trip_through_our_codec() {
    let manifest = manifest();
    let handshake = &manifest["handshakes"]["version"];
    // impacket's NEGOTIATE leaves the offsets of its empty fields at 0 (we write 40): equal
    // as messages, not as bytes.
    let negotiate = crate::Message::decode(&fixture(&handshake["negotiate"])).unwrap();
    assert_eq!(
        crate::Message::decode(&negotiate.encode().unwrap()).unwrap(),
        negotiate
    );
    let challenge = fixture(&handshake["challenge"]);
    assert_eq!(
        crate::Message::decode(&challenge)
            .unwrap()
            .encode()
            .unwrap(),
        challenge
    );
    let bytes = fixture(&handshake["right-password"]["authenticate"]);
    assert_eq!(
        AuthenticateMessage::decode(&bytes)
            .unwrap()
            .encode()
            .unwrap(),
        bytes
    );
}

#[test]
fn our_authenticate_matches_impacket_computation() {
    let manifest = manifest();
    let server = &manifest["server"];
    let ours = &manifest["our_initiator"];
    let mut config = InitiatorConfig::new(Credentials::from_password(
        str_of(server, "user"),
        str_of(server, "domain"),
        str_of(server, "password"),
    ));
    config.target_spn = Some(str_of(ours, "target_spn").to_owned());
    let inputs = ClientInputs {
        client_challenge: hex(str_of(ours, "client_challenge")).try_into().unwrap(),
        random_session_key: hex(str_of(ours, "random_session_key")).try_into().unwrap(),
        timestamp: 0,
    };
    let mut initiator = Initiator::new(config, inputs);
    let negotiate = initiator.negotiate().unwrap();
    assert_eq!(negotiate, fixture(&ours["negotiate"]));
    let challenge = fixture(&manifest["handshakes"]["plain"]["challenge"]);
    let authenticate = initiator.authenticate(&challenge).unwrap();
    // Byte for byte, MIC included.
    assert_eq!(authenticate, fixture(&ours["authenticate"]));
    let message = AuthenticateMessage::decode(&authenticate).unwrap();
    assert_eq!(
        message.nt_challenge_response,
        hex(str_of(ours, "nt_challenge_response"))
    );
    assert_eq!(
        message.encrypted_random_session_key,
        hex(str_of(ours, "encrypted_random_session_key"))
    );
    assert_eq!(message.lm_challenge_response, [0; 24]);

    // And our acceptor takes it, MIC included.
    let mut acceptor = acceptor_for(&manifest);
    assert_eq!(acceptor.challenge(&negotiate).unwrap(), challenge);
    acceptor.authenticate(&authenticate).unwrap();
}

#[test]
fn impacket_sealed_and_signed_pdus() {
    let manifest = manifest();
    let session = &manifest["session"];
    let flags = NegotiateFlags::from_bits_retain(
        u32::try_from(session["flags"].as_u64().unwrap()).unwrap(),
    );
    let key = Key::new(
        hex(str_of(session, "exported_session_key"))
            .try_into()
            .unwrap(),
    );
    let pdus = session["pdus"].as_array().unwrap();
    assert_eq!(pdus.len(), 8);
    for direction in ["c2s", "s2c"] {
        for level in ["privacy", "integrity"] {
            // Fresh states per (direction, level), as the script's fresh RC4 handles.
            let (sender_role, receiver_role) = if direction == "c2s" {
                (Role::Initiator, Role::Acceptor)
            } else {
                (Role::Acceptor, Role::Initiator)
            };
            let mut sender = SessionSecurity::new(&key, flags, sender_role).unwrap();
            let mut receiver = SessionSecurity::new(&key, flags, receiver_role).unwrap();
            let selected = pdus
                .iter()
                .filter(|p| str_of(p, "direction") == direction && str_of(p, "level") == level);
            for pdu in selected {
                let plain = fixture(&pdu["plain"]);
                let wire = fixture(&pdu["wire"]);
                let signature = hex(str_of(pdu, "signature"));
                let range = pdu["stub_range"].as_array().unwrap();
                let stub = usize::try_from(range[0].as_u64().unwrap()).unwrap()
                    ..usize::try_from(range[1].as_u64().unwrap()).unwrap();
                let what = format!("{direction} {level} seq {}", pdu["seq_num"]);

                // We produce impacket's bytes.
                let mut ours = plain.clone();
                let our_signature = if level == "privacy" {
                    sender.seal_range(&mut ours, stub.clone()).unwrap()
                } else {
                    sender.sign(&ours)
                };
                assert_eq!(ours, wire, "{what}");
                assert_eq!(our_signature.to_vec(), signature, "{what}");

                // We take impacket's bytes.
                let mut received = wire.clone();
                if level == "privacy" {
                    receiver
                        .unseal_range(&mut received, stub, &signature)
                        .unwrap();
                } else {
                    receiver.verify(&received, &signature).unwrap();
                }
                assert_eq!(received, plain, "{what}");
            }
        }
    }
}
