//! [MS-NLMP §4.2.4] NTLMv2 authentication test vectors.
//!
//! Inputs of §4.2.1: user "User", domain "Domain", password "Password", server name "Server",
//! workstation "COMPUTER", RandomSessionKey 55..55, Time 0, ClientChallenge aa..aa,
//! ServerChallenge 0123456789abcdef. Expected values are those the specification prints in
//! §4.2.4.1 to §4.2.4.4 (transcribed from the published text, as also copied in pidgin-sipe's
//! src/core/sip-sec-ntlm-tests.c); the CHALLENGE and AUTHENTICATE messages are
//! fixtures/ntlm/ms-nlmp-4.2.4-*.bin.
//!
//! [MS-NLMP §4.2.4]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/125f7a94-933e-4023-a146-a449e49bf774

use super::hex;
use crate::crypto::{self, Direction, Key, NtHash};
use crate::initiator::client_blob;
use crate::messages::{AvId, AvPairs, ChallengeMessage, Message, Version};
use crate::session::{Role, SessionSecurity};
use crate::{
    Acceptor, AcceptorConfig, AuthenticateMessage, ClientInputs, Credentials, InMemoryCredentials,
    Initiator, InitiatorConfig, NegotiateFlags, ServerInputs,
};

const CHALLENGE: &[u8] = include_bytes!("../../../../fixtures/ntlm/ms-nlmp-4.2.4-challenge.bin");
const AUTHENTICATE: &[u8] =
    include_bytes!("../../../../fixtures/ntlm/ms-nlmp-4.2.4-authenticate.bin");

const SERVER_CHALLENGE: [u8; 8] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];
const CLIENT_CHALLENGE: [u8; 8] = [0xaa; 8];
const RANDOM_SESSION_KEY: [u8; 16] = [0x55; 16];
/// "Plaintext" in UTF-16LE, the message of §4.2.4.4.
const PLAINTEXT: &[u8] = b"P\0l\0a\0i\0n\0t\0e\0x\0t\0";

/// §4.2.4: the flags of the example AUTHENTICATE (35 82 88 e2).
fn authenticate_flags() -> NegotiateFlags {
    NegotiateFlags::from_bits_retain(0xe288_8235)
}

/// §4.2.4.1.3 AV pairs: MsvAvNbDomainName "Domain", MsvAvNbComputerName "Server".
fn server_pairs() -> AvPairs {
    let mut pairs = AvPairs::default();
    pairs.set(AvId::NB_DOMAIN_NAME, crypto::utf16le("Domain"));
    pairs.set(AvId::NB_COMPUTER_NAME, crypto::utf16le("Server"));
    pairs
}

fn response_key() -> Key {
    crypto::ntowfv2(&NtHash::from_password("Password"), "User", "Domain")
}

#[test]
fn ntowfv2_is_response_key_nt() {
    // §4.2.4.1.1 NTOWFv2() and LMOWFv2(): 0c 86 8a 40 3b fd 7a 93 a3 00 1e f2 2e f0 2e 3f.
    assert_eq!(
        response_key().as_bytes().to_vec(),
        hex("0c868a403bfd7a93a3001ef22ef02e3f")
    );
    // The same from the NT hash alone.
    let hash = NtHash::from_bytes(hex("a4f49c406510bdcab6824ee7c30fd852").try_into().unwrap());
    assert_eq!(crypto::ntowfv2(&hash, "user", "Domain"), response_key());
}

#[test]
fn lmv2_response() {
    // §4.2.4.2.1 LMv2 Response.
    let response = crypto::lmv2_response(&response_key(), &SERVER_CHALLENGE, &CLIENT_CHALLENGE);
    assert_eq!(
        response.to_vec(),
        hex("86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa")
    );
}

