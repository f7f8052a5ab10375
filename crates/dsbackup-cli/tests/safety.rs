//! The binary under signals and umasks: an interrupted backup ends its session with the
//! server and leaves nothing; a set is private whatever the umask.

#![cfg(test)]
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use dsbackup_client::AuthLevel;
use dsbackup_mock::scripted::{Script, ScriptedDc};
use dsbackup_mock::serve::{MockServer, ServeOptions};
use dsbackup_mock::{MockConfig, MockDc, Privileges, SampleSpec};
use dsbackup_proto::iface::Interface;
use dsbackup_proto::{BftKind, ExpiryToken, NameEntry};

const PASSWORD: &str = "Passw0rd!";

fn dsbackup() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dsbackup"));
    command
        .env_remove("DSBACKUP_PASSWORD")
        .env_remove("DSBACKUP_NT_HASH")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    command
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

/// Waits (bounded: a hang guard, not a timing check) until `done`.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..6000 {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("never happened: {what}");
}

#[test]
fn each_signal_ends_the_session_removes_the_partial_set_and_exits_128_plus_n() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ntds");
    std::fs::create_dir(&root).unwrap();
    let spec = SampleSpec {
        database_size: 32 << 20,
        log_count: 2,
        log_size: 64 * 1024,
        ..SampleSpec::default()
    };
    dsbackup_mock::generate_sample_set(&root, &spec).unwrap();
    let config = MockConfig::builder("DC1", &root)
        .domain("CORP")
        .user("svc-backup", PASSWORD, Privileges::BACKUP)
        .state_dir(tmp.path().join("state"))
        .min_auth_level(AuthLevel::PKT_INTEGRITY)
        .build();
    let server = runtime
        .block_on(MockServer::start(
            MockDc::new(config).unwrap(),
            &ServeOptions::loopback(),
        ))
        .unwrap();
    // Slow reads, so that the signal comes mid-transfer.
    server
        .dc()
        .faults()
        .delay(Interface::AdBackup, 4, Duration::from_millis(20));
    let port = server.local_addr().port().to_string();
    for (signal, code) in [("INT", 130), ("TERM", 143), ("HUP", 129)] {
        let ended_before = server.dc().backups_ended();
        let out = tmp.path().join(format!("set-{signal}"));
        let partial = tmp.path().join(format!("set-{signal}.partial"));
        let child = dsbackup()
            .args(["backup", "--server", "127.0.0.1", "--epm-port", &port])
            .args(["--user", r"CORP\svc-backup", "--read-size", "65536"])
            .arg("--out")
            .arg(&out)
            .env("DSBACKUP_PASSWORD", PASSWORD)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let tmp_file = partial.join("ntds/.ntds.dit.tmp");
        wait_until("the backup writes the database", || {
            std::fs::metadata(&tmp_file).is_ok_and(|m| m.len() > 0)
        });
        let killed = Command::new("kill")
            .args(["-s", signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "SIG{signal}: {stderr}");
        assert!(
            stderr.contains(&format!("interrupted by SIG{signal}")),
            "{stderr}"
        );
        assert!(stderr.contains("0 bindings left open"), "{stderr}");
        assert!(!partial.exists(), "SIG{signal} left {}", partial.display());
        assert!(!out.exists());
        assert_eq!(server.dc().backups_ended(), ended_before + 1, "SIG{signal}");
        assert_eq!(server.dc().active_backup(), None);
        wait_until("the server sees every association go", || {
            server.snapshot().associations == 0
        });
    }
    runtime.block_on(server.shutdown());
}

#[test]
fn a_set_is_private_under_any_umask() {
    for umask in ["022", "000"] {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("set");
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_dsbackup"))
            .args(["demo", "--size", "1MiB", "--keep"])
            .arg(&out)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "umask {umask}");
        assert_eq!(mode(&out), 0o700, "umask {umask}");
        for file in files_under(&out) {
            assert_eq!(mode(&file), 0o600, "umask {umask}: {}", file.display());
        }
        for dir in ["ntds", "logs"] {
            assert_eq!(mode(&out.join(dir)), 0o700, "umask {umask}: {dir}");
        }
        // verify warns once the modes are wider.
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o755)).unwrap();
        let verify = dsbackup().arg("verify").arg(&out).output().unwrap();
        assert!(verify.status.success());
        let stderr = String::from_utf8_lossy(&verify.stderr);
        assert!(
            stderr.contains("warning") && stderr.contains("0755"),
            "{stderr}"
        );
    }
}

/// `dsbackup COMMAND --server 127.0.0.1 --port PORT --auth none ARGS` against a scripted DC.
fn against(server: &ScriptedDc, command: &str, args: &[&str]) -> std::process::Output {
    dsbackup()
        .arg(command)
        .args(["--server", "127.0.0.1", "--auth", "none", "--port"])
        .arg(server.local_addr().port().to_string())
        .args(args)
        .output()
        .unwrap()
}

fn good_token() -> Bytes {
    Bytes::copy_from_slice(
        &ExpiryToken {
            tombstone_lifetime_days: 180,
            backup_time: 0,
        }
        .encode(),
    )
}

/// Every file under `dir` with its contents, links not followed.
fn snapshot(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    files_under(dir)
        .into_iter()
        .map(|path| {
            let bytes = if std::fs::symlink_metadata(&path).unwrap().is_file() {
                std::fs::read(&path).unwrap()
            } else {
                Vec::new()
            };
            (path, bytes)
        })
        .collect()
}

