//! The differential conformance harness: the same scripted PDU exchanges sent over TCP to a
//! Samba AD DC's endpoint mapper (port 135: mgmt and epm) and to the mock DC, the replies
//! compared field by field (see `observe`), every difference either absent or listed in
//! `docs/CONFORMANCE.md` with its reason.
//!
//! Run by `cargo xtask differential` (and `cargo xtask conformance`), which starts a throwaway
//! Samba DC and sets `DSBACKUP_SAMBA_HOST`, `DSBACKUP_SAMBA_USER`, `DSBACKUP_SAMBA_PASSWORD`
//! and `DSBACKUP_SAMBA_DOMAIN`. Without `DSBACKUP_SAMBA_HOST` it says so and does nothing.
//! `DIFFERENTIAL_FILTER=text` runs only the cases whose name contains `text`;
//! `DIFFERENTIAL_VERBOSE=1` prints every observation of every differing case.
//!
//! Exit status: 0 when every case agrees with Samba or its difference is documented.
#![expect(
    clippy::print_stdout,
    reason = "a harness=false test: its report on stdout is its interface"
)]

mod cases;
mod client;
mod observe;
mod run;
mod wire;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context as _, Result, bail};
use dsbackup_mock::serve::{MockServer, ServeOptions};
use dsbackup_mock::{MockConfig, MockDc, Privileges, SampleSpec};

use crate::cases::Case;
use crate::run::Target;

/// A case's index, then Samba's observations and the mock's.
type Outcome = (usize, Vec<String>, Vec<String>);

/// The mock's user (the same NTLM initiator authenticates to both servers).
const MOCK_USER: &str = "svc-backup";
const MOCK_DOMAIN: &str = "CORP";
const MOCK_PASSWORD: &str = "Passw0rd!";
/// Cases run at once.
const WORKERS: usize = 12;

fn main() -> Result<()> {
    let Some(host) = std::env::var_os("DSBACKUP_SAMBA_HOST") else {
        println!(
            "differential: DSBACKUP_SAMBA_HOST is not set, nothing to compare with (run `cargo xtask differential`)"
        );
        return Ok(());
    };
    let host = host.to_string_lossy().into_owned();
    let env = |name: &str| std::env::var(name).with_context(|| format!("{name} is not set"));
    let samba = Target {
        addr: format!("{host}:135")
            .parse()
            .with_context(|| format!("bad DSBACKUP_SAMBA_HOST {host}"))?,
        user: env("DSBACKUP_SAMBA_USER")?,
        domain: env("DSBACKUP_SAMBA_DOMAIN")?,
        password: env("DSBACKUP_SAMBA_PASSWORD")?,
    };

    let runtime = tokio::runtime::Runtime::new()?;
    let dir = tempfile::tempdir()?;
    let mock = runtime.block_on(start_mock(dir.path()))?;
    let ours = Target {
        addr: mock.local_addr(),
        user: MOCK_USER.into(),
        domain: MOCK_DOMAIN.into(),
        password: MOCK_PASSWORD.into(),
    };

    let filter = std::env::var("DIFFERENTIAL_FILTER").unwrap_or_default();
    let verbose = std::env::var_os("DIFFERENTIAL_VERBOSE").is_some();
    let all: Vec<Case> = cases::all()
        .into_iter()
        .filter(|case| case.name.contains(&filter))
        .collect();
    let documented = documented_deviations()?;

    let results: Mutex<Vec<Outcome>> = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..WORKERS {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = all.get(i) else { break };
                    let (theirs, mine) = std::thread::scope(|inner| {
                        let theirs = inner.spawn(|| run::run(case, &samba));
                        let mine = run::run(case, &ours);
                        (theirs.join().unwrap_or_default(), mine)
                    });
                    results
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push((i, theirs, mine));
                }
            });
        }
    });
    // Our client against both servers: CONC_MPX and header signing asked for, calls in flight
    // at once, at every level.
    let mut client_failures = Vec::new();
    if filter.is_empty() || "client".contains(&filter) {
        for level in cases::Level::ALL {
            for (server, target) in [("samba", &samba), ("mock", &ours)] {
                match client::exchange(target, level) {
                    Ok(lines) => println!(
                        "client @{} against {server}: {}",
                        level.name(),
                        lines.join("; ")
                    ),
                    Err(why) => {
                        println!("CLIENT FAILED @{} against {server}: {why}", level.name());
                        client_failures.push(format!("@{} {server}", level.name()));
                    }
                }
            }
        }
    }
    runtime.block_on(mock.shutdown());

    let mut results = results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    results.sort_by_key(|(i, ..)| *i);
    let mut agree = 0;
    let mut deviations = 0;
    let mut undocumented = Vec::new();
    let mut used = vec![false; documented.len()];
    let mut report = String::new();
    let mut refused_replies = Vec::new();
    for (i, theirs, mine) in &results {
        let Some(case) = all.get(*i) else { continue };
        for line in theirs.iter().filter(|l| l.contains(run::UNDECODABLE)) {
            refused_replies.push(format!("{}: {line}", case.name));
        }
        if theirs == mine {
            agree += 1;
            continue;
        }
        let row = documented
            .iter()
            .position(|(pattern, _)| glob(pattern, &case.name));
        if let Some(slot) = row.and_then(|row| used.get_mut(row)) {
            *slot = true;
        }
        let reason = row.and_then(|row| documented.get(row));
        let diff = diff(theirs, mine);
        report.push_str(&format!(
            "== {}{}\n",
            case.name,
            if reason.is_some() {
                " (documented)"
            } else {
                ""
            }
        ));
        report.push_str(&diff);
        if verbose {
            report.push_str("   samba:\n");
            for line in theirs {
                report.push_str(&format!("      {line}\n"));
            }
            report.push_str("   mock:\n");
            for line in mine {
                report.push_str(&format!("      {line}\n"));
            }
        }
        if reason.is_some() {
            deviations += 1;
        } else {
            undocumented.push((case.name.clone(), diff));
        }
    }
    let out = target_dir().join("differential");
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("report.txt"), &report)?;
    for (name, diff) in &undocumented {
        println!("UNDOCUMENTED DIFFERENCE: {name}\n{diff}");
    }
    println!(
        "{agree} of {} cases agree with Samba 4.17 ({deviations} documented deviations, {} undocumented); report: {}",
        results.len(),
        undocumented.len(),
        out.join("report.txt").display()
    );
    // A row no differing case matches documents nothing: the difference it named is gone (or
    // the pattern is wrong). Only judged on a whole run.
    let stale: Vec<&str> = documented
        .iter()
        .zip(&used)
        .filter(|(_, used)| !**used)
        .map(|((pattern, _), _)| pattern.as_str())
        .collect();
    if filter.is_empty() {
        for pattern in &stale {
            println!("STALE ROW in docs/CONFORMANCE.md (no differing case matches it): {pattern}");
        }
    }
    for line in &refused_replies {
        println!("SAMBA REPLY OUR DECODER REFUSES: {line}");
    }
    if !client_failures.is_empty() || !refused_replies.is_empty() {
        bail!(
            "our client failed against {} and refused {} of Samba's replies",
            client_failures.join(", "),
            refused_replies.len()
        );
    }
    if !undocumented.is_empty() {
        bail!(
            "{} cases differ from Samba without a row in docs/CONFORMANCE.md",
            undocumented.len()
        );
    }
    if filter.is_empty() && !stale.is_empty() {
        bail!(
            "{} rows of docs/CONFORMANCE.md match no differing case: remove or narrow them",
            stale.len()
        );
    }
    Ok(())
}

