//! Our Kerberos client against our server's Kerberos acceptor on 127.0.0.1, with a ticket
//! issued under the server's keytab key (the test stands in for the KDC): calls at every level,
//! the caller named by the ticket, and the refusals on the wire (a ticket for another service,
//! a replayed bind, a tampered sealed fragment).

#![cfg(test)]

pub mod common;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use common::*;
use dsbackup_krb::{
    Credential, EncType, Grant, KerberosTime, Key, KeytabEntry, PrincipalName, ServiceKeys,
};
use dsbackup_proto::{AuthLevel, DataRep, ProtocolError, SecurityError};
use dsbackup_transport::{Binding, ClientAuth, KdcError, RpcInterface, Tickets, TransportError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const REALM: &str = "CORP.EXAMPLE";
const SPN: &str = "host/dc1.corp.example";

fn service_key() -> Key {
    Key::new(EncType::AES256_CTS_HMAC_SHA1_96, &[0x3c; 32]).unwrap()
}

fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn ticket(server: &str, key: &Key, endtime: i64) -> Credential {
    let grant = Grant {
        crealm: REALM.into(),
        client: PrincipalName::user(USER),
        srealm: REALM.into(),
        server: PrincipalName::service(server),
        session_key: Key::new(EncType::AES256_CTS_HMAC_SHA1_96, &[0x77; 32]).unwrap(),
        authtime: KerberosTime(now() - 10),
        endtime: KerberosTime(endtime),
        flags: 0,
    };
    Credential::issue(grant, key, Some(2), &[4; 16])
}

async fn kerberos_server() -> dsbackup_transport::RunningServer {
    let mut options = server_options(4280);
    let entry = KeytabEntry {
        realm: REALM.into(),
        principal: PrincipalName::service(SPN),
        kvno: 2,
        key: service_key(),
    };
    let mut config = dsbackup_krb::AcceptorConfig::new(ServiceKeys::new(vec![entry], None));
    config.domain = Some(DOMAIN.into());
    options.kerberos = Some(config);
    let interface = TestInterface::new(AuthLevel::CONNECT);
    start(&[interface as Arc<dyn RpcInterface>], options).await
}

fn kerberos_options(ticket: Credential, level: AuthLevel) -> dsbackup_transport::ClientOptions {
    let mut options = client_options(AuthLevel::NONE, 4280, DataRep::LITTLE_ENDIAN);
    options.auth = ClientAuth::Kerberos {
        tickets: Tickets::fixed(ticket),
        level,
    };
    options
}

#[tokio::test]
async fn calls_go_through_at_every_level_and_the_server_knows_the_ticket_holder() {
    let server = kerberos_server().await;
    for level in [
        AuthLevel::CONNECT,
        AuthLevel::PKT_INTEGRITY,
        AuthLevel::PKT_PRIVACY,
    ] {
        for spnego in [false, true] {
            let mut options = kerberos_options(ticket(SPN, &service_key(), now() + 3600), level);
            if spnego {
                // The same ticket inside SPNEGO (auth type 9), as Windows and impacket bind.
                let ClientAuth::Kerberos { tickets, .. } = options.auth.clone() else {
                    unreachable!()
                };
                options.auth = ClientAuth::Negotiate {
                    tickets: Some(tickets),
                    ntlm: None,
                    level,
                };
            }
            let binding = Binding::connect(server.local_addr(), &[syntax(1)], &options)
                .await
                .unwrap_or_else(|e| panic!("{level:?}, SPNEGO {spnego}: {e}"));
            for (i, len) in [0usize, 1, 100, 4280, 20_000].into_iter().enumerate() {
                let stub = pattern(len, u32::try_from(i).unwrap());
                let reply = call_bytes(&binding, op::ECHO, stub.clone()).await;
                assert_eq!(reply, stub, "{level:?}, {len} bytes");
            }
            let who = call_bytes(&binding, op::WHOAMI, Bytes::new()).await;
            let mut expected = format!("{USER}\\{DOMAIN}").into_bytes();
            expected.push(level.0);
            assert_eq!(who, expected, "{level:?}");
        }
    }
}

#[tokio::test]
async fn a_ticket_for_another_service_is_refused_at_bind() {
    let server = kerberos_server().await;
    let other_key = Key::new(EncType::AES256_CTS_HMAC_SHA1_96, &[0x99; 32]).unwrap();
    let options = kerberos_options(
        ticket("host/other.corp.example", &other_key, now() + 3600),
        AuthLevel::PKT_PRIVACY,
    );
    let error = Binding::connect(server.local_addr(), &[syntax(1)], &options)
        .await
        .unwrap_err();
    assert!(
        matches!(error, TransportError::BindRejected(_)),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_expired_ticket_is_not_presented() {
    let server = kerberos_server().await;
    let options = kerberos_options(
        ticket(SPN, &service_key(), now() - 1),
        AuthLevel::PKT_PRIVACY,
    );
    let error = Binding::connect(server.local_addr(), &[syntax(1)], &options)
        .await
        .unwrap_err();
    assert!(
        matches!(error, TransportError::Kdc(KdcError::Expired)),
        "{error:?}"
    );
}

/// A binding at packet privacy with a valid ticket, through `addr`.
async fn privacy_binding(addr: std::net::SocketAddr) -> Binding {
    let options = kerberos_options(
        ticket(SPN, &service_key(), now() + 3600),
        AuthLevel::PKT_PRIVACY,
    );
    Binding::connect(addr, &[syntax(1)], &options)
        .await
        .unwrap()
}

/// Reads one PDU (header, then the rest by frag_length).
async fn read_pdu(stream: &mut tokio::net::TcpStream) -> Bytes {
    let mut header = [0u8; 16];
    stream.read_exact(&mut header).await.unwrap();
    let len = usize::from(u16::from_le_bytes([header[8], header[9]]));
    let mut pdu = BytesMut::from(&header[..]);
    pdu.resize(len, 0);
    stream.read_exact(&mut pdu[16..]).await.unwrap();
    pdu.freeze()
}

#[tokio::test]
async fn a_replayed_bind_is_refused() {
    let server = kerberos_server().await;
    let relay = proxy(server.local_addr(), forward_all()).await;
    let binding = privacy_binding(relay.addr).await;
    call_bytes(&binding, op::ECHO, pattern(10, 1)).await;
    let bind = relay
        .log
        .lock()
        .unwrap()
        .iter()
        .find(|(dir, frame)| *dir == Dir::ToServer && ptype(frame) == BIND)
        .map(|(_, frame)| frame.clone())
        .unwrap();
    // The same bind, AP-REQ and authenticator, on a new connection.
    let mut stream = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    stream.write_all(&bind).await.unwrap();
    let answer = read_pdu(&mut stream).await;
    assert_eq!(ptype(&answer), 13, "a bind_nak answers the replayed bind");
}

#[tokio::test]
async fn a_tampered_sealed_response_fails_the_call_as_a_bad_signature() {
    let server = kerberos_server().await;
    let mangle: Mangle = Arc::new(|dir, _, frame: Bytes| {
        if dir == Dir::ToClient && ptype(&frame) == RESPONSE {
            let mut bad = frame.to_vec();
            // A byte of the sealed stub (after the 24-byte response header).
            bad[30] ^= 1;
            return Action::Forward(vec![Bytes::from(bad)]);
        }
        Action::Forward(vec![frame])
    });
    let relay = proxy(server.local_addr(), mangle).await;
    let binding = privacy_binding(relay.addr).await;
    let error = binding.call(op::ECHO, pattern(100, 3)).await.unwrap_err();
    assert!(
        matches!(
            error,
            TransportError::Protocol(ProtocolError::Security(SecurityError::BadSignature))
        ),
        "{error:?}"
    );
}

/// An rc4-hmac session key: both sides protect with RFC 4757's tokens (37 bytes at packet
/// integrity, 45 at privacy), every stub size through, fragmented ones too, over Kerberos and
/// SPNEGO.
#[tokio::test]
async fn an_rc4_hmac_session_key_protects_with_rfc_4757_tokens() {
    let server = kerberos_server().await;
    let grant = Grant {
        crealm: REALM.into(),
        client: PrincipalName::user(USER),
        srealm: REALM.into(),
        server: PrincipalName::service(SPN),
        session_key: Key::new(EncType::RC4_HMAC, &[0x55; 16]).unwrap(),
        authtime: KerberosTime(now() - 10),
        endtime: KerberosTime(now() + 3600),
        flags: 0,
    };
    let ticket = Credential::issue(grant, &service_key(), Some(2), &[4; 16]);
    for level in [AuthLevel::PKT_INTEGRITY, AuthLevel::PKT_PRIVACY] {
        for spnego in [false, true] {
            let tickets = Tickets::fixed(ticket.clone());
            let mut options = kerberos_options(ticket.clone(), level);
            if spnego {
                options.auth = ClientAuth::Negotiate {
                    tickets: Some(tickets),
                    ntlm: None,
                    level,
                };
            }
            let binding = Binding::connect(server.local_addr(), &[syntax(1)], &options)
                .await
                .unwrap_or_else(|e| panic!("{level:?}, SPNEGO {spnego}: {e}"));
            for (i, len) in [0usize, 1, 100, 20_000].into_iter().enumerate() {
                let stub = pattern(len, u32::try_from(i).unwrap());
                let reply = call_bytes(&binding, op::ECHO, stub.clone()).await;
                assert_eq!(reply, stub, "{level:?}, SPNEGO {spnego}, {len} bytes");
            }
        }
    }
}
