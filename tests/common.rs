//! A mock DC on loopback with a generated sample set, and clients for it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dsbackup_client::{
    AuthLevel, Client, ClientConfig, Credentials, Endpoint, PathMap, RestoreOptions,
};
use dsbackup_mock::serve::{MockServer, ServeOptions};
use dsbackup_mock::{
    DsMode, MockConfig, MockConfigBuilder, MockDc, Privileges, SampleManifest, SampleSpec,
};
use tempfile::TempDir;

pub(crate) const BACKUP_USER: &str = "svc-backup";
pub(crate) const RESTORE_USER: &str = "Administrator";
pub(crate) const NOBODY: &str = "guest";
pub(crate) const PASSWORD: &str = "Passw0rd!";

/// A running mock DC over a generated sample set.
pub(crate) struct Dc {
    pub(crate) server: MockServer,
    pub(crate) sample: SampleManifest,
    pub(crate) _dir: TempDir,
}

/// A small set: a 3 MiB + 5 bytes database (not a multiple of any read size), three logs, a
/// patch file.
pub(crate) fn small_spec() -> SampleSpec {
    SampleSpec {
        database_size: 3 * 1024 * 1024 + 5,
        log_count: 3,
        log_size: 256 * 1024,
        with_patch_file: true,
        patch_size: 8192,
        ..SampleSpec::default()
    }
}

impl Dc {
    pub(crate) async fn start() -> Self {
        Self::start_with(&small_spec(), AuthLevel::PKT_INTEGRITY).await
    }

    pub(crate) async fn start_with(spec: &SampleSpec, min_auth: AuthLevel) -> Self {
        Self::start_configured(spec, min_auth, |builder| builder).await
    }

    /// A DC whose configuration `configure` adjusts last.
    pub(crate) async fn start_configured(
        spec: &SampleSpec,
        min_auth: AuthLevel,
        configure: impl FnOnce(MockConfigBuilder) -> MockConfigBuilder,
    ) -> Self {
        Self::start_served(spec, min_auth, configure, &ServeOptions::loopback()).await
    }

    /// A DC configured by `configure`, served with `options`.
    pub(crate) async fn start_served(
        spec: &SampleSpec,
        min_auth: AuthLevel,
        configure: impl FnOnce(MockConfigBuilder) -> MockConfigBuilder,
        options: &ServeOptions,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ntds");
        std::fs::create_dir(&root).unwrap();
        let sample = dsbackup_mock::generate_sample_set(&root, spec).unwrap();
        let config = configure(
            MockConfig::builder("DC1", &root)
                .domain("CORP")
                .user(BACKUP_USER, PASSWORD, Privileges::BACKUP)
                .user(RESTORE_USER, PASSWORD, Privileges::ALL)
                .user(NOBODY, PASSWORD, Privileges::NONE)
                .state_dir(dir.path().join("state"))
                .min_auth_level(min_auth),
        )
        .build();
        let dc = MockDc::new(config).unwrap();
        let server = MockServer::start(dc, options).await.unwrap();
        Self {
            server,
            sample,
            _dir: dir,
        }
    }

    pub(crate) fn dc(&self) -> &MockDc {
        self.server.dc()
    }

    /// A client of `user` at packet privacy, finding the interfaces through the endpoint
    /// mapper on the server's port.
    pub(crate) fn client(&self, user: &str) -> Client {
        self.client_with(user, PASSWORD, AuthLevel::PKT_PRIVACY)
    }

    pub(crate) fn client_with(&self, user: &str, password: &str, level: AuthLevel) -> Client {
        let mut config =
            ClientConfig::new("127.0.0.1")
                .auth_level(level)
                .endpoint(Endpoint::Mapper {
                    port: self.server.local_addr().port(),
                });
        if level != AuthLevel::NONE {
            config = config.credentials(Credentials::from_password(user, "CORP", password));
        }
        config.call_timeout = Duration::from_secs(20);
        config.read_size = Some(256 * 1024);
        Client::new(config).unwrap()
    }

    /// The SHA-256 (hex) of the sample file `name`.
    pub(crate) fn sha256(&self, name: &str) -> String {
        hex::encode(self.sample.file(name).unwrap().sha256)
    }

    /// Puts the DC in restore mode; where its files go (`dir/restored`, made here) and the
    /// options that map its NTDS directory there.
    pub(crate) fn restore_into(&self, dir: &Path) -> (PathBuf, RestoreOptions) {
        self.dc().set_mode(DsMode::Restore);
        let target = dir.join("restored");
        std::fs::create_dir(&target).unwrap();
        let options =
            RestoreOptions::new(PathMap::new().with_rule(r"\\DC1\C$\Windows\NTDS", &target));
        (target, options)
    }

    /// Waits (bounded) until the server has no association left.
    pub(crate) async fn wait_no_associations(&self) {
        wait_until("the server to see every association go", || {
            self.server.snapshot().associations == 0
        })
        .await;
    }
}

/// Polls `done` every 10 ms for up to 10 s; fails the test if it never holds.
pub(crate) async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

/// SHA-256 (hex) of a file.
pub(crate) fn sha256_file(path: &Path) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// SHA-256 (hex) of bytes.
pub(crate) fn sha256(data: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(data))
}

/// Asserts the client's registry has nothing open.
pub(crate) fn assert_no_bindings(client: &Client) {
    let snapshot = client.registry().metrics().snapshot();
    assert_eq!(snapshot.bindings, 0, "{snapshot:?}");
    assert_eq!(snapshot.associations, 0, "{snapshot:?}");
}

/// Every entry under `dir` that is not a directory (files, links, FIFOs), recursively, links
/// not followed.
pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
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
