//! The `dsbackup` binary and a `dsbackup mock-dc` process for the end-to-end tests.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

/// The password of the mock's users in these tests.
pub(crate) const PASSWORD: &str = "Passw0rd!";

/// `dsbackup`, without the caller's credentials or log settings.
pub(crate) fn dsbackup() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dsbackup"));
    command
        .env_remove("DSBACKUP_PASSWORD")
        .env_remove("DSBACKUP_NT_HASH")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    command
}

/// A `dsbackup mock-dc` process, killed when dropped.
pub(crate) struct MockDc {
    /// The process.
    pub(crate) child: Child,
    /// Its port (the interfaces' and the endpoint mapper's).
    pub(crate) port: u16,
    /// The directory it serves.
    pub(crate) root: PathBuf,
    /// The JSON line it printed once listening.
    pub(crate) started: serde_json::Value,
}

impl MockDc {
    /// Starts `mock-dc` with `args` and reads the address it prints.
    pub(crate) fn start(args: &[&str]) -> Self {
        let mut child = dsbackup()
            .arg("--json")
            .arg("mock-dc")
            .args(args)
            .env("DSBACKUP_PASSWORD", PASSWORD)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let started: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("mock-dc printed {line:?}: {e}"));
        let addr: std::net::SocketAddr = started["addr"].as_str().unwrap().parse().unwrap();
        Self {
            child,
            port: addr.port(),
            root: PathBuf::from(started["root"].as_str().unwrap()),
            started,
        }
    }

    /// Starts `mock-dc` serving a set of `size` generated into `dir`, for `user`, with `extra` args.
    pub(crate) fn generated(dir: &std::path::Path, size: &str, user: &str, extra: &[&str]) -> Self {
        let dir = dir.to_str().unwrap();
        let mut args = vec!["--dir", dir, "--generate", size, "--user", user];
        args.extend_from_slice(extra);
        Self::start(&args)
    }

    /// `dsbackup <command> --server 127.0.0.1 --epm-port PORT <args>` with `password`.
    pub(crate) fn run(&self, command: &str, args: &[&str], password: &str) -> Output {
        dsbackup()
            .arg(command)
            .args([
                "--server",
                "127.0.0.1",
                "--epm-port",
                &self.port.to_string(),
            ])
            .args(args)
            .env("DSBACKUP_PASSWORD", password)
            .output()
            .unwrap()
    }
}

impl Drop for MockDc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on (free a moment ago).
pub(crate) fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port().to_string()
}