#[test]
fn ntlmv2_response_session_base_key_and_key_exchange() {
    // §4.2.4.1.3 temp, §4.2.4.2.2 NTLMv2 Response (NTProofStr), §4.2.4.1.2 SessionBaseKey,
    // §4.2.4.2.3 encrypted session key.
    let blob = client_blob(0, &CLIENT_CHALLENGE, &server_pairs()).unwrap();
    assert_eq!(
        blob,
        hex("01010000000000000000000000000000aaaaaaaaaaaaaaaa00000000\
             02000c0044006f006d00610069006e0001000c005300650072007600650072000000000000000000")
    );
    let proof = crypto::nt_proof_str(&response_key(), &SERVER_CHALLENGE, &blob);
    assert_eq!(proof.to_vec(), hex("68cd0ab851e51c96aabc927bebef6a1c"));
    let base = crypto::session_base_key(&response_key(), &proof);
    assert_eq!(
        base.as_bytes().to_vec(),
        hex("8de40ccadbc14a82f15cb0ad0de95ca3")
    );
    let encrypted = crypto::rc4_key(&base, &RANDOM_SESSION_KEY);
    assert_eq!(
        encrypted.as_bytes().to_vec(),
        hex("c5dad2544fc9799094ce1ce90bc9d03e")
    );
    assert_eq!(
        crypto::rc4_key(&base, encrypted.as_bytes()).as_bytes(),
        &RANDOM_SESSION_KEY
    );
}

#[test]
fn signing_and_sealing_keys() {
    // §4.2.4.4: SealKey 59 f6 00 97 ..., SignKey 47 88 dc 86 ... (client to server).
    let key = Key::new(RANDOM_SESSION_KEY);
    let seal = crypto::seal_key(&key, authenticate_flags(), Direction::ClientToServer);
    assert_eq!(
        seal.as_bytes().to_vec(),
        hex("59f600973cc4960a25480a7c196e4c58")
    );
    let sign = crypto::sign_key(&key, Direction::ClientToServer);
    assert_eq!(
        sign.as_bytes().to_vec(),
        hex("4788dc861b4782f35d43fd98fe1a2d39")
    );
}

#[test]
fn sealed_plaintext_and_signature() {
    // §4.2.4.4: sealed data 54 e5 01 65 ... and signature 01000000 7fb38ec5c55d4976 00000000.
    let key = Key::new(RANDOM_SESSION_KEY);
    let mut client = SessionSecurity::new(&key, authenticate_flags(), Role::Initiator).unwrap();
    let mut message = PLAINTEXT.to_vec();
    let signature = client.seal(&mut message);
    assert_eq!(message, hex("54e50165bf1936dc996020c1811b0f06fb5f"));
    assert_eq!(signature.to_vec(), hex("010000007fb38ec5c55d497600000000"));
    assert_eq!(client.next_send_seq_num(), 1);

    // The server unseals it with its own state.
    let mut server = SessionSecurity::new(&key, authenticate_flags(), Role::Acceptor).unwrap();
    server.unseal(&mut message, &signature).unwrap();
    assert_eq!(message, PLAINTEXT);
    assert_eq!(server.next_recv_seq_num(), 1);
}

#[test]
fn challenge_message_decodes_and_reencodes() {
    // §4.2.4.3 CHALLENGE_MESSAGE.
    let message = ChallengeMessage::decode(CHALLENGE).unwrap();
    assert_eq!(message.flags.bits(), 0xe28a_8233);
    assert_eq!(message.target_name, crypto::utf16le("Server"));
    assert_eq!(message.server_challenge, SERVER_CHALLENGE);
    assert_eq!(message.target_info, Some(server_pairs()));
    assert_eq!(
        message.version,
        Some(Version {
            product_major_version: 6,
            product_minor_version: 0,
            product_build: 6000,
            reserved: [0; 3],
            ntlm_revision_current: 15,
        })
    );
    assert_eq!(message.encode().unwrap(), CHALLENGE);
    assert_eq!(message.encoded_len(), CHALLENGE.len());
}

#[test]
fn authenticate_message_decodes_and_reencodes() {
    // §4.2.4.3 AUTHENTICATE_MESSAGE: no MIC (the challenge has no MsvAvTimestamp).
    let message = AuthenticateMessage::decode(AUTHENTICATE).unwrap();
    assert_eq!(message.flags, authenticate_flags());
    assert_eq!(message.user().as_deref(), Some("User"));
    assert_eq!(message.domain().as_deref(), Some("Domain"));
    assert_eq!(message.workstation_name().as_deref(), Some("COMPUTER"));
    assert_eq!(message.mic, None);
    assert_eq!(message.version.map(|v| v.product_build), Some(2600));
    assert_eq!(
        message.lm_challenge_response,
        hex("86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa")
    );
    assert_eq!(
        message.encrypted_random_session_key,
        hex("c5dad2544fc9799094ce1ce90bc9d03e")
    );
    assert_eq!(message.encode().unwrap(), AUTHENTICATE);
    assert_eq!(
        Message::decode(AUTHENTICATE).unwrap(),
        Message::Authenticate(message)
    );
}

