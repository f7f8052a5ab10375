//! Installs the third-party peers a task needs, when they are missing.
//!
//! CI is a fresh Debian machine where we are root: tshark (and text2pcap) and Samba come from apt
//! (all missing packages in one `apt-get update` and one `apt-get install`), impacket from PyPI,
//! cargo-fuzz from crates.io. Each install runs only when its tool is missing, so the step costs
//! nothing on a prepared machine; `--no-install` / `XTASK_NO_INSTALL=1` turn a missing tool into
//! an error that says how to install it.

use std::io::Write as _;
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};

use crate::sh;

/// The impacket release the vectors were produced with.
const IMPACKET: &str = "impacket==0.13.1";
/// The cargo-fuzz releases whose flags `cargo xtask fuzz` uses.
const CARGO_FUZZ: &str = "~0.13";

/// What a task needs installed.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Needs {
    /// `tshark`, `text2pcap` and `mergecap` (Debian `tshark`).
    pub(crate) tshark: bool,
    /// `python3` with `import impacket`.
    pub(crate) impacket: bool,
    /// `cargo fuzz` and a C++ compiler for libFuzzer.
    pub(crate) cargo_fuzz: bool,
    /// A Samba AD DC to provision and run (`samba`, `samba-tool`; `rpcclient`,
    /// which the peer tests also run against our server).
    pub(crate) samba: bool,
    /// A C compiler (`cc`), `pkg-config` and `valgrind`, to build the C programs against
    /// libntdsbcli and check them, and `python3` for its README's ctypes example.
    pub(crate) c: bool,
    /// The Rust standard libraries of `ci::CROSS_TARGETS` (`rustup target add`).
    pub(crate) cross_targets: bool,
}

impl Needs {
    pub(crate) const ALL: Self = Self {
        tshark: true,
        impacket: true,
        cargo_fuzz: true,
        samba: true,
        c: true,
        cross_targets: true,
    };
}

/// The Debian packages of a Samba AD DC: the daemon, the DC role, the provisioning tool (and its
/// Python modules), and the client tools (`rpcclient`, run by the peer tests against our server
/// and handy by hand).
const SAMBA_PACKAGES: &[&str] = &["samba", "samba-ad-dc", "samba-ad-provision", "smbclient"];

/// Whether Debian package `name` is installed; `None` without dpkg (not a Debian machine).
fn dpkg_installed(name: &str) -> Option<bool> {
    let output = Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}", name])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    Some(output.status.success() && output.stdout.ends_with(b" installed"))
}

fn impacket_importable() -> bool {
    sh::succeeds(Command::new("python3").args(["-c", "import impacket"]))
}

fn cargo_fuzz_present() -> bool {
    sh::succeeds(sh::cargo().args(["fuzz", "--version"]))
}

/// The apt packages missing for `needs`.
fn missing_apt_packages(needs: Needs) -> Vec<&'static str> {
    let mut packages = Vec::new();
    if needs.tshark
        && !["tshark", "text2pcap", "mergecap"]
            .iter()
            .all(|t| sh::on_path(t))
    {
        packages.push("tshark");
    }
    if needs.impacket && !impacket_importable() {
        if !sh::on_path("python3") {
            packages.push("python3");
        }
        if !sh::succeeds(Command::new("python3").args(["-m", "pip", "--version"])) {
            packages.push("python3-pip");
        }
    }
    if needs.cargo_fuzz && !sh::on_path("c++") {
        packages.push("g++");
    }
    if needs.c {
        if !sh::on_path("cc") {
            packages.push("gcc");
            packages.push("libc6-dev");
        }
        if !sh::on_path("pkg-config") {
            packages.push("pkg-config");
        }
        if !sh::on_path("valgrind") {
            packages.push("valgrind");
        }
        // The README's ctypes example runs against the mock in the same step.
        if !sh::on_path("python3") && !packages.contains(&"python3") {
            packages.push("python3");
        }
    }
    if needs.samba {
        for &package in SAMBA_PACKAGES {
            // Without dpkg, go by the programs (someone installed Samba another way).
            let present = dpkg_installed(package).unwrap_or_else(|| match package {
                "samba" => sh::on_path_or_sbin("samba"),
                "samba-ad-provision" => sh::on_path_or_sbin("samba-tool"),
                "smbclient" => sh::on_path_or_sbin("rpcclient"),
                _ => true,
            });
            if !present {
                packages.push(package);
            }
        }
    }
    packages
}

