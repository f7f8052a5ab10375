//! `cargo xtask install --prefix DIR [--profile release|dev]`: libntdsbcli for C programs.
//!
//! Builds `dsbackup-ffi` and puts under DIR: `lib/libntdsbcli.so`, `lib/libntdsbcli.a`,
//! `include/ntdsbcli.h`, `include/ntdsbmsg.h` and `lib/pkgconfig/ntdsbcli.pc`, so that
//! `PKG_CONFIG_PATH=DIR/lib/pkgconfig pkg-config --cflags --libs ntdsbcli` gives the flags
//! (`--static` adds what the static library needs from the system).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::args::Args;
use crate::sh;

/// What the static library needs from the system (`rustc --print native-static-libs` for a
/// library on std and tokio).
const STATIC_LIBS: &str = "-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc";

pub(crate) fn run(mut args: Args) -> Result<()> {
    let prefix = args
        .value("--prefix")?
        .context("give --prefix DIR (e.g. /usr/local)")?;
    let profile = args
        .value("--profile")?
        .unwrap_or_else(|| "release".to_owned());
    args.finish()?;
    install(Path::new(&prefix), &profile)?;
    Ok(())
}

/// Builds and installs into `prefix`; the pkg-config directory.
pub(crate) fn install(prefix: &Path, profile: &str) -> Result<PathBuf> {
    let out_dir = match profile {
        "release" => "release",
        "dev" => "debug",
        other => bail!("unknown profile `{other}`: release or dev"),
    };
    sh::run(sh::cargo().args([
        "build",
        "--locked",
        "-p",
        "dsbackup-ffi",
        "--lib",
        "--profile",
        profile,
    ]))?;
    let prefix = std::path::absolute(prefix)
        .with_context(|| format!("cannot resolve {}", prefix.display()))?;
    let built = sh::target_dir()?.join(out_dir);
    let lib = prefix.join("lib");
    let include = prefix.join("include");
    let pkgconfig = lib.join("pkgconfig");
    for dir in [&lib, &include, &pkgconfig] {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    for name in ["libntdsbcli.so", "libntdsbcli.a"] {
        copy(&built.join(name), &lib.join(name))?;
    }
    let headers = Path::new("crates/dsbackup-ffi/include");
    for name in ["ntdsbcli.h", "ntdsbmsg.h"] {
        copy(&headers.join(name), &include.join(name))?;
    }
    let pc = pkgconfig.join("ntdsbcli.pc");
    fs::write(&pc, pkg_config(&prefix))
        .with_context(|| format!("cannot write {}", pc.display()))?;
    println!("installed libntdsbcli under {}", prefix.display());
    Ok(pkgconfig)
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    fs::copy(from, to)
        .map(drop)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))
}

/// `ntdsbcli.pc` for a prefix.
fn pkg_config(prefix: &Path) -> String {
    format!(
        "prefix={}\n\
         libdir=${{prefix}}/lib\n\
         includedir=${{prefix}}/include\n\
         \n\
         Name: ntdsbcli\n\
         Description: The NTDS backup client API (ntdsbcli) for Linux, from dsbackup\n\
         Version: {}\n\
         Libs: -L${{libdir}} -lntdsbcli\n\
         Libs.private: {STATIC_LIBS}\n\
         Cflags: -I${{includedir}}\n",
        prefix.display(),
        env!("CARGO_PKG_VERSION"),
    )
}

/// Checks an installed prefix from C: `examples/c/ntbackup.c` compiles with the system's
/// `cc -Wall -Wextra -Werror` and the flags pkg-config gives, linked against the shared and
/// against the static library, and both binaries start (the usage message, exit status 2).
pub(crate) fn check_from_c(pkgconfig: &Path, out: &Path) -> Result<()> {
    let flags = |extra: &[&str]| -> Result<Vec<String>> {
        let text = sh::read(
            std::process::Command::new("pkg-config")
                .args(extra)
                .args(["--cflags", "--libs", "ntdsbcli"])
                .env("PKG_CONFIG_PATH", pkgconfig),
        )?;
        Ok(text.split_whitespace().map(str::to_owned).collect())
    };
    let lib = pkgconfig.parent().context("no lib directory")?;
    let shared = out.join("ntbackup");
    let static_ = out.join("ntbackup-static");
    let compile = |output: &Path, flags: Vec<String>, link: &[String]| {
        sh::run(
            std::process::Command::new("cc")
                .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-o"])
                .arg(output)
                .arg("examples/c/ntbackup.c")
                .args(flags)
                .args(link),
        )
    };
    compile(
        &shared,
        flags(&[])?,
        &[format!("-Wl,-rpath,{}", lib.display())],
    )?;
    let mut static_flags = flags(&["--static"])?;
    // Link the archive itself, not the shared library beside it.
    for flag in &mut static_flags {
        if flag == "-lntdsbcli" {
            *flag = lib.join("libntdsbcli.a").display().to_string();
        }
    }
    compile(&static_, static_flags, &[])?;
    for program in [&shared, &static_] {
        let output = std::process::Command::new(program)
            .output()
            .with_context(|| format!("cannot run {}", program.display()))?;
        if output.status.code() != Some(2) {
            bail!(
                "{} without arguments exited with {} instead of its usage (2)",
                program.display(),
                output.status
            );
        }
    }
    println!("ntbackup.c builds against the installed shared and static libraries");
    Ok(())
}
