//! A whole backup over Kerberos packet privacy: our client against the mock DC accepting
//! Kerberos from a keytab (the test issues the ticket under the keytab's key, as a KDC would),
//! the caller's privileges looked up for the ticket's principal, and the refusals a user sees
//! as an authentication failure.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dsbackup_client::{
    AuthLevel, BackupOptions, Client, ClientConfig, Credentials, Endpoint, Error, NoProgress,
    Status, Tickets, backup_to_dir, verify_dir,
};
use dsbackup_krb::{
    Credential, EncType, Grant, KerberosTime, Key, KeytabEntry, PrincipalName, ServiceKeys,
    encode_keytab, parse_keytab,
};
use dsbackup_mock::serve::ServeOptions;

use crate::common::{BACKUP_USER, Dc, NOBODY, small_spec};

const REALM: &str = "CORP.EXAMPLE";
const SPN: &str = "host/dc1.corp.example";

fn service_key() -> Key {
    Key::from_password(
        EncType::AES256_CTS_HMAC_SHA1_96,
        "DC1$ machine password",
        b"CORP.EXAMPLEhostdc1.corp.example",
        None,
    )
    .unwrap()
}

/// The mock with Kerberos from a keytab file's bytes, as `mock-dc --keytab` reads it.
async fn kerberos_dc() -> Dc {
    let keytab = encode_keytab(&[KeytabEntry {
        realm: REALM.into(),
        principal: PrincipalName::service(SPN),
        kvno: 1,
        key: service_key(),
    }]);
    let keys = ServiceKeys::new(parse_keytab(&keytab).unwrap(), Some(SPN));
    let mut options = ServeOptions::loopback();
    options.kerberos = Some(dsbackup_krb::AcceptorConfig::new(keys));
    Dc::start_served(&small_spec(), AuthLevel::PKT_INTEGRITY, |b| b, &options).await
}

/// A ticket for `user@REALM` to `server`, under `key`, as the KDC would issue it.
fn ticket(user: &str, server: &str, key: &Key) -> Credential {
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let grant = Grant {
        crealm: REALM.into(),
        client: PrincipalName::user(user),
        srealm: REALM.into(),
        server: PrincipalName::service(server),
        session_key: Key::new(EncType::AES256_CTS_HMAC_SHA1_96, &[0x61; 32]).unwrap(),
        authtime: KerberosTime(now - 5),
        endtime: KerberosTime(now + 10 * 3600),
        flags: 0,
    };
    Credential::issue(grant, key, Some(1), &[7; 16])
}