#[test]
fn initiator_produces_the_spec_authenticate_message() {
    let mut config = InitiatorConfig::new(Credentials::from_password("User", "Domain", "Password"));
    config.workstation = "COMPUTER".to_owned();
    config.flags = authenticate_flags();
    config.version = Version {
        product_major_version: 5,
        product_minor_version: 1,
        product_build: 2600,
        reserved: [0; 3],
        ntlm_revision_current: 15,
    };
    let inputs = ClientInputs {
        client_challenge: CLIENT_CHALLENGE,
        random_session_key: RANDOM_SESSION_KEY,
        timestamp: 0,
    };
    let mut initiator = Initiator::new(config, inputs);
    initiator.negotiate().unwrap();
    let authenticate = initiator.authenticate(CHALLENGE).unwrap();
    assert_eq!(authenticate, AUTHENTICATE);
    assert_eq!(
        initiator.exported_session_key().unwrap().as_bytes(),
        &RANDOM_SESSION_KEY
    );

    // Its session seals the §4.2.4.4 message as the spec does.
    let mut message = PLAINTEXT.to_vec();
    let signature = initiator.session().unwrap().seal(&mut message);
    assert_eq!(message, hex("54e50165bf1936dc996020c1811b0f06fb5f"));
    assert_eq!(signature.to_vec(), hex("010000007fb38ec5c55d497600000000"));
}

#[test]
fn acceptor_accepts_the_spec_authenticate_message() {
    let mut store = InMemoryCredentials::new();
    store.insert_password("User", "Domain", "Password");
    let config = AcceptorConfig::new(std::sync::Arc::new(store), "Server", "Domain", "");
    let mut acceptor = Acceptor::new(
        config,
        ServerInputs {
            server_challenge: SERVER_CHALLENGE,
            timestamp: 0,
        },
    );
    let mut client = super::initiator("User", "Domain", "Password");
    acceptor.challenge(&client.negotiate().unwrap()).unwrap();
    let identity = acceptor.authenticate(AUTHENTICATE).unwrap();
    assert_eq!(identity.user, "User");
    assert_eq!(identity.workstation, "COMPUTER");
    assert_eq!(
        acceptor.exported_session_key().unwrap().as_bytes(),
        &RANDOM_SESSION_KEY
    );

    // And unseals the §4.2.4.4 message.
    let mut message = hex("54e50165bf1936dc996020c1811b0f06fb5f");
    let signature = hex("010000007fb38ec5c55d497600000000");
    acceptor
        .session()
        .unwrap()
        .unseal(&mut message, &signature)
        .unwrap();
    assert_eq!(message, PLAINTEXT);
}

#[cfg(feature = "serde")]
#[test]
fn messages_serialize_for_inspect() {
    let message = Message::decode(CHALLENGE).unwrap();
    let json = serde_json::to_value(&message).unwrap();
    let challenge = &json["Challenge"];
    assert_eq!(
        challenge["flags"],
        "NEGOTIATE_UNICODE | NEGOTIATE_OEM | NEGOTIATE_SIGN | NEGOTIATE_SEAL | NEGOTIATE_NTLM \
         | NEGOTIATE_ALWAYS_SIGN | TARGET_TYPE_SERVER | NEGOTIATE_EXTENDED_SESSIONSECURITY \
         | NEGOTIATE_TARGET_INFO | NEGOTIATE_VERSION | NEGOTIATE_128 | NEGOTIATE_KEY_EXCH \
         | NEGOTIATE_56"
    );
    assert_eq!(challenge["version"]["product_build"], 6000);
    assert_eq!(challenge["target_info"][0]["id"], 2);
}
