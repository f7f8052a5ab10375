//! The library from C: `examples/c/ntbackup.c` backs up a mock DC through the C API alone and
//! its files hash as the server's do; `tests/c/contract.c` checks the handle contract and the
//! documented error paths; `tests/c/restore.c` runs the restore calls on their success path
//! against the mock in restore mode. Each is built with the system's
//! `cc -Wall -Wextra -Werror` and run under AddressSanitizer (with LeakSanitizer: any leak
//! fails the run) and UBSan; the `*_under_valgrind` tests (ignored by `cargo test`, run by
//! `cargo xtask ci`'s `ffi` step, which installs valgrind) build them without sanitizers and
//! run them under Valgrind's memcheck, which must report no error and no block definitely or
//! indirectly lost.

#![cfg(test)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dsbackup_client::{AuthLevel, BackupType, BftKind, ClientConfig, Credentials, Endpoint};
use dsbackup_mock::serve::{MockServer, ServeOptions};
use dsbackup_mock::{
    DsMode, MockConfig, MockDc, Privileges, RestoreMapping, SampleManifest, SampleSpec,
};

const USER: &str = "svc-backup";
const RESTORE_USER: &str = "Administrator";
const NOBODY: &str = "guest";
const PASSWORD: &str = "Passw0rd!";

struct Dc {
    server: MockServer,
    sample: SampleManifest,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

/// How a C program is built and run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Checker {
    /// `-fsanitize=address,undefined`; LeakSanitizer on.
    Sanitizers,
    /// No sanitizer; run under `valgrind --leak-check=full`.
    Valgrind,
}

fn start_dc() -> Dc {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ntds");
    std::fs::create_dir(&root).unwrap();
    let spec = SampleSpec {
        // Not a multiple of any read size.
        database_size: 3 * 1024 * 1024 + 5,
        log_count: 3,
        log_size: 256 * 1024,
        with_patch_file: true,
        patch_size: 8192,
        ..SampleSpec::default()
    };
    let sample = dsbackup_mock::generate_sample_set(&root, &spec).unwrap();
    let config = MockConfig::builder("DC1", &root)
        .domain("CORP")
        .user(USER, PASSWORD, Privileges::BACKUP)
        .user(RESTORE_USER, PASSWORD, Privileges::ALL)
        .user(NOBODY, PASSWORD, Privileges::NONE)
        .state_dir(dir.path().join("state"))
        .min_auth_level(AuthLevel::PKT_INTEGRITY)
        .build();
    let server = runtime
        .block_on(MockServer::start(
            MockDc::new(config).unwrap(),
            &ServeOptions::loopback(),
        ))
        .unwrap();
    Dc {
        server,
        sample,
        runtime,
        _dir: dir,
    }
}

/// Where cargo put `libntdsbcli.so` for this test (beside the test binary).
fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().to_owned();
    assert!(
        dir.join("libntdsbcli.so").exists(),
        "no libntdsbcli.so in {}",
        dir.display()
    );
    dir
}

