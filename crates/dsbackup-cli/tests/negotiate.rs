//! `--auth-type` against `mock-dc` without a keytab (NTLM is all it has): negotiate, the
//! default, falls back on NTLM inside SPNEGO, also when the KDC named is not there; Kerberos
//! required is refused with exit code 5, and a KDC out of reach with 6.

#![cfg(test)]

#[path = "common/mock.rs"]
mod mock;

use std::time::{SystemTime, UNIX_EPOCH};

use dsbackup_krb::{Credential, EncType, Grant, KerberosTime, Key, PrincipalName, encode_ccache};
use mock::{MockDc, PASSWORD, closed_port};

/// A credential cache holding a ticket for `host/127.0.0.1` (what the client asks for
/// `--server 127.0.0.1`), under a key the mock does not have.
fn ccache(path: &std::path::Path) {
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let grant = Grant {
        crealm: "CORP.EXAMPLE".into(),
        client: PrincipalName::user("Administrator"),
        srealm: "CORP.EXAMPLE".into(),
        server: PrincipalName::service("host/127.0.0.1"),
        session_key: Key::new(EncType::AES256_CTS_HMAC_SHA1_96, &[0x61; 32]).unwrap(),
        authtime: KerberosTime(now - 5),
        endtime: KerberosTime(now + 3600),
        flags: 0,
    };
    let key = Key::new(EncType::AES256_CTS_HMAC_SHA1_96, &[0x33; 32]).unwrap();
    let ticket = Credential::issue(grant, &key, Some(1), &[7; 16]);
    let bytes = encode_ccache(
        "CORP.EXAMPLE",
        &PrincipalName::user("Administrator"),
        &[ticket],
    );
    std::fs::write(path, bytes).unwrap();
}

fn online(dc: &MockDc, args: &[&str]) -> (Option<i32>, String) {
    let mut all = vec!["-v"];
    all.extend_from_slice(args);
    let output = dc.run("online", &all, PASSWORD);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn negotiate_falls_back_on_ntlm_and_kerberos_required_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let ntds = tmp.path().join("ntds");
    let dc = MockDc::generated(&ntds, "1MiB", "Administrator", &[]);
    assert_eq!(
        (&dc.root, &dc.started["users"][0]),
        (&ntds, &"Administrator".into())
    );

    // The default: no realm, so NTLM alone inside SPNEGO.
    let (code, log) = online(&dc, &["--user", "Administrator"]);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("chose NTLM inside SPNEGO"), "{log}");
    // A realm and a KDC that is not there: Kerberos is not possible, NTLM it is.
    let kdc = format!("127.0.0.1:{}", closed_port());
    let realm = ["--realm", "CORP.EXAMPLE", "--kdc", &kdc];
    let mut args = vec!["--user", "Administrator"];
    args.extend_from_slice(&realm);
    let (code, log) = online(&dc, &args);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("NTLM inside SPNEGO"), "{log}");
    // Kerberos required: the KDC out of reach is a connection failure.
    args.extend_from_slice(&["--auth-type", "kerberos"]);
    let (code, log) = online(&dc, &args);
    assert_eq!(code, Some(6), "{log}");

    // A ticket from a credential cache, Kerberos required (by itself, or SPNEGO with no
    // user for NTLM): the mock has no keytab, which is an authentication failure.
    let cache = tmp.path().join("ccache");
    ccache(&cache);
    for auth_type in ["kerberos", "negotiate"] {
        let (code, log) = online(
            &dc,
            &[
                "--auth-type",
                auth_type,
                "--ccache",
                cache.to_str().unwrap(),
            ],
        );
        assert_eq!(code, Some(5), "--auth-type {auth_type}: {log}");
    }
}
