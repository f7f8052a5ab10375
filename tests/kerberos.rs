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

/// The mock DC serving the keytab of the service account the SPN is on
/// (`DSBACKUP_SAMBA_SERVICE_KEYTAB`, `DSBACKUP_SAMBA_SERVICE_SPN`), the DC's `user` one of its
/// users with backup privileges, packet integrity the least level it takes.
async fn samba_service_dc(user: &str) -> Dc {
    let spn = required("DSBACKUP_SAMBA_SERVICE_SPN");
    let keytab = std::fs::read(required("DSBACKUP_SAMBA_SERVICE_KEYTAB")).unwrap();
    let keys = ServiceKeys::new(parse_keytab(&keytab).unwrap(), Some(&spn));
    let mut options = ServeOptions::loopback();
    options.kerberos = Some(dsbackup_krb::AcceptorConfig::new(keys));
    Dc::start_served(
        &small_spec(),
        AuthLevel::PKT_INTEGRITY,
        |b| {
            // The DC's Administrator is already one of the mock's users.
            if user.eq_ignore_ascii_case(crate::common::RESTORE_USER) {
                b
            } else {
                b.user(
                    user,
                    "not used by Kerberos",
                    dsbackup_mock::Privileges::BACKUP,
                )
            }
        },
        &options,
    )
    .await
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
    let dc = samba_service_dc(&user).await;
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

/// A service ticket for `spn` from the DC's KDC (the AS exchange with the password, then the
/// TGS exchange offering `etypes` for the session key), written as a credential cache, what
/// `kinit` and `kvno` would leave.
async fn samba_ccache(path: &std::path::Path, spn: &str, etypes: &[EncType]) {
    use dsbackup_krb::{Secret, encode_ccache};
    use dsbackup_transport::KdcClient;

    let host = required("DSBACKUP_SAMBA_HOST");
    let realm = required("DSBACKUP_SAMBA_REALM");
    let user = required("DSBACKUP_SAMBA_USER");
    let password = required("DSBACKUP_SAMBA_PASSWORD");
    let kdc = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), 88))
        .unwrap()
        .next()
        .unwrap();
    let kdc = KdcClient::new(kdc);
    let tgt = kdc
        .tgt(&user, &realm, Secret::Password(password.into()))
        .await
        .unwrap();
    let ticket = kdc
        .service_ticket_with_etypes(&tgt, &PrincipalName::service(spn), etypes)
        .await
        .unwrap();
    assert_eq!(Some(&ticket.session_key.etype()), etypes.first());
    let ccache = encode_ccache(&realm, &PrincipalName::user(&user), &[ticket]);
    std::fs::write(path, ccache).unwrap();
}

