//! SPNEGO (auth type 9) with NTLM inside, our client against our server on 127.0.0.1, the
//! server without a keytab (NTLM is all it has): NTLM alone in the list, and Kerberos offered
//! first then NTLM on the server's `request-mic`, at every level; and the refusals on the
//! wire: Kerberos required against that server, a server answering with NTLM to a client that
//! requires Kerberos, a mechanism list reordered on the way, a tampered mechanism list MIC.

#![cfg(test)]

pub mod common;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::*;
use dsbackup_krb::{Credential, EncType, Grant, KerberosTime, Key, PrincipalName};
use dsbackup_krb::{NTLM_OID, NegTokenInit, NegTokenResp, neg_state};
use dsbackup_ntlm::{ClientInputs, Credentials, Initiator, InitiatorConfig};
use dsbackup_proto::{
    AuthLevel, AuthType, DataRep, FaultStatus, ProtocolError, RejectReason, SecurityError,
};
use dsbackup_transport::{
    Binding, ClientAuth, ClientOptions, RpcInterface, RunningServer, Tickets, TransportError,
};

const BIND_ACK: u8 = 12;
const ALTER_CONTEXT_RESP: u8 = 15;

/// A service ticket the NTLM-only server cannot read (it has no keytab at all).
fn ticket() -> Credential {
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let grant = Grant {
        crealm: "CORP.EXAMPLE".into(),
        client: PrincipalName::user(USER),
        srealm: "CORP.EXAMPLE".into(),
        server: PrincipalName::service("host/dc1.corp.example"),
        session_key: Key::new(EncType::AES256_CTS_HMAC_SHA1_96, &[0x77; 32]).unwrap(),
        authtime: KerberosTime(now - 10),
        endtime: KerberosTime(now + 3600),
        flags: 0,
    };
    let service_key = Key::new(EncType::AES256_CTS_HMAC_SHA1_96, &[0x3c; 32]).unwrap();
    Credential::issue(grant, &service_key, Some(2), &[4; 16])
}

async fn ntlm_only_server() -> RunningServer {
    let interface = TestInterface::new(AuthLevel::CONNECT);
    start(&[interface as Arc<dyn RpcInterface>], server_options(4280)).await
}

fn negotiate(kerberos: bool, ntlm: bool, level: AuthLevel) -> ClientOptions {
    let mut options = client_options(AuthLevel::NONE, 4280, DataRep::LITTLE_ENDIAN);
    options.auth = ClientAuth::Negotiate {
        tickets: kerberos.then(|| Tickets::fixed(ticket())),
        ntlm: ntlm.then(|| Credentials::from_password(USER, DOMAIN, PASSWORD)),
        level,
    };
    options
}

/// The `auth_type` and `auth_value` of a frame with an auth verifier.
fn auth(frame: &[u8]) -> (u8, &[u8]) {
    let frag_len = usize::from(u16::from_le_bytes([frame[8], frame[9]]));
    let auth_len = usize::from(u16::from_le_bytes([frame[10], frame[11]]));
    let value = frame.len() - auth_len;
    assert_eq!(frag_len, frame.len());
    (frame[value - 8], &frame[value..])
}

/// `frame` with its auth value replaced (the lengths in the header follow).
fn with_auth_value(frame: &[u8], value: &[u8]) -> Bytes {
    let auth_len = usize::from(u16::from_le_bytes([frame[10], frame[11]]));
    let mut out = frame[..frame.len() - auth_len].to_vec();
    out.extend_from_slice(value);
    let frag_len = u16::try_from(out.len()).unwrap();
    out[8..10].copy_from_slice(&frag_len.to_le_bytes());
    out[10..12].copy_from_slice(&u16::try_from(value.len()).unwrap().to_le_bytes());
    Bytes::from(out)
}

/// A relay to `server` that replaces the auth value of each frame of packet type `ptype`
/// going `dir` with what `change` makes of it (`None`: the frame as it is).
async fn rewriting(
    server: &RunningServer,
    dir: Dir,
    packet: u8,
    change: impl Fn(&[u8]) -> Option<Vec<u8>> + Send + Sync + 'static,
) -> Proxy {
    let mangle: Mangle = Arc::new(move |way, _, frame: Bytes| {
        if way == dir
            && ptype(&frame) == packet
            && let Some(value) = change(auth(&frame).1)
        {
            return Action::Forward(vec![with_auth_value(&frame, &value)]);
        }
        Action::Forward(vec![frame])
    });
    proxy(server.local_addr(), mangle).await
}

