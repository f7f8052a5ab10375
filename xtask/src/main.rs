//! Automation of the dsbackup workspace (`cargo xtask`).
//!
//! Every task a contributor or CI runs lives here, in Rust, so that a fresh clone needs nothing but
//! cargo: `cargo xtask ci` installs the third-party peers it needs (tshark, Samba, impacket,
//! cargo-fuzz) when they are missing, then runs each check as a timed step. Run `cargo xtask help`
//! for the list.
#![expect(
    clippy::print_stdout,
    reason = "xtask is a command-line tool: its report on stdout is its interface"
)]

mod args;
mod bench;
mod ci;
mod conformance;
mod deps;
mod fuzz;
mod install;
mod load;
mod peers;
mod sealed;
mod setup;
mod sh;
mod soak;
mod vectors;

use anyhow::{Context as _, Result, bail};
use args::Args;

const HELP: &str = "\
cargo xtask TASK [OPTIONS]

Tasks:
  ci [--skip STEP,..] [--no-install]
        everything CI checks, in order, each a timed step: setup fmt clippy test large (the
        ignored 1 GiB end-to-end backup) doc deps ffi (libntdsbcli installed into a prefix and
        examples/c/ntbackup.c built against it; the C test programs under valgrind) cross
        conformance vectors fuzz (10 s per target) soak (100 cycles);
        stops at the first failure
  cross
        cargo check --workspace for x86_64-pc-windows-gnu and x86_64-apple-darwin, warnings
        denied (rustup target add them first)
  check deps
        the dependency direction between the workspace crates (see ARCHITECTURE.md)
  conformance [--fixtures DIR] [--conversations DIR] [--inspect-with PROGRAM]
              [--peers all|impacket|none] [--no-install]
        writes fixtures/pdu/*.bin and the conversations the tests dump (target/conformance/*.txt)
        into pcaps, and checks that tshark reads every PDU as DCE/RPC, without a malformed frame or
        expert warning, with the same header fields as `dsbackup inspect`, and decrypts sealed
        conversations into the plaintext the tests recorded; then runs the transport's peer tests:
        our client against a throwaway Samba AD DC (scripts/peers/samba-dc.sh, needs root),
        impacket's client and (with --peers all) Samba's rpcclient against our server
  differential
        sends the same scripted PDU exchanges (tests/differential) to a throwaway Samba AD DC's
        endpoint mapper and to the mock DC, compares the replies field by field, and fails on a
        difference docs/CONFORMANCE.md does not list (also run by conformance with --peers all)
  vectors [--check] [--no-install]
        runs scripts/vectors/*.py (impacket) into fixtures/; with --check, into a temporary
        directory, and fails unless the committed files are reproduced byte for byte
  fuzz [--target T] [--secs N] [--runs R] [--jobs J] [--fuzz-dir DIR] [--no-install]
        replays fixtures/fuzz/<T>/* then fuzzes each target (or one) for N seconds or R
        executions, whichever comes first (default 60 s), J targets at a time (default: one per
        core); the stub targets start from fixtures/ndr; ends with executions, coverage and
        crashes per target
  install --prefix DIR [--profile release|dev]
        builds libntdsbcli (the ntdsbcli C API) and installs lib/libntdsbcli.so, lib/libntdsbcli.a,
        include/ntdsbcli.h, include/ntdsbmsg.h and lib/pkgconfig/ntdsbcli.pc under DIR
  soak [--cycles N] [--release]
        N backups (default 100) against an in-process mock DC, each with one fault in turn (drop,
        stall, corrupt a fragment, kill the client, kill and restart the server, half-open socket,
        signal to the CLI), each followed by a check that no binding, association, task, session
        or file descriptor is left and that no set reported good differs from the source
  bench [--backup-only] [--size MIB] [--load]
        runs the criterion benches and prints each throughput against memcpy in the same run
        (--backup-only skips them); then a backup over loopback (1 GiB unless --size says) at
        auth none, connect, integrity and privacy, with fragments of 5840 and 65535 bytes, to a
        directory: each level against its bound, computed in the same run from the crypto
        primitives' speed (ours and `openssl speed`'s) or from a plain receive + SHA-256 + write
        of the same bytes; each side's CPU seconds per GiB and peak RSS; then the load benchmark
        (alone with --load): 1,000 authenticated associations making calls while 1,000 hostile
        sockets attack the same server (calls served, latency percentiles, the server's peak
        RSS), and the server's RSS around 250 partial 1 MiB requests

Installs (apt-get tshark and samba, pip impacket, cargo install cargo-fuzz) only happen when a tool is
missing; --no-install or XTASK_NO_INSTALL=1 turns them into errors.
";

fn main() -> Result<()> {
    let mut args = Args::from_env();
    let root = sh::project_root();
    std::env::set_current_dir(&root)
        .with_context(|| format!("cannot enter the project root {}", root.display()))?;
    let task = args.subcommand();
    match task.as_deref() {
        Some("ci") => ci::run(args),
        Some("check") => match args.subcommand().as_deref() {
            Some("deps") => {
                args.finish()?;
                deps::check()
            }
            other => bail!("unknown check {other:?}; known: `cargo xtask check deps`"),
        },
        Some("conformance") => conformance::run(args),
        Some("differential") => {
            args.finish()?;
            peers::differential()
        }
        Some("vectors") => vectors::run(args),
        Some("fuzz") => fuzz::run(args),
        Some("soak") => soak::run(args),
        Some("install") => install::run(args),
        Some("cross") => {
            args.finish()?;
            ci::cross()
        }
        Some("bench") => {
            if args.flag("--load") {
                args.finish()?;
                return load::run();
            }
            bench::run(args)?;
            load::run()
        }
        None | Some("help" | "-h" | "--help") => {
            print!("{HELP}");
            Ok(())
        }
        Some(other) => bail!("unknown task `{other}`\n\n{HELP}"),
    }
}