/// impacket's client with Kerberos (`-k`, through SPNEGO as impacket binds it) against the
/// mock serving the service account's keytab, at packet integrity and privacy, with an aes256
/// and with an rc4-hmac session key: its endpoint
/// mapper resolves ad_backup, HrRBackupPrepare opens a backup session, HrRIsNTDSOnline says
/// online. impacket's own TGS-REQ carries no checksum of the request body in its
/// authenticator, which Samba's KDC (Heimdal) refuses with `KRB_AP_ERR_INAPP_CKSUM`, so the
/// service ticket comes from our KDC client, in a credential cache (as `kinit` and `kvno`
/// would leave it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Samba AD DC and impacket (cargo xtask conformance)"]
async fn samba_kdc_tickets_let_impacket_call_the_mock_over_kerberos() {
    let realm = required("DSBACKUP_SAMBA_REALM");
    let user = required("DSBACKUP_SAMBA_USER");
    let spn = required("DSBACKUP_SAMBA_SERVICE_SPN");
    let host_name = spn
        .strip_prefix("host/")
        .expect("the service SPN is host/NAME")
        .to_owned();
    let dc = samba_service_dc(&user).await;
    let port = dc.server.local_addr().port();
    let tmp = tempfile::tempdir().unwrap();
    let ccache = tmp.path().join("ccache");

    // HrRBackupPrepare(grbit 0, btFlag 1, "NTDS Backup Interface", 4242), by hand in NDR.
    let mut prepare = vec![0, 0, 0, 0, 1, 0, 0, 0];
    let name: Vec<u16> = "NTDS Backup Interface\0".encode_utf16().collect();
    let count = u32::try_from(name.len()).unwrap();
    for word in [count, 0, count] {
        prepare.extend_from_slice(&word.to_le_bytes());
    }
    for unit in name {
        prepare.extend_from_slice(&unit.to_le_bytes());
    }
    prepare.resize(prepare.len().next_multiple_of(4), 0);
    prepare.extend_from_slice(&4242u32.to_le_bytes());
    let prepare_hex = hex::encode(&prepare);

    // The session key the KDC picks (aes256), then an rc4-hmac one (RFC 4757's tokens).
    for (etypes, level) in [
        (&EncType::SUPPORTED[..], "integrity"),
        (&EncType::SUPPORTED[..], "privacy"),
        (&[EncType::RC4_HMAC][..], "integrity"),
        (&[EncType::RC4_HMAC][..], "privacy"),
    ] {
        samba_ccache(&ccache, &spn, etypes).await;
        let name = format!("{level}, {:?}", etypes[0]);
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scripts/peers/impacket_client.py");
        let python = std::env::var("DSBACKUP_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        // impacket's RC4 wrap fills the stub up to 8 bytes and sends the filler as stub (its
        // `auth_pad_length` counts only the 4-byte alignment), bytes our NDR decoder refuses
        // after the last parameter (`rpc_x_bad_stub_data`): at rc4-hmac privacy, only the call
        // whose stub is empty.
        let all = !(level == "privacy" && etypes[0] == EncType::RC4_HMAC);
        let mut args = vec![
            "--port".to_owned(),
            port.to_string(),
            "--kerberos".to_owned(),
            host_name.clone(),
            "--user".to_owned(),
            user.clone(),
            "--domain".to_owned(),
            realm.clone(),
            "--level".to_owned(),
            level.to_owned(),
        ];
        if all {
            args.extend([
                "--ept-map".to_owned(),
                "ecec0d70-a603-11d0-96b1-00a0c91ece30:1.0".to_owned(),
                "--call".to_owned(),
                format!("ecec0d70-a603-11d0-96b1-00a0c91ece30:1.0:0:{prepare_hex}"),
            ]);
        }
        args.extend([
            "--call".to_owned(),
            "16e0cf3a-a604-11d0-96b1-00a0c91ece30:1.0:0:".to_owned(),
        ]);
        let ccache = ccache.clone();
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new(&python)
                .arg(&script)
                .args(&args)
                .env("KRB5CCNAME", &ccache)
                .output()
                .unwrap_or_else(|e| panic!("cannot run {python} {}: {e}", script.display()))
        })
        .await
        .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "impacket_client.py printed no JSON ({e}): {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        });
        assert_eq!(value["auth"], "kerberos", "{value}");
        let results = value["results"].as_array().unwrap();
        assert_eq!(results.len(), if all { 3 } else { 1 }, "{value}");
        for result in results {
            assert_eq!(result["ok"], true, "{name}: {result}");
        }
        if all {
            assert_eq!(results[0]["port"], u64::from(port), "{name}: {value}");
            // The context handle (20 bytes), then the expiry token, then status 0.
            let prepared = results[1]["response"].as_str().unwrap();
            assert!(prepared.ends_with("00000000"), "{name}: {prepared}");
            assert_ne!(&prepared[8..40], "0".repeat(32), "{name}: a null handle");
        }
        // pfOnline TRUE, status 0.
        assert_eq!(
            results.last().unwrap()["response"],
            "0100000000000000",
            "{name}: {value}"
        );
    }
}