#[test]
fn hostile_servers_through_the_binary() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let long = format!(r"\\DC1\C$\NTDS\{}.dit", "n".repeat(300));
    let files = |token: Bytes| Script {
        token,
        databases: vec![(
            NameEntry::new(BftKind::NTDS_DATABASE, long.as_str()),
            Bytes::from_static(b"database"),
        )],
        logs: vec![(
            NameEntry::new(BftKind::LOG, r"\\DC1\C$\NTDS\edb00001.log"),
            Bytes::from_static(b"log"),
        )],
        ..Script::default()
    };

    // A token of another format: refused (exit 6, the server broke the protocol), nothing
    // written.
    let liar = runtime
        .block_on(ScriptedDc::start(files(Bytes::from(vec![1; 1 << 20]))))
        .unwrap();
    let out = tmp.path().join("lied");
    let backup = against(&liar, "backup", &["--out", out.to_str().unwrap()]);
    assert_eq!(backup.status.code(), Some(6), "{}", text(&backup.stderr));
    assert!(
        text(&backup.stderr).contains("expiry token"),
        "{}",
        text(&backup.stderr)
    );
    assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none());
    runtime.block_on(liar.shutdown());

    // A 300-byte name: stored under a short one, the UNC kept in the manifest.
    let set = tmp.path().join("set");
    let honest = runtime
        .block_on(ScriptedDc::start(files(good_token())))
        .unwrap();
    let backup = against(&honest, "backup", &["--out", set.to_str().unwrap()]);
    assert!(backup.status.success(), "{}", text(&backup.stderr));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(set.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["files"][0]["unc"], long.as_str());
    assert!(manifest["files"][0]["path"].as_str().unwrap().len() < 80);
    runtime.block_on(honest.shutdown());

    // Locations that leave the mapped directory: exit 7, nothing changed anywhere.
    let mapped = tmp.path().join("mapped");
    let victim = tmp.path().join("victim");
    std::fs::create_dir_all(&mapped).unwrap();
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("ntds.dit"), b"the live database").unwrap();
    let map = format!(r"\\DC1\C$={}", mapped.display());
    let absolute = victim.display().to_string();
    for (database, dir, says) in [
        (
            format!("{absolute}/ntds.dit"),
            absolute.clone(),
            "no --map rule covers it",
        ),
        (
            r"\\DC1\C$\..\victim\ntds.dit".to_owned(),
            r"\\DC1\C$\..\victim".to_owned(),
            "leaves the mapped directory",
        ),
    ] {
        let before = snapshot(tmp.path());
        let server = runtime
            .block_on(ScriptedDc::start(Script {
                locations: vec![
                    NameEntry::new(BftKind::NTDS_DATABASE, database.as_str()),
                    NameEntry::new(BftKind::LOG_DIR, dir.as_str()),
                    NameEntry::new(BftKind::CHECKPOINT_DIR, dir.as_str()),
                ],
                ..Script::default()
            }))
            .unwrap();
        for extra in [&[][..], &["--dry-run"][..], &["--overwrite"][..]] {
            let restore = against(
                &server,
                "restore",
                &[&["--from", set.to_str().unwrap(), "--map", &map][..], extra].concat(),
            );
            let stderr = text(&restore.stderr);
            assert_eq!(
                restore.status.code(),
                Some(7),
                "{database} {extra:?}: {stderr}"
            );
            assert!(stderr.contains(says), "{stderr}");
        }
        assert_eq!(server.seen().registers, 0);
        assert_eq!(
            snapshot(tmp.path()),
            before,
            "{database}: something changed"
        );
        runtime.block_on(server.shutdown());
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn domain_backslash_user_and_user_at_domain_are_the_same_account() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ntds");
    std::fs::create_dir(&root).unwrap();
    dsbackup_mock::generate_sample_set(&root, &SampleSpec::default()).unwrap();
    let config = MockConfig::builder("DC1", &root)
        .domain("MOCK")
        .user("backup", PASSWORD, Privileges::BACKUP)
        .state_dir(tmp.path().join("state"))
        .build();
    let server = runtime
        .block_on(MockServer::start(
            MockDc::new(config).unwrap(),
            &ServeOptions::loopback(),
        ))
        .unwrap();
    let port = server.local_addr().port().to_string();
    for (user, domain) in [
        (r"MOCK\backup", ""),
        ("MOCK/backup", ""),
        ("backup@MOCK", ""),
        ("backup", "MOCK"),
        // The domain written in --user wins over --domain.
        (r"MOCK\backup", "ELSEWHERE"),
    ] {
        let online = dsbackup()
            .args(["online", "--server", "127.0.0.1", "--epm-port", &port])
            .args(["--user", user, "--domain", domain])
            .env("DSBACKUP_PASSWORD", PASSWORD)
            .output()
            .unwrap();
        assert!(
            online.status.success(),
            "{user} {domain}: {}",
            String::from_utf8_lossy(&online.stderr)
        );
        assert!(String::from_utf8_lossy(&online.stdout).starts_with("online"));
    }
    let wrong = dsbackup()
        .args(["online", "--server", "127.0.0.1", "--epm-port", &port])
        .args(["--user", r"OTHER\backup"])
        .env("DSBACKUP_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(5));
    runtime.block_on(server.shutdown());
}

/// Every entry under `dir` that is not a directory (files, links, FIFOs), recursively, links
/// not followed.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if std::fs::symlink_metadata(&path).unwrap().is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}