/// The error of a bind through `relay` with `options`.
async fn bind_error(relay: &Proxy, options: &ClientOptions) -> TransportError {
    Binding::connect(relay.addr, &[syntax(1)], options)
        .await
        .unwrap_err()
}

#[tokio::test]
async fn ntlm_inside_spnego_carries_calls_at_every_level_without_a_keytab() {
    let server = ntlm_only_server().await;
    for level in [
        AuthLevel::CONNECT,
        AuthLevel::PKT_INTEGRITY,
        AuthLevel::PKT_PRIVACY,
    ] {
        for kerberos_first in [false, true] {
            let relay = proxy(server.local_addr(), forward_all()).await;
            let options = negotiate(kerberos_first, true, level);
            let binding = Binding::connect(relay.addr, &[syntax(1)], &options)
                .await
                .unwrap_or_else(|e| panic!("{level:?}, Kerberos first {kerberos_first}: {e}"));
            for (i, len) in [0usize, 1, 100, 4280, 20_000].into_iter().enumerate() {
                let stub = pattern(len, u32::try_from(i).unwrap());
                assert_eq!(call_bytes(&binding, op::ECHO, stub.clone()).await, stub);
            }
            // The server knows the NTLM user.
            let who = call_bytes(&binding, op::WHOAMI, Bytes::new()).await;
            let mut expected = format!("{USER}\\{DOMAIN}").into_bytes();
            expected.push(level.0);
            assert_eq!(who, expected, "{level:?}");
            // It went inside SPNEGO, the server choosing NTLM.
            let log = relay.log.lock().unwrap().clone();
            let (_, bind) = log.iter().find(|(_, f)| ptype(f) == BIND).unwrap();
            let (auth_type, init) = auth(bind);
            assert_eq!(auth_type, AuthType::GSS_NEGOTIATE.0);
            let init = NegTokenInit::decode(init).unwrap();
            assert_eq!(init.mech_types.len(), if kerberos_first { 3 } else { 1 });
            assert_eq!(init.mech_types.last().unwrap(), NTLM_OID);
            let (_, ack) = log.iter().find(|(_, f)| ptype(f) == BIND_ACK).unwrap();
            let answer = NegTokenResp::decode(auth(ack).1).unwrap();
            assert_eq!(answer.supported_mech.as_deref(), Some(NTLM_OID));
            assert_eq!(
                answer.neg_state,
                Some(if kerberos_first {
                    neg_state::REQUEST_MIC
                } else {
                    neg_state::ACCEPT_INCOMPLETE
                })
            );
            // The MICs went both ways when NTLM signs (from packet integrity up).
            let (_, last) = log
                .iter()
                .rfind(|(_, f)| ptype(f) == ALTER_CONTEXT_RESP)
                .unwrap();
            let last = NegTokenResp::decode(auth(last).1).unwrap();
            assert_eq!(last.neg_state, Some(neg_state::ACCEPT_COMPLETED));
            assert_eq!(last.mech_list_mic.is_some(), level != AuthLevel::CONNECT);
        }
    }
}

