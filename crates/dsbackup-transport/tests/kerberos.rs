//! Our Kerberos client against a real KDC: the Samba AD DC that `cargo xtask conformance`
//! starts (`scripts/peers/samba-dc.sh`), named by `DSBACKUP_SAMBA_HOST`, with
//! `DSBACKUP_SAMBA_USER`, `DSBACKUP_SAMBA_PASSWORD`, `DSBACKUP_SAMBA_REALM` and
//! `DSBACKUP_SAMBA_KEYTAB` (a keytab of the user exported by `samba-tool domain exportkeytab`).
//!
//! `#[ignore]`d: they need the DC. Once asked for, a missing variable is a failure, not a skip.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration test: a step that fails fails the test"
)]

pub mod common;

use std::net::{SocketAddr, ToSocketAddrs};

use common::{SAMR, samr_connect_and_close};

use dsbackup_krb::{Credential, EncType, ErrorCode, KrbError, PrincipalName, Secret, parse_keytab};
use dsbackup_proto::AuthLevel;
use dsbackup_transport::{
    Binding, ClientAuth, ClientOptions, KdcClient, KdcError, TicketSource, Tickets, TransportError,
    list_endpoints, resolve,
};
use zeroize::Zeroizing;

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: these tests need a Samba AD DC (cargo xtask conformance starts one)"
        )
    })
}

struct Kdc {
    client: KdcClient,
    user: String,
    password: String,
    realm: String,
    host: String,
}

fn kdc() -> Kdc {
    let host = required("DSBACKUP_SAMBA_HOST");
    let addr: SocketAddr = (host.as_str(), 88)
        .to_socket_addrs()
        .unwrap()
        .next()
        .unwrap();
    Kdc {
        client: KdcClient::new(addr),
        user: required("DSBACKUP_SAMBA_USER"),
        password: required("DSBACKUP_SAMBA_PASSWORD"),
        realm: required("DSBACKUP_SAMBA_REALM"),
        host,
    }
}

/// The DC's own host principal (Samba's DC is `dc1`).
fn dc_spn(kdc: &Kdc) -> PrincipalName {
    let _ = &kdc.host;
    PrincipalName::service(&format!("host/dc1.{}", kdc.realm.to_ascii_lowercase()))
}

/// The DC's endpoint mapper.
fn epm_addr(kdc: &Kdc) -> SocketAddr {
    (kdc.host.as_str(), 135)
        .to_socket_addrs()
        .unwrap()
        .next()
        .unwrap()
}

/// A ticket for the DC's host principal, from the user's password.
async fn dc_ticket(kdc: &Kdc) -> Credential {
    let secret = Secret::Password(Zeroizing::new(kdc.password.clone()));
    let tgt = kdc.client.tgt(&kdc.user, &kdc.realm, secret).await.unwrap();
    kdc.client.service_ticket(&tgt, &dc_spn(kdc)).await.unwrap()
}

