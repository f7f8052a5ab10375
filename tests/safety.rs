//! A hostile ad_restore through the public API: whatever locations it names, files land only
//! beneath the operator's mapped directory, never through a link, never over an existing file
//! unasked; nothing is registered when a target is refused.

use std::path::Path;

use bytes::Bytes;
use dsbackup_client::{
    AuthLevel, BackupOptions, Client, ClientConfig, Endpoint, Error, NoProgress, PathMap,
    RestoreOptions, backup_to_dir, plan_restore_from_dir, restore_from_dir, verify_dir,
};
use dsbackup_mock::scripted::{Script, ScriptedDc};
use dsbackup_proto::{BftKind, ExpiryToken, NameEntry};

use crate::common::{BACKUP_USER, Dc, assert_no_bindings, files_under};

async fn hostile(locations: Vec<NameEntry>) -> (ScriptedDc, Client) {
    let server = ScriptedDc::start(Script {
        locations,
        ..Script::default()
    })
    .await
    .unwrap();
    let client = client_of(&server);
    (server, client)
}

fn client_of(server: &ScriptedDc) -> Client {
    let mut config = ClientConfig::new("127.0.0.1")
        .auth_level(AuthLevel::NONE)
        .endpoint(Endpoint::Port(server.local_addr().port()));
    config.read_size = Some(24 * 1024);
    Client::new(config).unwrap()
}

/// Every file under `dir` with its contents, links not followed.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = files_under(dir)
        .into_iter()
        .map(|path| {
            let bytes = if std::fs::symlink_metadata(&path).unwrap().is_file() {
                std::fs::read(&path).unwrap()
            } else {
                Vec::new()
            };
            (path.display().to_string(), bytes)
        })
        .collect();
    out.sort();
    out
}

fn locations(database: &str, dir: &str) -> Vec<NameEntry> {
    vec![
        NameEntry::new(BftKind::NTDS_DATABASE, database),
        NameEntry::new(BftKind::LOG_DIR, dir),
        NameEntry::new(BftKind::CHECKPOINT_DIR, dir),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_locations_write_nothing_outside_the_mapped_directory() {
    let dc = Dc::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let set = tmp.path().join("set");
    backup_to_dir(
        &dc.client(BACKUP_USER),
        &set,
        &BackupOptions::default(),
        &mut NoProgress,
    )
    .await
    .unwrap();
    let mapped = tmp.path().join("mapped");
    let victim = tmp.path().join("victim");
    std::fs::create_dir_all(mapped.join("NTDS")).unwrap();
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("ntds.dit"), b"the live database").unwrap();
    std::fs::write(mapped.join("NTDS/ntds.dit"), b"the DC's database").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&victim, mapped.join("linked")).unwrap();
    let victim_path = victim.join("ntds.dit").display().to_string();
    let victim_dir = victim.display().to_string();
    let cases: Vec<(&str, Vec<NameEntry>, &str)> = vec![
        (
            "absolute",
            locations(&victim_path, &victim_dir),
            "no --map rule covers it",
        ),
        (
            "dot-dot",
            locations(
                r"\\DC1\C$\NTDS\..\..\victim\ntds.dit",
                r"\\DC1\C$\NTDS\..\..\victim",
            ),
            "leaves the mapped directory",
        ),
        #[cfg(unix)]
        (
            "symlinked",
            locations(r"\\DC1\C$\linked\ntds.dit", r"\\DC1\C$\linked"),
            "symbolic link",
        ),
        (
            "existing",
            locations(r"\\DC1\C$\NTDS\ntds.dit", r"\\DC1\C$\NTDS"),
            "--overwrite",
        ),
    ];
    let before = snapshot(tmp.path());
    for (case, entries, says) in cases {
        let (server, client) = hostile(entries).await;
        let options = RestoreOptions::new(PathMap::new().with_rule(r"\\DC1\C$", &mapped));
        let planned = plan_restore_from_dir(&client, &set, &options).await;
        let restored = restore_from_dir(&client, &set, &options, &mut NoProgress).await;
        for error in [planned.unwrap_err(), restored.unwrap_err()] {
            assert!(matches!(error, Error::Target { .. }), "{case}: {error:?}");
            assert!(error.to_string().contains(says), "{case}: {error}");
        }
        assert_eq!(server.seen().registers, 0, "{case}");
        assert_eq!(snapshot(tmp.path()), before, "{case}: something changed");
        assert_no_bindings(&client);
        server.shutdown().await;
    }
}

fn token() -> Bytes {
    Bytes::copy_from_slice(
        &ExpiryToken {
            tombstone_lifetime_days: 180,
            backup_time: 0,
        }
        .encode(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_server_names_are_stored_under_short_names_and_kept_in_the_manifest() {
    let database = format!(r"\\DC1\C$\NTDS\{}.dit", "n".repeat(300));
    let log = format!(r"\\DC1\C$\NTDS\{}.log", "é".repeat(150));
    let server = ScriptedDc::start(Script {
        token: token(),
        databases: vec![(
            NameEntry::new(BftKind::NTDS_DATABASE, database.as_str()),
            Bytes::from_static(b"database"),
        )],
        logs: vec![(
            NameEntry::new(BftKind::LOG, log.as_str()),
            Bytes::from_static(b"log"),
        )],
        ..Script::default()
    })
    .await
    .unwrap();
    let client = client_of(&server);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("set");
    let summary = backup_to_dir(&client, &out, &BackupOptions::default(), &mut NoProgress)
        .await
        .unwrap();
    let files = &summary.manifest.files;
    assert_eq!(files[0].unc, database);
    assert_eq!(files[1].unc, log);
    for file in files {
        let name = file.path.rsplit('/').next().unwrap();
        assert!(name.len() <= 64 && name.contains('~'), "{name}");
    }
    assert!(verify_dir(&out, &mut NoProgress).unwrap().is_ok());
    assert_eq!(server.seen().backup_ends, 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_another_format_is_refused_before_anything_is_written() {
    for lie in [
        Bytes::from(vec![1_u8; 1 << 20]),
        token().slice(..15),
        Bytes::new(),
    ] {
        let len = lie.len();
        let server = ScriptedDc::start(Script {
            token: lie,
            databases: vec![(
                NameEntry::new(BftKind::NTDS_DATABASE, r"\\DC1\C$\ntds.dit"),
                Bytes::from_static(b"database"),
            )],
            ..Script::default()
        })
        .await
        .unwrap();
        let client = client_of(&server);
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("set");
        let error = backup_to_dir(&client, &out, &BackupOptions::default(), &mut NoProgress)
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                Error::Protocol {
                    call: "HrRBackupPrepare",
                    ..
                }
            ),
            "{len}: {error:?}"
        );
        assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none());
        // The session the server opened is ended all the same.
        assert_eq!(server.seen().backup_ends, 1, "{len}");
        assert_no_bindings(&client);
        server.shutdown().await;
    }
}
