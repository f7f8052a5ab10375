//! The transport against third-party peers: our client against a Samba AD DC, impacket's client
//! and Samba's `rpcclient` (with `Peers::All`: it comes with Samba's packages, and its test binds
//! port 135 on 127.0.0.2, beside the DC) against our server
//! (`crates/dsbackup-transport/tests/peers.rs`) and impacket's against the served mock
//! DC (`crates/dsbackup-mock/tests/impacket.rs`), tests `#[ignore]`d so that a plain
//! `cargo test` needs neither; and, while Samba runs, the differential harness
//! (`tests/differential`, docs/CONFORMANCE.md), which compares the mock's answers with Samba's.
//!
//! Samba is a throwaway DC provisioned by `scripts/peers/samba-dc.sh` under
//! `target/peers/samba/` and stopped afterwards, whatever the tests did. When
//! `DSBACKUP_SAMBA_HOST` is already set, that DC is used instead and nothing is started (the
//! other `DSBACKUP_SAMBA_*` variables must then be set too).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result};

use crate::sh;

/// The provisioning script (domain TEST, realm TEST.LOCAL).
const SAMBA_SCRIPT: &str = "scripts/peers/samba-dc.sh";
/// What the script provisions.
const SAMBA_USER: &str = "Administrator";
const SAMBA_PASSWORD: &str = "Passw0rd!123";
const SAMBA_DOMAIN: &str = "TEST";

/// Which peers to run the tests against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Peers {
    /// Samba (started here unless `DSBACKUP_SAMBA_HOST` is set), `rpcclient` and impacket.
    All,
    /// impacket only: the tests whose name starts with `impacket_`.
    ImpacketOnly,
}

/// A Samba DC this process started; stopped on drop.
#[derive(Debug)]
struct Samba {
    dir: PathBuf,
}

impl Samba {
    fn start(dir: &Path) -> Result<Self> {
        sh::run(Command::new(SAMBA_SCRIPT).arg("start").arg(dir))?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }
}

impl Drop for Samba {
    fn drop(&mut self) {
        if let Err(e) = sh::run(Command::new(SAMBA_SCRIPT).arg("stop").arg(&self.dir)) {
            println!("could not stop Samba: {e:#}");
        }
    }
}

/// Runs the peer tests, starting and stopping Samba around them when needed; then impacket's
/// backup of the served mock DC (even when the transport's peer tests failed).
pub(crate) fn run(peers: Peers) -> Result<()> {
    let transport = run_transport(peers);
    let mock = sh::run(sh::cargo().args([
        "test",
        "--locked",
        "-p",
        "dsbackup-mock",
        "--test",
        "impacket",
        "--",
        "--ignored",
        "--test-threads=1",
    ]));
    transport.and(mock)
}

/// The transport's peer tests (`crates/dsbackup-transport/tests/peers.rs`).
fn run_transport(peers: Peers) -> Result<()> {
    let mut test = sh::cargo();
    test.args([
        "test",
        "--locked",
        "-p",
        "dsbackup-transport",
        "--test",
        "peers",
        "--",
        "--ignored",
        "--test-threads=1",
    ]);
    if peers == Peers::ImpacketOnly {
        test.arg("impacket_");
        return sh::run(&mut test);
    }
    // Build first, so that Samba does not sit idle through a compilation.
    sh::run(sh::cargo().args([
        "test",
        "--locked",
        "-p",
        "dsbackup-transport",
        "--test",
        "peers",
        "--no-run",
    ]))?;
    let mut differential = differential_command();
    with_samba(|env| {
        for (key, value) in env {
            test.env(key, value);
            differential.env(key, value);
        }
        let peers = sh::run(&mut test);
        let diff = sh::run(&mut differential);
        peers.and(diff)
    })
}

/// The differential harness (`tests/differential`): the same PDU exchanges sent to Samba's
/// endpoint mapper and the mock DC, compared field by field.
fn differential_command() -> Command {
    let mut command = sh::cargo();
    command.args([
        "test",
        "--locked",
        "-p",
        "dsbackup-tests",
        "--test",
        "differential",
    ]);
    command
}

/// `cargo xtask differential`: the harness alone, against a throwaway Samba DC.
pub(crate) fn differential() -> Result<()> {
    sh::run(differential_command().arg("--no-run"))?;
    let mut command = differential_command();
    with_samba(|env| {
        for (key, value) in env {
            command.env(key, value);
        }
        sh::run(&mut command)
    })
}

/// Runs `f` with the environment naming a Samba DC: the one `DSBACKUP_SAMBA_HOST` names
/// (nothing is started), or one started here on loopback and stopped afterwards.
fn with_samba(f: impl FnOnce(&[(&str, &str)]) -> Result<()>) -> Result<()> {
    if std::env::var_os("DSBACKUP_SAMBA_HOST").is_some() {
        println!("DSBACKUP_SAMBA_HOST is set: using that DC, starting none");
        return f(&[]);
    }
    let dir = sh::target_dir()?.join("peers").join("samba");
    let samba = Samba::start(&dir).context("cannot start the Samba DC")?;
    let result = f(&[
        ("DSBACKUP_SAMBA_HOST", "127.0.0.1"),
        ("DSBACKUP_SAMBA_USER", SAMBA_USER),
        ("DSBACKUP_SAMBA_PASSWORD", SAMBA_PASSWORD),
        ("DSBACKUP_SAMBA_DOMAIN", SAMBA_DOMAIN),
    ]);
    drop(samba);
    result
}