/// Builds `source` with the system C compiler against the library (with sanitizers unless
/// the program is to run under Valgrind).
fn build(source: &Path, out: &Path, checker: Checker) {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = library_dir();
    let mut cc = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".to_owned()));
    cc.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-O1"]);
    if checker == Checker::Sanitizers {
        cc.args(["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]);
    }
    let output = cc
        .arg("-I")
        .arg(crate_dir.join("include"))
        .arg("-o")
        .arg(out)
        .arg(source)
        .arg("-L")
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-lntdsbcli", "-pthread"])
        .output()
        .expect("the system C compiler `cc` runs");
    assert_success("cc", &output);
}

fn assert_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs a built program against `dc` as `user`, the sanitizers or Valgrind reporting every
/// error and leak (either makes the program exit 99).
fn run(dc: &Dc, checker: Checker, user: &str, program: &Path, args: &[&str]) -> Output {
    let mut command = match checker {
        Checker::Sanitizers => Command::new(program),
        Checker::Valgrind => {
            let mut valgrind = Command::new("valgrind");
            valgrind
                .args(["--quiet", "--error-exitcode=99", "--leak-check=full"])
                // A leak is a block nothing points to (definitely lost) or one reached only
                // from such a block (indirectly lost). Still reachable and "possibly lost"
                // blocks are the live tables and threads of the process at exit: the handle
                // table's and tokio's hash maps (hashbrown points into the middle of its
                // allocation, at the control bytes) and the shared runtime's threads' TLS.
                .args(["--show-leak-kinds=definite,indirect"])
                .args(["--errors-for-leak-kinds=definite,indirect"])
                .arg(program);
            valgrind
        }
    };
    command
        .args(args)
        .env(
            "NTDSBCLI_EPM_PORT",
            dc.server.local_addr().port().to_string(),
        )
        .env("NTBACKUP_USER", user)
        .env("NTBACKUP_DOMAIN", "CORP")
        .env("NTBACKUP_PASSWORD", PASSWORD)
        .env("NTBACKUP_NOBODY", NOBODY)
        .env(
            "ASAN_OPTIONS",
            "detect_leaks=1:abort_on_error=0:exitcode=99",
        )
        .env("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
        .output()
        .unwrap()
}

/// The C program at `source` (relative to this crate), built for `checker` in `temp`.
fn program(source: &str, temp: &Path, checker: Checker) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(source);
    let program = temp.join(source.file_stem().unwrap());
    build(&source, &program, checker);
    program
}

fn ntbackup_backs_up_the_mock_dc(checker: Checker) {
    let dc = start_dc();
    let temp = tempfile::tempdir().unwrap();
    let program = program("../../examples/c/ntbackup.c", temp.path(), checker);
    let out = temp.path().join("set");
    std::fs::create_dir(&out).unwrap();
    let output = run(
        &dc,
        checker,
        USER,
        &program,
        &["\\\\127.0.0.1", out.to_str().unwrap()],
    );
    assert_success("ntbackup", &output);

    let stdout = String::from_utf8(output.stdout).unwrap();
    let mut written: Vec<&str> = stdout
        .lines()
        .map(|line| line.rsplit(' ').next().unwrap())
        .collect();
    written.sort_unstable();
    // The database, the patch file, and the logs from the checkpoint's generation on.
    let logs = (dc.sample.checkpoint_generation..=dc.sample.current_generation)
        .map(|generation| format!("edb{generation:05x}.log"));
    let mut served: Vec<String> = ["ntds.dit".to_owned(), "ntds.pat".to_owned()]
        .into_iter()
        .chain(logs)
        .collect();
    served.sort_unstable();
    assert_eq!(written, served, "{stdout}");
    for name in written {
        let file = dc.sample.file(name).unwrap();
        let sha256 = dsbackup_mock::sha256_file(&out.join(name)).unwrap();
        assert_eq!(sha256, file.sha256, "{name}");
    }
    let token = std::fs::read(out.join("expiry-token.bin")).unwrap();
    assert!(!token.is_empty());
    // The program ended its session.
    assert_eq!(
        dc.server.dc().active_backup(),
        None,
        "DsBackupEnd ended the session"
    );
}

fn contract_passes(checker: Checker) {
    let dc = start_dc();
    let temp = tempfile::tempdir().unwrap();
    let program = program("tests/c/contract.c", temp.path(), checker);
    let output = run(&dc, checker, USER, &program, &["127.0.0.1"]);
    assert_success("contract", &output);
    assert!(String::from_utf8_lossy(&output.stdout).contains("every check passed"));
}

/// A backup's expiry token, taken through the Rust client; the DC then goes into restore
/// mode, and the C program restores with the token: what it registered is what the DC
/// recorded, and the restore completed (the DC may start again).
fn restore_registers_on_the_mock_dc(checker: Checker) {
    let dc = start_dc();
    let client = dsbackup_client::Client::new(
        ClientConfig::new("127.0.0.1")
            .credentials(Credentials::from_password(USER, "CORP", PASSWORD))
            .endpoint(Endpoint::Mapper {
                port: dc.server.local_addr().port(),
            }),
    )
    .unwrap();
    let (token, locations) = dc.runtime.block_on(async {
        let mut session = client.backup_prepare(BackupType::Full).await.unwrap();
        let token = session.expiry_token().to_vec();
        let locations = session.database_locations().await.unwrap();
        session.end().await.unwrap();
        (token, locations)
    });
    dc.server.dc().set_mode(DsMode::Restore);
    let temp = tempfile::tempdir().unwrap();
    let token_file = temp.path().join("expiry-token.bin");
    std::fs::write(&token_file, &token).unwrap();
    let program = program("tests/c/restore.c", temp.path(), checker);
    let output = run(
        &dc,
        checker,
        RESTORE_USER,
        &program,
        &["127.0.0.1", token_file.to_str().unwrap(), "3", "7"],
    );
    assert_success("restore", &output);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("every check passed"), "{stdout}");

    let location = |kind| {
        locations
            .iter()
            .find(|entry| entry.kind == kind)
            .unwrap()
            .name
            .clone()
    };
    let marker = dc.server.dc().restore_marker().expect("DsRestoreRegister");
    assert_eq!(
        marker.checkpoint_file_path,
        location(BftKind::CHECKPOINT_DIR)
    );
    assert_eq!(marker.log_path, location(BftKind::LOG_DIR));
    assert_eq!(marker.backup_log_path, location(BftKind::LOG_DIR));
    assert_eq!((marker.gen_low, marker.gen_high), (3, 7));
    let database = format!("{}\\ntds.dit", location(BftKind::NTDS_DATABASE));
    assert_eq!(
        marker.mappings,
        [RestoreMapping {
            database_name: Some(database.clone()),
            new_database_name: Some(database),
        }]
    );
    assert!(
        !marker.blocks_startup(),
        "DsRestoreRegisterComplete(S_OK) completed the restore: {marker:?}"
    );
}

#[test]
fn ntbackup_c_backs_up_the_mock_dc_and_its_files_hash_as_the_servers() {
    ntbackup_backs_up_the_mock_dc(Checker::Sanitizers);
}

#[test]
fn contract_c_passes_every_check() {
    contract_passes(Checker::Sanitizers);
}

#[test]
fn restore_c_registers_a_restore_on_the_mock_dc_in_restore_mode() {
    restore_registers_on_the_mock_dc(Checker::Sanitizers);
}

#[test]
#[ignore = "needs valgrind; run by `cargo xtask ci` (step ffi)"]
fn ntbackup_c_under_valgrind() {
    ntbackup_backs_up_the_mock_dc(Checker::Valgrind);
}

#[test]
#[ignore = "needs valgrind; run by `cargo xtask ci` (step ffi)"]
fn contract_c_under_valgrind() {
    contract_passes(Checker::Valgrind);
}

#[test]
#[ignore = "needs valgrind; run by `cargo xtask ci` (step ffi)"]
fn restore_c_under_valgrind() {
    restore_registers_on_the_mock_dc(Checker::Valgrind);
}

/// The Python `ctypes` example of the README, as it is written there, against the mock: it
/// backs up the files `DsBackupGetDatabaseNames` names, and they hash as the server's.
#[test]
#[ignore = "needs python3; run by `cargo xtask ci` (step ffi)"]
fn the_readmes_python_example_backs_up_the_mock_dc() {
    let dc = start_dc();
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(readme).unwrap();
    let script = readme
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README has a Python example");
    let temp = tempfile::tempdir().unwrap();
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .current_dir(temp.path())
        .env("LD_LIBRARY_PATH", library_dir())
        .env("DC", "127.0.0.1")
        .env("DC_PASSWORD", PASSWORD)
        .env(
            "NTDSBCLI_EPM_PORT",
            dc.server.local_addr().port().to_string(),
        )
        .output()
        .expect("python3 runs");
    assert_success("python3", &output);
    let mut written: Vec<String> = std::fs::read_dir(temp.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    written.sort_unstable();
    assert_eq!(written, ["ntds.dit", "ntds.pat"]);
    for name in written {
        let file = dc.sample.file(&name).unwrap();
        let sha256 = dsbackup_mock::sha256_file(&temp.path().join(&name)).unwrap();
        assert_eq!(sha256, file.sha256, "{name}");
    }
    assert_eq!(dc.server.dc().active_backup(), None, "DsBackupEnd ended it");
}
