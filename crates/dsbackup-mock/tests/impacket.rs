//! impacket as an independent client of the served mock DC (`scripts/mock/impacket_backup.py`):
//! ept_map on the mock's own endpoint-mapper listener, then a full backup over NTLM at packet
//! privacy, every file equal to the sample set's SHA-256; with a wrong password, nothing.
//!
//! `#[ignore]`d: it needs python3 with impacket. `cargo xtask conformance --peers impacket`
//! runs it (`DSBACKUP_PYTHON` names another interpreter).

#![cfg(test)]

use std::fmt::Write as _;
use std::path::PathBuf;

use dsbackup_mock::serve::{MockServer, ServeOptions};
use dsbackup_mock::{MockConfig, MockDc, Privileges, SampleManifest, SampleSpec};
use dsbackup_proto::AuthLevel;
use serde_json::Value;

const USER: &str = "svc-backup";
const PASSWORD: &str = "Passw0rd!";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

/// The mock over a small generated set, with its endpoint mapper on a listener of its own.
async fn serve(dir: &tempfile::TempDir) -> (MockServer, SampleManifest) {
    let root = dir.path().join("ntds");
    std::fs::create_dir(&root).unwrap();
    let spec = SampleSpec {
        database_size: 300 * 1024 + 5,
        log_count: 2,
        log_size: 64 * 1024,
        with_patch_file: true,
        patch_size: 8192,
        ..SampleSpec::default()
    };
    let sample = dsbackup_mock::generate_sample_set(&root, &spec).unwrap();
    let config = MockConfig::builder("DC1", &root)
        .domain("CORP")
        .user(USER, PASSWORD, Privileges::BACKUP)
        .state_dir(dir.path().join("state"))
        .min_auth_level(AuthLevel::PKT_PRIVACY)
        .build();
    let mut options = ServeOptions::loopback();
    options.epm_listen = Some(([127, 0, 0, 1], 0).into());
    let server = MockServer::start(MockDc::new(config).unwrap(), &options)
        .await
        .unwrap();
    (server, sample)
}

/// Runs the script against `server` with `password`: whether it succeeded, and its JSON.
async fn impacket_backup(server: &MockServer, password: &str) -> (bool, Value) {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mock/impacket_backup.py");
    let python = std::env::var("DSBACKUP_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let args = [
        server.local_addr().port().to_string(),
        server.epm_addr().unwrap().port().to_string(),
        USER.to_owned(),
        password.to_owned(),
        "CORP".to_owned(),
    ];
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&python)
            .arg(&script)
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {python} {}: {e}", script.display()))
    })
    .await
    .unwrap();
    let value: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "impacket_backup.py printed no JSON ({e}): {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.success(), value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3 with impacket: cargo xtask conformance"]
async fn impacket_backs_up_the_served_mock_at_packet_privacy() {
    let dir = tempfile::tempdir().unwrap();
    let (server, sample) = serve(&dir).await;
    let (ok, out) = impacket_backup(&server, PASSWORD).await;
    assert!(ok, "{out}");
    // ept_map on the mapper's listener names the main listener's port.
    let port = server.local_addr().port().to_string();
    assert!(out["ept_map"].as_str().unwrap().contains(&port), "{out}");
    let files = out["files"].as_array().unwrap();
    let mut names: Vec<&str> = Vec::new();
    for file in files {
        let unc = file["name"].as_str().unwrap();
        let name = unc.rsplit('\\').next().unwrap();
        let expected = sample
            .file(name)
            .unwrap_or_else(|| panic!("{unc}: not in the set"));
        assert_eq!(file["size"], expected.size, "{unc}");
        assert_eq!(file["read"], expected.size, "{unc}");
        assert_eq!(file["sha256"], hex(&expected.sha256), "{unc}");
        names.push(name);
    }
    assert!(names.contains(&"ntds.dit"), "{names:?}");
    assert!(names.iter().any(|n| n.ends_with(".log")), "{names:?}");
    assert_eq!(out["end_handle_null"], true);
    assert_eq!(server.dc().active_backup(), None);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3 with impacket: cargo xtask conformance"]
async fn impacket_with_a_wrong_password_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _sample) = serve(&dir).await;
    let (ok, out) = impacket_backup(&server, "not the password").await;
    assert!(!ok, "{out}");
    let error = out["error"].as_str().unwrap();
    assert!(error.contains("access_denied"), "impacket's error: {error}");
    assert!(out.get("files").is_none());
    assert_eq!(server.dc().active_backup(), None);
    server.shutdown().await;
}
