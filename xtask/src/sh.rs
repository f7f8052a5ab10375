//! Running programs: echo the command line, check the exit status, time a step.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

/// The workspace root (the parent of `xtask/`).
pub(crate) fn project_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// `path` relative to the current directory (the project root) when it is inside it.
pub(crate) fn shown(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|dir| path.strip_prefix(dir).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

/// `cargo`, the one that runs us when there is one.
pub(crate) fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// The command line as a shell would show it, environment first.
pub(crate) fn display(cmd: &Command) -> String {
    let mut words: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_string_lossy(), v?.to_string_lossy())))
        .collect();
    let program = Path::new(cmd.get_program());
    // `$CARGO` is an absolute path; `cargo` reads better and means the same.
    words.push(if program.file_stem() == Some(OsStr::new("cargo")) {
        "cargo".to_owned()
    } else {
        program.to_string_lossy().into_owned()
    });
    words.extend(cmd.get_args().map(|a| quote(&a.to_string_lossy())));
    words.join(" ")
}

fn quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=./,:+@%".contains(c))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Runs `cmd` with inherited output; fails unless it exits 0.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let line = display(cmd);
    println!("$ {line}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Runs `cmd` with its output captured, shown only if it fails.
pub(crate) fn run_quiet(cmd: &mut Command) -> Result<()> {
    let line = display(cmd);
    println!("$ {line}");
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot start `{line}`"))?;
    if !output.status.success() {
        bail!(
            "`{line}` failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Runs `cmd` and returns its stdout; stderr passes through. Fails unless it exits 0.
pub(crate) fn read(cmd: &mut Command) -> Result<String> {
    let line = display(cmd);
    let output = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start `{line}`"))?;
    if !output.status.success() {
        bail!("`{line}` failed ({})", output.status);
    }
    String::from_utf8(output.stdout).with_context(|| format!("`{line}` wrote non-UTF-8 output"))
}

/// Whether `cmd` runs and exits 0, all output discarded.
pub(crate) fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The first line `cmd` prints (stdout, else stderr), or `None` if it does not run.
pub(crate) fn first_line(cmd: &mut Command) -> Option<String> {
    let output = cmd.stdin(Stdio::null()).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = if output.stdout.is_empty() {
        output.stderr
    } else {
        output.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .map(str::to_owned)
}

/// Whether an executable called `name` is on `PATH`.
pub(crate) fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
}

/// Directories where Debian keeps daemons, missing from some users' `PATH`.
const SBIN: &[&str] = &["/usr/sbin", "/sbin"];

/// Whether `name` is on `PATH` or in an sbin directory.
pub(crate) fn on_path_or_sbin(name: &str) -> bool {
    on_path(name) || SBIN.iter().any(|dir| Path::new(dir).join(name).is_file())
}

/// `name` as a program to run: itself when on `PATH`, else its sbin path when there is one.
pub(crate) fn sbin_program(name: &str) -> PathBuf {
    if on_path(name) {
        return PathBuf::from(name);
    }
    SBIN.iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// `12.3s`.
pub(crate) fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Runs `f` as a named step: `==> NAME` before, `==> NAME (12.3s)` or `==> NAME FAILED (…)` after.
pub(crate) fn step<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<(T, Duration)> {
    println!("\n==> {name}");
    let start = Instant::now();
    let result = f();
    let took = start.elapsed();
    match result {
        Ok(value) => {
            println!("==> {name} ({})", secs(took));
            Ok((value, took))
        }
        Err(e) => {
            println!("==> {name} FAILED ({})", secs(took));
            Err(e.context(format!("step `{name}` failed")))
        }
    }
}

/// The workspace's target directory (honours `CARGO_TARGET_DIR` and config).
pub(crate) fn target_dir() -> Result<PathBuf> {
    let meta = metadata()?;
    meta.get("target_directory")
        .and_then(serde_json::Value::as_str)
        .map(PathBuf::from)
        .context("`cargo metadata` gave no target_directory")
}

/// `cargo metadata --no-deps`, parsed.
pub(crate) fn metadata() -> Result<serde_json::Value> {
    let text = read(
        cargo()
            .args([
                "metadata",
                "--no-deps",
                "--format-version",
                "1",
                "--offline",
            ])
            .stdin(Stdio::null()),
    )?;
    serde_json::from_str(&text).context("cannot parse `cargo metadata`")
}

/// The files directly in `dir` whose name ends with `suffix`, sorted; none if `dir` is missing.
pub(crate) fn files_with_suffix(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot list {}", dir.display()))?
            .path();
        if path.is_file() && path.to_string_lossy().ends_with(suffix) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Every file under `dir`, recursively, sorted.
pub(crate) fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in
            std::fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))?
        {
            let path = entry
                .with_context(|| format!("cannot list {}", d.display()))?
                .path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A fresh empty directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "dsbackup-xtask-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self(path))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort: a leftover temp dir is harmless.
        let _ignored = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether installing missing tools is allowed (`--no-install` / `XTASK_NO_INSTALL=1` say no).
pub(crate) fn installs_allowed(no_install_flag: bool) -> bool {
    !no_install_flag
        && std::env::var_os("XTASK_NO_INSTALL").is_none_or(|v| v.is_empty() || v == "0")
}