#[tokio::test]
async fn kerberos_required_is_refused_by_a_server_that_has_only_ntlm() {
    let server = ntlm_only_server().await;
    // SPNEGO offering Kerberos alone: nothing in common.
    let error = Binding::connect(
        server.local_addr(),
        &[syntax(1)],
        &negotiate(true, false, AuthLevel::PKT_PRIVACY),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            error,
            TransportError::BindRejected(RejectReason::AUTHENTICATION_TYPE_NOT_RECOGNIZED)
        ),
        "{error:?}"
    );
    // Kerberos itself (auth type 16): an auth type the server does not have.
    let mut options = client_options(AuthLevel::NONE, 4280, DataRep::LITTLE_ENDIAN);
    options.auth = ClientAuth::Kerberos {
        tickets: Tickets::fixed(ticket()),
        level: AuthLevel::PKT_PRIVACY,
    };
    let error = Binding::connect(server.local_addr(), &[syntax(1)], &options)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            TransportError::BindRejected(RejectReason::AUTHENTICATION_TYPE_NOT_RECOGNIZED)
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_server_answering_with_ntlm_is_a_downgrade_when_kerberos_is_required() {
    let server = ntlm_only_server().await;
    // On the way, the client's offer of Kerberos becomes an offer of NTLM: the server answers
    // with NTLM's CHALLENGE, which the client, requiring Kerberos, refuses.
    let relay = rewriting(&server, Dir::ToServer, BIND, |_| {
        let mut ntlm = Initiator::new(
            InitiatorConfig::new(Credentials::from_password(USER, DOMAIN, PASSWORD)),
            ClientInputs {
                client_challenge: [1; 8],
                random_session_key: [2; 16],
                timestamp: 0,
            },
        );
        let forged = NegTokenInit {
            mech_types: vec![NTLM_OID.to_vec()],
            mech_token: Some(ntlm.negotiate().unwrap()),
        };
        Some(forged.encode())
    })
    .await;
    let error = bind_error(&relay, &negotiate(true, false, AuthLevel::PKT_PRIVACY)).await;
    assert!(
        matches!(
            error,
            TransportError::Protocol(ProtocolError::Security(SecurityError::Downgrade(_)))
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_reordered_mechanism_list_fails_the_servers_mic_check() {
    let server = ntlm_only_server().await;
    // NTLM put first and the Kerberos token dropped: the server takes NTLM without asking for
    // the MIC, but the client, which offered Kerberos first, sends it over its own list.
    let relay = rewriting(&server, Dir::ToServer, BIND, |value| {
        let mut init = NegTokenInit::decode(value).unwrap();
        init.mech_types.rotate_right(1);
        init.mech_token = None;
        Some(init.encode())
    })
    .await;
    let error = bind_error(&relay, &negotiate(true, true, AuthLevel::PKT_PRIVACY)).await;
    assert!(
        matches!(
            error,
            TransportError::Fault {
                status: FaultStatus::ACCESS_DENIED,
                did_not_execute: true,
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_tampered_mechanism_list_mic_fails_the_bind() {
    let server = ntlm_only_server().await;
    let relay = rewriting(&server, Dir::ToClient, ALTER_CONTEXT_RESP, |value| {
        let mut answer = NegTokenResp::decode(value).unwrap();
        answer.mech_list_mic.as_mut()?[6] ^= 1;
        Some(answer.encode())
    })
    .await;
    let error = bind_error(&relay, &negotiate(false, true, AuthLevel::PKT_INTEGRITY)).await;
    assert!(
        matches!(
            error,
            TransportError::Protocol(ProtocolError::Security(SecurityError::MechListMic(
                "does not verify"
            )))
        ),
        "{error:?}"
    );
}

/// A KDC that never answers: negotiate falls back on NTLM within the connection's deadline,
/// and the next association takes Kerberos as unavailable without asking the KDC again (one
/// AS-REQ reached it in all).
#[tokio::test(start_paused = true)]
async fn a_kdc_that_does_not_answer_is_asked_once_and_ntlm_is_used() {
    let server = ntlm_only_server().await;
    let kdc = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    kdc.set_nonblocking(true).unwrap();
    let port = kdc.local_addr().unwrap().port();
    let tickets = Tickets::new(
        dsbackup_transport::TicketSource::Login {
            user: USER.into(),
            realm: "CORP.EXAMPLE".into(),
            secret: dsbackup_krb::Secret::Password(zeroize::Zeroizing::new(PASSWORD.into())),
        },
        PrincipalName::service("host/dc1.corp.example"),
        Some(("127.0.0.1".into(), port)),
    );
    let mut options = negotiate(false, true, AuthLevel::PKT_PRIVACY);
    options.auth = ClientAuth::Negotiate {
        tickets: Some(tickets.clone()),
        ntlm: Some(Credentials::from_password(USER, DOMAIN, PASSWORD)),
        level: AuthLevel::PKT_PRIVACY,
    };
    for _ in 0..2 {
        let binding = Binding::connect(server.local_addr(), &[syntax(1)], &options)
            .await
            .unwrap();
        let who = call_bytes(&binding, op::WHOAMI, Bytes::new()).await;
        assert!(who.starts_with(USER.as_bytes()));
    }
    let error = tickets.service_ticket().await.unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");
    let mut datagram = [0u8; 2048];
    let mut requests = 0;
    while kdc.recv(&mut datagram).is_ok() {
        requests += 1;
    }
    assert_eq!(requests, 1);
}
