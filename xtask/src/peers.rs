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
const SAMBA_REALM: &str = "TEST.LOCAL";
/// The account the mock's Kerberos SPN is registered on, in the conformance DC.
const SERVICE_ACCOUNT: &str = "mockdc";
const SERVICE_PASSWORD: &str = "Passw0rd!456";
const SERVICE_SPN: &str = "host/mock.test.local";

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
        // The Kerberos tests export a keytab from the DC's database: only with a DC started
        // here (an empty environment means DSBACKUP_SAMBA_HOST named another one).
        let kerberos = if env.is_empty() {
            Ok(())
        } else {
            sh::target_dir().and_then(|target| run_kerberos(&target.join("peers").join("samba")))
        };
        peers.and(diff).and(kerberos)
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

/// Our Kerberos client against the DC's KDC (`crates/dsbackup-transport/tests/kerberos.rs`),
/// with a keytab of the user that `samba-tool` exports from the DC's database; then the mock DC
/// accepting the KDC's tickets for an SPN of a service account whose keytab it serves with, a
/// whole backup over Kerberos privacy (`tests/kerberos.rs`).
fn run_kerberos(dir: &Path) -> Result<()> {
    let config = format!("--configfile={}", dir.join("etc/smb.conf").display());
    let keytab = dir.join("user.keytab");
    let service_keytab = dir.join("service.keytab");
    for file in [&keytab, &service_keytab] {
        let _ = std::fs::remove_file(file);
    }
    sh::run(
        Command::new("samba-tool")
            .args(["domain", "exportkeytab"])
            .arg(&keytab)
            .arg(format!("--principal={SAMBA_USER}@{SAMBA_REALM}"))
            .arg(&config),
    )?;
    // The mock's service account, its SPN, and the account's keys (every encryption type).
    sh::run(
        Command::new("samba-tool")
            .args(["user", "add", SERVICE_ACCOUNT, SERVICE_PASSWORD])
            .arg(&config),
    )?;
    sh::run(
        Command::new("samba-tool")
            .args(["spn", "add", SERVICE_SPN, SERVICE_ACCOUNT])
            .arg(&config),
    )?;
    sh::run(
        Command::new("samba-tool")
            .args(["domain", "exportkeytab"])
            .arg(&service_keytab)
            .arg(format!("--principal={SERVICE_ACCOUNT}"))
            .arg(&config),
    )?;
    let env = [
        ("DSBACKUP_SAMBA_HOST", "127.0.0.1".as_ref()),
        ("DSBACKUP_SAMBA_USER", SAMBA_USER.as_ref()),
        ("DSBACKUP_SAMBA_PASSWORD", SAMBA_PASSWORD.as_ref()),
        ("DSBACKUP_SAMBA_REALM", SAMBA_REALM.as_ref()),
        ("DSBACKUP_SAMBA_KEYTAB", keytab.as_os_str()),
        ("DSBACKUP_SAMBA_SERVICE_SPN", SERVICE_SPN.as_ref()),
        ("DSBACKUP_SAMBA_SERVICE_KEYTAB", service_keytab.as_os_str()),
    ];
    let mut transport = sh::cargo();
    transport.args([
        "test",
        "--locked",
        "-p",
        "dsbackup-transport",
        "--test",
        "kerberos",
        "--",
        "--ignored",
        "--test-threads=1",
    ]);
    let mut mock = sh::cargo();
    mock.args([
        "test",
        "--locked",
        "-p",
        "dsbackup-tests",
        "--test",
        "integration",
        "kerberos::samba",
        "--",
        "--ignored",
    ]);
    for command in [&mut transport, &mut mock] {
        command.envs(env);
    }
    // Both run, whatever the first gives.
    let transport = sh::run(&mut transport);
    let mock = sh::run(&mut mock);
    transport.and(mock)
}
