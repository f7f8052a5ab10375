//! Keytabs and credential caches written by other implementations (fixtures/krb, see
//! fixtures/PROVENANCE.md).

use dsbackup_krb::{EncType, Key, parse_ccache, parse_keytab};

const KEYTAB: &[u8] = include_bytes!("../../../fixtures/krb/samba-administrator.keytab");
const CCACHE: &[u8] = include_bytes!("../../../fixtures/krb/mit-kinit-administrator.ccache");

#[test]
fn samba_keytab_holds_the_keys_our_string_to_key_derives() {
    let entries = parse_keytab(KEYTAB).unwrap();
    let etypes: Vec<EncType> = entries.iter().map(|e| e.key.etype()).collect();
    assert_eq!(
        etypes,
        [
            EncType::AES256_CTS_HMAC_SHA1_96,
            EncType::AES128_CTS_HMAC_SHA1_96,
            EncType::RC4_HMAC
        ]
    );
    for entry in &entries {
        assert_eq!(entry.realm, "TEST.LOCAL");
        assert_eq!(entry.principal.components, ["Administrator"]);
        assert_eq!(entry.kvno, 1);
        // Heimdal's keys for the password, salted with realm and name: ours must be the same.
        let ours = Key::from_password(
            entry.key.etype(),
            "Passw0rd!123",
            b"TEST.LOCALAdministrator",
            None,
        )
        .unwrap();
        assert_eq!(ours, entry.key, "{}", entry.key.etype());
    }
}

#[test]
fn mit_ccache_gives_the_default_principal_and_its_tgt() {
    let cache = parse_ccache(CCACHE).unwrap();
    assert_eq!(cache.realm, "TEST.LOCAL");
    assert_eq!(cache.principal.components, ["Administrator"]);
    let tgt = cache
        .credentials
        .iter()
        .find(|c| c.server.components == ["krbtgt", "TEST.LOCAL"])
        .expect("the TGT");
    assert_eq!(tgt.ticket.sname.components, ["krbtgt", "TEST.LOCAL"]);
    assert_eq!(tgt.session_key.etype(), EncType::AES256_CTS_HMAC_SHA1_96);
    assert!(tgt.endtime > tgt.authtime);
    let krbtgt = dsbackup_krb::PrincipalName::krbtgt("TEST.LOCAL");
    assert_eq!(cache.find(&krbtgt, "test.local", tgt.authtime), Some(tgt));
    assert_eq!(
        cache.find(&krbtgt, "TEST.LOCAL", tgt.endtime),
        None,
        "expired"
    );
}

#[test]
fn truncated_files_never_yield_the_whole_set() {
    let keys = parse_keytab(KEYTAB).unwrap().len();
    for len in 0..KEYTAB.len() {
        // Cut inside an entry: an error; cut between entries: fewer entries. Never a panic.
        if let Ok(entries) = parse_keytab(&KEYTAB[..len]) {
            assert!(entries.len() < keys, "cut at {len}");
        }
    }
    let creds = parse_ccache(CCACHE).unwrap().credentials.len();
    for len in 0..CCACHE.len() {
        if let Ok(cache) = parse_ccache(&CCACHE[..len]) {
            assert!(cache.credentials.len() < creds, "cut at {len}");
        }
    }
    assert!(parse_keytab(b"\x05\x01").is_err());
    assert!(parse_ccache(b"\x05\x02").is_err());
}

#[test]
fn a_ccache_we_write_reads_back_whole() {
    let cache = parse_ccache(CCACHE).unwrap();
    let written = dsbackup_krb::encode_ccache(&cache.realm, &cache.principal, &cache.credentials);
    let again = parse_ccache(&written).unwrap();
    assert_eq!(again.realm, cache.realm);
    assert_eq!(again.principal, cache.principal);
    assert_eq!(again.credentials, cache.credentials);
    assert!(!again.credentials.is_empty());
}