/// The mock DC on loopback, on a port of three digits like Samba's 135, so that the secondary
/// address (the port as text) and the padding after it have the same length on both servers.
async fn start_mock(dir: &std::path::Path) -> Result<MockServer> {
    let root = dir.join("ntds");
    std::fs::create_dir(&root)?;
    let spec = SampleSpec {
        database_size: 64 * 1024,
        log_count: 1,
        log_size: 8192,
        ..SampleSpec::default()
    };
    dsbackup_mock::generate_sample_set(&root, &spec)?;
    let config = MockConfig::builder("DC1", &root)
        .domain(MOCK_DOMAIN)
        .user(MOCK_USER, MOCK_PASSWORD, Privileges::BACKUP)
        .state_dir(dir.join("state"))
        .build();
    let dc = MockDc::new(config)?;
    let mut options = ServeOptions::loopback();
    options.max_frag = 5840;
    for port in 700..1000 {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        if TcpListener::bind(addr).is_err() {
            continue;
        }
        options.listen = addr;
        if let Ok(server) = MockServer::start(dc.clone(), &options).await {
            return Ok(server);
        }
    }
    bail!("no free port of three digits on 127.0.0.1 for the mock DC")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    )
}

/// The rows of docs/CONFORMANCE.md's deviation table: a case-name pattern in backticks (`*`
/// matches anything) and its reason.
fn documented_deviations() -> Result<Vec<(String, String)>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/CONFORMANCE.md");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text
        .lines()
        .skip_while(|line| !line.starts_with("## Documented deviations"))
        .filter_map(|line| {
            let rest = line.strip_prefix("| `")?;
            let (pattern, rest) = rest.split_once('`')?;
            Some((
                pattern.to_owned(),
                rest.trim_matches(|c| c == '|' || c == ' ').to_owned(),
            ))
        })
        .collect())
}

/// Whether `name` matches `pattern`, where `*` matches any run of characters.
fn glob(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return false;
    };
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = rest.get(at + part.len()..).unwrap_or_default(),
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The lines only one side has.
fn diff(theirs: &[String], mine: &[String]) -> String {
    let mut out = String::new();
    for line in theirs.iter().filter(|l| !mine.contains(l)) {
        out.push_str(&format!("   samba: {line}\n"));
    }
    for line in mine.iter().filter(|l| !theirs.contains(l)) {
        out.push_str(&format!("   mock:  {line}\n"));
    }
    if out.is_empty() {
        out.push_str("   (same lines, in another order)\n");
    }
    out
}