/// The ticket at `level` over Kerberos (auth type 16) and inside SPNEGO (auth type 9), named.
fn kerberos_and_spnego(ticket: &Credential, level: AuthLevel) -> [(&'static str, ClientAuth); 2] {
    let tickets = Tickets::fixed(ticket.clone());
    [
        (
            "Kerberos",
            ClientAuth::Kerberos {
                tickets: tickets.clone(),
                level,
            },
        ),
        (
            "SPNEGO",
            ClientAuth::Negotiate {
                tickets: Some(tickets),
                ntlm: None,
                level,
            },
        ),
    ]
}

/// The endpoint mapper at `epm` lists over Kerberos and SPNEGO with `ticket`, at each level,
/// the same map as anonymously.
async fn lists_as_anonymous(epm: SocketAddr, ticket: &Credential, levels: &[AuthLevel]) {
    let anonymous = list_endpoints(epm, &ClientOptions::default())
        .await
        .unwrap();
    for &level in levels {
        for (name, auth) in kerberos_and_spnego(ticket, level) {
            let entries = list_endpoints(epm, &ClientOptions::with_auth(auth))
                .await
                .unwrap_or_else(|e| panic!("{level:?}, {name}: {e}"));
            assert_eq!(entries, anonymous, "{level:?}, {name}");
        }
    }
}

#[tokio::test]
#[ignore = "needs a Samba AD DC (cargo xtask conformance)"]
async fn samba_kdc_gives_a_tgt_and_a_service_ticket_for_a_password() {
    let kdc = kdc();
    let secret = Secret::Password(Zeroizing::new(kdc.password.clone()));
    let tgt = kdc.client.tgt(&kdc.user, &kdc.realm, secret).await.unwrap();
    assert_eq!(tgt.server.components, ["krbtgt", kdc.realm.as_str()]);
    assert!(tgt.client.components[0].eq_ignore_ascii_case(&kdc.user));
    assert!(tgt.endtime > tgt.authtime);

    let spn = dc_spn(&kdc);
    let ticket = kdc.client.service_ticket(&tgt, &spn).await.unwrap();
    assert!(ticket.server.same_as(&spn), "{:?}", ticket.server);
    assert_eq!(ticket.ticket.realm, kdc.realm);
    assert_ne!(ticket.session_key, tgt.session_key);
}

#[tokio::test]
#[ignore = "needs a Samba AD DC (cargo xtask conformance)"]
async fn samba_kdc_gives_a_tgt_for_a_keytab() {
    let kdc = kdc();
    let bytes = std::fs::read(required("DSBACKUP_SAMBA_KEYTAB")).unwrap();
    let keys: Vec<_> = parse_keytab(&bytes)
        .unwrap()
        .into_iter()
        .filter(|e| e.principal.components[0].eq_ignore_ascii_case(&kdc.user))
        .map(|e| e.key)
        .collect();
    assert!(!keys.is_empty(), "no key of {} in the keytab", kdc.user);
    let tgt = kdc
        .client
        .tgt(&kdc.user, &kdc.realm, Secret::Keys(keys))
        .await
        .unwrap();
    let ticket = kdc
        .client
        .service_ticket(&tgt, &dc_spn(&kdc))
        .await
        .unwrap();
    assert!(ticket.server.same_as(&dc_spn(&kdc)));
}

#[tokio::test]
#[ignore = "needs a Samba AD DC (cargo xtask conformance)"]
async fn samba_kdc_refuses_a_wrong_password_and_an_unknown_service() {
    let kdc = kdc();
    let wrong = Secret::Password(Zeroizing::new(format!("{}x", kdc.password)));
    match kdc.client.tgt(&kdc.user, &kdc.realm, wrong).await {
        Err(KdcError::Kerberos(KrbError::Kdc { code, .. })) => {
            assert_eq!(code, ErrorCode::KDC_ERR_PREAUTH_FAILED);
        }
        other => panic!("a wrong password was not refused as such: {other:?}"),
    }
    let secret = Secret::Password(Zeroizing::new(kdc.password.clone()));
    let tgt = kdc.client.tgt(&kdc.user, &kdc.realm, secret).await.unwrap();
    let nobody = PrincipalName::service("host/nowhere.invalid");
    match kdc.client.service_ticket(&tgt, &nobody).await {
        Err(KdcError::Kerberos(KrbError::Kdc { code, .. })) => {
            assert_eq!(code, ErrorCode::KDC_ERR_S_PRINCIPAL_UNKNOWN);
        }
        other => panic!("an unknown service was not refused as such: {other:?}"),
    }
}

#[tokio::test]
#[ignore = "needs a Samba AD DC (cargo xtask conformance)"]
async fn samba_endpoint_mapper_answers_over_kerberos_and_spnego_at_every_level() {
    let kdc = kdc();
    let ticket = dc_ticket(&kdc).await;
    let levels = [
        AuthLevel::PKT_INTEGRITY,
        AuthLevel::PKT_PRIVACY,
        AuthLevel::CONNECT,
    ];
    lists_as_anonymous(epm_addr(&kdc), &ticket, &levels).await;
}

/// A second interface of Samba's: SAMR, on its own port (resolved through the endpoint mapper
/// with the same ticket), bound over Kerberos and over SPNEGO with Kerberos at packet integrity
/// and privacy, opens and closes a server handle (`SamrConnect`, `SamrCloseHandle`); at connect
/// the bind is taken and the call faulted `nca_s_fault_access_denied`, as Samba serves SAMR.
#[tokio::test]
#[ignore = "needs a Samba AD DC (cargo xtask conformance)"]
async fn samba_samr_answers_over_kerberos_and_spnego_at_every_level() {
    let kdc = kdc();
    let ticket = dc_ticket(&kdc).await;
    let epm = epm_addr(&kdc);
    for level in [
        AuthLevel::PKT_INTEGRITY,
        AuthLevel::PKT_PRIVACY,
        AuthLevel::CONNECT,
    ] {
        for (name, auth) in kerberos_and_spnego(&ticket, level) {
            let options = ClientOptions::with_auth(auth);
            let addr = resolve(epm, SAMR, &options)
                .await
                .unwrap_or_else(|e| panic!("ept_map over {name} at {level:?}: {e}"));
            let binding = Binding::connect(addr, &[SAMR], &options)
                .await
                .unwrap_or_else(|e| panic!("bind to SAMR over {name} at {level:?}: {e}"));
            samr_connect_and_close(&binding, level).await;
            binding.close().await;
        }
    }
}

/// An rc4-hmac session key (the TGS-REQ offers rc4-hmac alone): Samba's endpoint mapper and
/// our client protect with RFC 4757's tokens, and the map is the anonymous one at integrity and
/// privacy, over Kerberos and SPNEGO.
#[tokio::test]
#[ignore = "needs a Samba AD DC (cargo xtask conformance)"]
async fn samba_endpoint_mapper_answers_over_rc4_hmac() {
    let kdc = kdc();
    let secret = Secret::Password(Zeroizing::new(kdc.password.clone()));
    let tgt = kdc.client.tgt(&kdc.user, &kdc.realm, secret).await.unwrap();
    let ticket = kdc
        .client
        .service_ticket_with_etypes(&tgt, &dc_spn(&kdc), &[EncType::RC4_HMAC])
        .await
        .unwrap();
    assert_eq!(ticket.session_key.etype(), EncType::RC4_HMAC);
    let levels = [AuthLevel::PKT_INTEGRITY, AuthLevel::PKT_PRIVACY];
    lists_as_anonymous(epm_addr(&kdc), &ticket, &levels).await;
}

#[tokio::test]
#[ignore = "needs a Samba AD DC (cargo xtask conformance)"]
async fn samba_refuses_a_ticket_for_another_service() {
    let kdc = kdc();
    let secret = Secret::Password(Zeroizing::new(kdc.password.clone()));
    let tgt = kdc.client.tgt(&kdc.user, &kdc.realm, secret).await.unwrap();
    let epm = epm_addr(&kdc);
    // The TGT names krbtgt/REALM, whose key the RPC server does not hold.
    let options = ClientOptions::with_auth(ClientAuth::Kerberos {
        tickets: Tickets::fixed(tgt),
        level: AuthLevel::PKT_PRIVACY,
    });
    let error = list_endpoints(epm, &options).await.unwrap_err();
    assert!(
        matches!(error, TransportError::BindRejected(_)),
        "not refused at bind: {error:?}"
    );
}

#[tokio::test]
#[ignore = "needs a Samba AD DC (cargo xtask conformance)"]
async fn tickets_from_a_password_are_fetched_on_first_use_and_refusals_are_typed() {
    let kdc = kdc();
    let epm = epm_addr(&kdc);
    let login = |password: &str| TicketSource::Login {
        user: kdc.user.clone(),
        realm: kdc.realm.clone(),
        secret: Secret::Password(Zeroizing::new(password.to_owned())),
    };
    let kdc_at = Some((kdc.host.clone(), 88));
    let tickets = Tickets::new(login(&kdc.password), dc_spn(&kdc), kdc_at.clone());
    let options = ClientOptions::with_auth(ClientAuth::Kerberos {
        tickets: tickets.clone(),
        level: AuthLevel::PKT_PRIVACY,
    });
    let entries = list_endpoints(epm, &options).await.unwrap();
    assert!(!entries.is_empty());
    // The second association presents the same ticket (kept), with a fresh authenticator.
    let first = tickets.service_ticket().await.unwrap();
    list_endpoints(epm, &options).await.unwrap();
    assert_eq!(tickets.service_ticket().await.unwrap(), first);

    let wrong = Tickets::new(login("not the password"), dc_spn(&kdc), kdc_at.clone());
    let options = ClientOptions::with_auth(ClientAuth::Kerberos {
        tickets: wrong,
        level: AuthLevel::PKT_PRIVACY,
    });
    match list_endpoints(epm, &options).await {
        Err(TransportError::Kdc(
            error @ KdcError::Kerberos(KrbError::Kdc {
                code: ErrorCode::KDC_ERR_PREAUTH_FAILED,
                ..
            }),
        )) => assert!(error.is_refusal()),
        other => panic!("a wrong password: {other:?}"),
    }
    let nobody = Tickets::new(
        login(&kdc.password),
        PrincipalName::service("host/nowhere.invalid"),
        kdc_at,
    );
    let options = ClientOptions::with_auth(ClientAuth::Kerberos {
        tickets: nobody,
        level: AuthLevel::PKT_PRIVACY,
    });
    match list_endpoints(epm, &options).await {
        Err(TransportError::Kdc(KdcError::Kerberos(KrbError::Kdc {
            code: ErrorCode::KDC_ERR_S_PRINCIPAL_UNKNOWN,
            ..
        }))) => {}
        other => panic!("an unknown service: {other:?}"),
    }
}

/// NTLM's credentials of the DC's user: the domain is `DSBACKUP_SAMBA_DOMAIN`, else the
/// realm's first label (TEST for TEST.LOCAL).
fn ntlm_credentials(kdc: &Kdc, password: &str) -> dsbackup_ntlm::Credentials {
    let domain = std::env::var("DSBACKUP_SAMBA_DOMAIN")
        .unwrap_or_else(|_| kdc.realm.split('.').next().unwrap_or_default().to_owned());
    dsbackup_ntlm::Credentials::from_password(&kdc.user, &domain, password)
}

/// SPNEGO with both mechanisms against Samba: Kerberos is used when a ticket can be had (a
/// wrong NTLM password beside it does not matter); NTLM when the KDC does not know the
/// service or cannot be reached (a wrong Kerberos SPN or KDC beside a right NTLM password);
/// a KDC refusing the password is a failure, not a reason to try NTLM.
#[tokio::test]
#[ignore = "needs a Samba AD DC (cargo xtask conformance)"]
async fn samba_spnego_uses_kerberos_first_and_falls_back_on_ntlm_only_when_kerberos_is_unavailable()
{
    let kdc = kdc();
    let epm: SocketAddr = (kdc.host.as_str(), 135)
        .to_socket_addrs()
        .unwrap()
        .next()
        .unwrap();
    let anonymous = list_endpoints(epm, &ClientOptions::default())
        .await
        .unwrap();
    let login = |password: &str| TicketSource::Login {
        user: kdc.user.clone(),
        realm: kdc.realm.clone(),
        secret: Secret::Password(Zeroizing::new(password.to_owned())),
    };
    let here = Some((kdc.host.clone(), 88));
    let cases = [
        (
            "Kerberos, a wrong NTLM password beside it",
            Tickets::new(login(&kdc.password), dc_spn(&kdc), here.clone()),
            ntlm_credentials(&kdc, "not the password"),
        ),
        (
            "NTLM, the KDC not knowing the service",
            Tickets::new(
                login(&kdc.password),
                PrincipalName::service("host/nowhere.invalid"),
                here.clone(),
            ),
            ntlm_credentials(&kdc, &kdc.password),
        ),
        (
            "NTLM, no KDC listening",
            Tickets::new(
                login(&kdc.password),
                dc_spn(&kdc),
                Some(("127.0.0.1".to_owned(), 1)),
            ),
            ntlm_credentials(&kdc, &kdc.password),
        ),
    ];
    for (name, tickets, ntlm) in cases {
        for level in [AuthLevel::PKT_INTEGRITY, AuthLevel::PKT_PRIVACY] {
            let options = ClientOptions::with_auth(ClientAuth::Negotiate {
                tickets: Some(tickets.clone()),
                ntlm: Some(ntlm.clone()),
                level,
            });
            let entries = list_endpoints(epm, &options)
                .await
                .unwrap_or_else(|e| panic!("{name} at {level:?}: {e}"));
            assert_eq!(entries, anonymous, "{name} at {level:?}");
        }
    }
    let refused = ClientOptions::with_auth(ClientAuth::Negotiate {
        tickets: Some(Tickets::new(login("not the password"), dc_spn(&kdc), here)),
        ntlm: Some(ntlm_credentials(&kdc, &kdc.password)),
        level: AuthLevel::PKT_PRIVACY,
    });
    match list_endpoints(epm, &refused).await {
        Err(TransportError::Kdc(KdcError::Kerberos(KrbError::Kdc {
            code: ErrorCode::KDC_ERR_PREAUTH_FAILED,
            ..
        }))) => {}
        other => panic!("a wrong Kerberos password: {other:?}"),
    }
}
