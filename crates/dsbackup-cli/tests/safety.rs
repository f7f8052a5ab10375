//! The binary under signals and umasks: an interrupted backup ends its session with the
//! server and leaves nothing; a set is private whatever the umask.

#![cfg(test)]
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use dsbackup_client::AuthLevel;
use dsbackup_mock::serve::{MockServer, ServeOptions};
use dsbackup_mock::{MockConfig, MockDc, Privileges, SampleSpec};
use dsbackup_proto::iface::Interface;

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
            .args(["-q", "demo", "--size", "1MiB", "--keep"])
            .arg(&out)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "umask {umask}");
        assert_eq!(mode(&out), 0o700, "umask {umask}");
        for file in dsbackup_client::verify::walk(&out).unwrap() {
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