/// Installs whatever `needs` lacks (unless `allowed` is false: then a missing tool is an error),
/// and prints the versions in use.
pub(crate) fn ensure(needs: Needs, allowed: bool) -> Result<()> {
    let apt = missing_apt_packages(needs);
    if !apt.is_empty() {
        let list = apt.join(" ");
        if !allowed {
            bail!("missing Debian packages: {list} (apt-get install {list}; or drop --no-install)");
        }
        apt_install(&apt)?;
    }
    if needs.impacket && !impacket_importable() {
        if !allowed {
            bail!("python3 cannot import impacket (python3 -m pip install {IMPACKET})");
        }
        // Debian marks its Python "externally managed"; CI's machine is throwaway, so install
        // into it anyway. Older pips ignore the variable.
        sh::run(
            Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    IMPACKET,
                ])
                .env("PIP_BREAK_SYSTEM_PACKAGES", "1")
                .env("PIP_ROOT_USER_ACTION", "ignore"),
        )?;
        if !impacket_importable() {
            bail!("impacket installed but python3 still cannot import it");
        }
    }
    if needs.cargo_fuzz && !cargo_fuzz_present() {
        if !allowed {
            bail!("cargo-fuzz is missing (cargo install cargo-fuzz --locked)");
        }
        sh::run(sh::cargo().args(["install", "cargo-fuzz", "--locked", "--version", CARGO_FUZZ]))?;
    }
    if needs.cross_targets {
        let missing = missing_cross_targets();
        if !missing.is_empty() {
            if !allowed {
                bail!(
                    "missing Rust targets (rustup target add {})",
                    missing.join(" ")
                );
            }
            // The standard libraries come from the Rust distribution server, not a package
            // registry: a machine that cannot reach it still runs every other step, and the
            // cross step says which targets it could not check.
            let added = sh::run(
                Command::new("timeout")
                    .args(["300", "rustup", "target", "add"])
                    .args(&missing),
            );
            if let Err(error) = added {
                eprintln!("warning: the cross targets could not be installed: {error:#}");
            }
        }
    }
    print_versions(needs);
    Ok(())
}

/// The targets of `ci::CROSS_TARGETS` whose standard library rustup has not installed.
pub(crate) fn missing_cross_targets() -> Vec<&'static str> {
    let installed = sh::read(Command::new("rustup").args(["target", "list", "--installed"]))
        .unwrap_or_default();
    crate::ci::CROSS_TARGETS
        .iter()
        .copied()
        .filter(|target| !installed.lines().any(|line| line.trim() == *target))
        .collect()
}

fn apt_install(packages: &[&str]) -> Result<()> {
    let uid = sh::first_line(Command::new("id").arg("-u")).unwrap_or_default();
    if uid.trim() != "0" {
        bail!(
            "missing Debian packages {}; run as root, or: sudo apt-get install {}",
            packages.join(" "),
            packages.join(" ")
        );
    }
    if packages.contains(&"tshark") {
        // Answer the "should non-root users capture packets?" question before it is asked.
        let mut child = Command::new("debconf-set-selections")
            .stdin(Stdio::piped())
            .spawn()
            .context("cannot start debconf-set-selections")?;
        child
            .stdin
            .take()
            .context("no stdin for debconf-set-selections")?
            .write_all(b"wireshark-common wireshark-common/install-setuid boolean false\n")?;
        if !child.wait()?.success() {
            bail!("debconf-set-selections failed");
        }
    }
    let apt = |args: &[&str]| {
        let mut cmd = Command::new("apt-get");
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    sh::run(&mut apt(&["update", "-qq"]))?;
    let mut install = apt(&["install", "-y", "-qq", "--no-install-recommends"]);
    install.args(packages);
    sh::run(&mut install)
}

fn print_versions(needs: Needs) {
    let version = |cmd: &mut Command| sh::first_line(cmd).unwrap_or_else(|| "?".to_owned());
    if needs.tshark {
        println!("using {}", version(Command::new("tshark").arg("--version")));
    }
    if needs.impacket {
        let v = version(Command::new("python3").args([
            "-c",
            "import importlib.metadata as m, sys; print('impacket', m.version('impacket'), 'on python', sys.version.split()[0])",
        ]));
        println!("using {v}");
    }
    if needs.cargo_fuzz {
        println!("using {}", version(sh::cargo().args(["fuzz", "--version"])));
    }
    if needs.c {
        println!(
            "using {}",
            version(Command::new("valgrind").arg("--version"))
        );
    }
    if needs.samba {
        println!(
            "using samba {}",
            version(Command::new(sh::sbin_program("samba")).arg("--version"))
        );
    }
}