fn client(dc: &Dc, ticket: Credential) -> Client {
    let mut config = ClientConfig::new("127.0.0.1")
        .auth_level(AuthLevel::PKT_PRIVACY)
        .endpoint(Endpoint::Mapper {
            port: dc.server.local_addr().port(),
        })
        .kerberos(Tickets::fixed(ticket));
    config.call_timeout = Duration::from_secs(20);
    Client::new(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_backup_over_kerberos_privacy_verifies() {
    let dc = kerberos_dc().await;
    let client = client(&dc, ticket(BACKUP_USER, SPN, &service_key()));
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("set");
    let summary = backup_to_dir(&client, &out, &BackupOptions::default(), &mut NoProgress)
        .await
        .unwrap();
    assert_eq!(summary.end_error, None);
    assert_eq!(summary.manifest.files.len(), 4);
    assert!(verify_dir(&out, &mut NoProgress).unwrap().is_ok());
    for entry in &summary.manifest.files {
        assert_eq!(entry.sha256, dc.sha256(entry.server_name()), "{entry:?}");
    }
}

#[tokio::test]
async fn a_kerberos_caller_has_the_privileges_of_its_principal() {
    let dc = kerberos_dc().await;
    let nobody = client(&dc, ticket(NOBODY, SPN, &service_key()));
    let tmp = tempfile::tempdir().unwrap();
    let error = backup_to_dir(
        &nobody,
        &tmp.path().join("set"),
        &BackupOptions::default(),
        &mut NoProgress,
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.status(),
        Some(Status::ERROR_ACCESS_DENIED),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_ticket_for_another_service_is_an_authentication_failure() {
    let dc = kerberos_dc().await;
    let other = Key::new(EncType::AES256_CTS_HMAC_SHA1_96, &[1; 32]).unwrap();
    let client = client(&dc, ticket(BACKUP_USER, "host/dc2.corp.example", &other));
    let error = client.is_ntds_online().await.unwrap_err();
    assert!(error.is_auth_failure(), "{error:?}");
    assert!(matches!(error, Error::Authentication { .. }));
}

/// A client binding with SPNEGO (negotiate): Kerberos with `ticket` first, NTLM with
/// `password` after it.
fn negotiate(dc: &Dc, ticket: Credential, password: Option<&str>) -> Client {
    let mut config = ClientConfig::new("127.0.0.1")
        .auth_level(AuthLevel::PKT_PRIVACY)
        .endpoint(Endpoint::Mapper {
            port: dc.server.local_addr().port(),
        })
        .kerberos(Tickets::fixed(ticket))
        .spnego(true);
    config.credentials =
        password.map(|password| Credentials::from_password(BACKUP_USER, "CORP", password));
    config.call_timeout = Duration::from_secs(20);
    Client::new(config).unwrap()
}

/// Negotiate against a mock without a keytab: the mock chooses NTLM (the Kerberos ticket
/// offered first is of no use to it) and the whole backup verifies; against a mock with the
/// keytab, Kerberos is used (a wrong NTLM password beside it does not matter).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negotiate_falls_back_on_ntlm_without_a_keytab_and_uses_kerberos_with_one() {
    let dc = Dc::start().await;
    let client = negotiate(
        &dc,
        ticket(BACKUP_USER, SPN, &service_key()),
        Some(crate::common::PASSWORD),
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("set");
    let summary = backup_to_dir(&client, &out, &BackupOptions::default(), &mut NoProgress)
        .await
        .unwrap();
    assert_eq!(summary.end_error, None);
    assert!(verify_dir(&out, &mut NoProgress).unwrap().is_ok());
    for entry in &summary.manifest.files {
        assert_eq!(entry.sha256, dc.sha256(entry.server_name()), "{entry:?}");
    }

    let dc = kerberos_dc().await;
    let client = negotiate(
        &dc,
        ticket(BACKUP_USER, SPN, &service_key()),
        Some("not the password"),
    );
    assert!(client.is_ntds_online().await.unwrap());
}

/// Kerberos required (auth type 16, or SPNEGO offering Kerberos alone) against a mock that
/// only has NTLM: an authentication failure, never NTLM.
#[tokio::test]
async fn kerberos_required_is_refused_by_a_mock_without_a_keytab() {
    let dc = Dc::start().await;
    for spnego in [false, true] {
        let mut config = ClientConfig::new("127.0.0.1")
            .auth_level(AuthLevel::PKT_PRIVACY)
            .endpoint(Endpoint::Mapper {
                port: dc.server.local_addr().port(),
            })
            .kerberos(Tickets::fixed(ticket(BACKUP_USER, SPN, &service_key())))
            .spnego(spnego);
        config.call_timeout = Duration::from_secs(20);
        let client = Client::new(config).unwrap();
        let error = client.is_ntds_online().await.unwrap_err();
        assert!(
            matches!(error, Error::Authentication { .. }),
            "SPNEGO {spnego}: {error:?}"
        );
    }
}

/// A variable the Samba tests need; a missing one fails the test once it is asked for.
fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: this test needs a Samba AD DC (cargo xtask conformance)")
    })
}

/// Tickets issued by a real KDC (the Samba AD DC `cargo xtask conformance` starts) for an SPN
/// registered on a service account whose keytab the mock serves with
/// (`DSBACKUP_SAMBA_SERVICE_KEYTAB`, `DSBACKUP_SAMBA_SERVICE_SPN`): a whole backup at packet
/// privacy, and a wrong password refused by the KDC as an authentication failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Samba AD DC (cargo xtask conformance)"]
async fn samba_kdc_tickets_back_up_the_mock_over_kerberos_privacy() {
    use dsbackup_client::{KdcError, TicketSource, TransportError};
    use dsbackup_krb::Secret;

    let host = required("DSBACKUP_SAMBA_HOST");
    let realm = required("DSBACKUP_SAMBA_REALM");
    let user = required("DSBACKUP_SAMBA_USER");
    let password = required("DSBACKUP_SAMBA_PASSWORD");
    let spn = required("DSBACKUP_SAMBA_SERVICE_SPN");
    let keytab = std::fs::read(required("DSBACKUP_SAMBA_SERVICE_KEYTAB")).unwrap();
    let keys = ServiceKeys::new(parse_keytab(&keytab).unwrap(), Some(&spn));
    let mut options = ServeOptions::loopback();
    options.kerberos = Some(dsbackup_krb::AcceptorConfig::new(keys));
    let dc = Dc::start_served(
        &small_spec(),
        AuthLevel::PKT_PRIVACY,
        |b| {
            // The DC's Administrator is already one of the mock's users.
            if user.eq_ignore_ascii_case(crate::common::RESTORE_USER) {
                b
            } else {
                b.user(
                    &user,
                    "not used by Kerberos",
                    dsbackup_mock::Privileges::BACKUP,
                )
            }
        },
        &options,
    )
    .await;
    let tickets = |password: &str| {
        Tickets::new(
            TicketSource::Login {
                user: user.clone(),
                realm: realm.clone(),
                secret: Secret::Password(password.to_owned().into()),
            },
            PrincipalName::service(&spn),
            Some((host.clone(), 88)),
        )
    };
    let config = |tickets| {
        let mut config = ClientConfig::new("127.0.0.1")
            .endpoint(Endpoint::Mapper {
                port: dc.server.local_addr().port(),
            })
            .kerberos(tickets);
        config.call_timeout = Duration::from_secs(20);
        Client::new(config).unwrap()
    };
    let client = config(tickets(&password));
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("set");
    let summary = backup_to_dir(&client, &out, &BackupOptions::default(), &mut NoProgress)
        .await
        .unwrap();
    assert_eq!(summary.manifest.files.len(), 4);
    assert!(verify_dir(&out, &mut NoProgress).unwrap().is_ok());

    let wrong = config(tickets("not the password"));
    let error = wrong.is_ntds_online().await.unwrap_err();
    assert!(error.is_auth_failure(), "{error:?}");
    assert!(
        matches!(
            &error,
            Error::Authentication {
                source: TransportError::Kdc(KdcError::Kerberos(_)),
                ..
            }
        ),
        "{error:?}"
    );
}
