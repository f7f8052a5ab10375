//! The KDC's refusals as a user sees them: a wrong password, an unknown service principal,
//! clocks too far apart (each from a KDC on loopback that answers every request with that
//! KRB-ERROR, as Samba's KDC answers them), and a credential cache whose ticket has expired.
//! Each exits 5 (authentication failed) with a message that names the cause and what to check.

#![cfg(test)]

use std::net::UdpSocket;
use std::process::Output;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dsbackup_krb::{Credential, EncType, Grant, KerberosTime, Key, PrincipalName, encode_ccache};
use dsbackup_krb::{ErrorCode, KrbErrorMsg};

#[path = "common/mock.rs"]
#[expect(
    dead_code,
    reason = "the shared helpers include some this file does not need"
)]
mod mock;

use mock::MockDc;

const REALM: &str = "TEST.LOCAL";

fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    i64::try_from(secs).unwrap()
}

/// A KDC on a loopback UDP port answering every request with a KRB-ERROR of `code`; it
/// stops after a few idle seconds.
fn refusing_kdc(code: ErrorCode) -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let port = socket.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok((_, peer)) = socket.recv_from(&mut buf) {
            let answer = KrbErrorMsg {
                stime: KerberosTime(now()),
                code,
                realm: REALM.into(),
                e_text: None,
                e_data: None,
            };
            let _ = socket.send_to(&answer.encode(), peer);
        }
    });
    port
}

/// `dsbackup online` over Kerberos against the mock, with `args` added: its exit code and
/// its message.
fn online(dc: &MockDc, args: &[&str]) -> (Option<i32>, String) {
    let mut all = vec![
        "--auth-type",
        "kerberos",
        "--realm",
        REALM,
        "--spn",
        "host/dc1.test.local",
    ];
    all.extend_from_slice(args);
    let output: Output = dc.run("online", &all, "a password");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn each_refusal_of_the_kdc_exits_5_naming_its_cause() {
    let tmp = tempfile::tempdir().unwrap();
    let dc = MockDc::generated(&tmp.path().join("ntds"), "64KiB", "svc-backup", &[]);
    for (code, says) in [
        (ErrorCode::KDC_ERR_PREAUTH_FAILED, "wrong password"),
        (ErrorCode::KDC_ERR_S_PRINCIPAL_UNKNOWN, "check --spn"),
        (ErrorCode::KRB_AP_ERR_SKEW, "more than 5 minutes apart"),
    ] {
        let kdc = format!("127.0.0.1:{}", refusing_kdc(code));
        let (exit, message) = online(&dc, &["--kdc", &kdc, "--user", "svc-backup"]);
        assert_eq!(exit, Some(5), "{code}: {message}");
        assert!(
            message.contains("the KDC refused the credentials")
                && message.contains(&code.to_string())
                && message.contains(says),
            "{code}: {message}"
        );
    }
}

#[test]
fn an_expired_ticket_in_the_credential_cache_exits_5_asking_for_kinit() {
    let tmp = tempfile::tempdir().unwrap();
    let dc = MockDc::generated(&tmp.path().join("ntds"), "64KiB", "svc-backup", &[]);
    let service_key = Key::new(EncType::AES256_CTS_HMAC_SHA1_96, &[7; 32]).unwrap();
    let grant = |server: PrincipalName| Grant {
        crealm: REALM.into(),
        client: PrincipalName::user("svc-backup"),
        srealm: REALM.into(),
        server,
        session_key: Key::new(EncType::AES256_CTS_HMAC_SHA1_96, &[9; 32]).unwrap(),
        authtime: KerberosTime(now() - 20 * 3600),
        endtime: KerberosTime(now() - 10 * 3600),
        flags: 0,
    };
    let ccache = tmp.path().join("ccache");
    let tickets = [
        Credential::issue(
            grant(PrincipalName::krbtgt(REALM)),
            &service_key,
            Some(1),
            &[1; 16],
        ),
        Credential::issue(
            grant(PrincipalName::service("host/dc1.test.local")),
            &service_key,
            Some(1),
            &[2; 16],
        ),
    ];
    let user = PrincipalName::user("svc-backup");
    std::fs::write(&ccache, encode_ccache(REALM, &user, &tickets)).unwrap();
    let (exit, message) = online(&dc, &["--ccache", ccache.to_str().unwrap()]);
    assert_eq!(exit, Some(5), "{message}");
    assert!(
        message.contains("expired") && message.contains("kinit"),
        "{message}"
    );
}
