//! `cargo xtask vectors [--check]`: the vectors an independent encoder (impacket) produces.
//!
//! Each `scripts/vectors/*.py` is run as `python3 SCRIPT OUTDIR` and writes its files under
//! OUTDIR with the same relative paths they have under `fixtures/`. Plain `vectors` regenerates
//! the committed files; `--check` writes into a temporary directory and fails unless every file
//! produced equals the committed one byte for byte: the committed vectors are reproducible.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, bail, ensure};

use crate::args::Args;
use crate::setup::{self, Needs};
use crate::sh;

const SCRIPTS: &str = "scripts/vectors";
const FIXTURES: &str = "fixtures";

pub(crate) fn run(mut args: Args) -> Result<()> {
    let check_only = args.flag("--check");
    let no_install = args.flag("--no-install");
    args.finish()?;
    vectors(check_only, sh::installs_allowed(no_install))
}

pub(crate) fn vectors(check_only: bool, installs_allowed: bool) -> Result<()> {
    let scripts = sh::files_with_suffix(Path::new(SCRIPTS), ".py")?;
    if scripts.is_empty() {
        println!("no {SCRIPTS}/*.py yet: nothing to do");
        return Ok(());
    }
    setup::ensure(
        Needs {
            impacket: true,
            ..Needs::default()
        },
        installs_allowed,
    )?;
    let temp = sh::TempDir::new("vectors")?;
    let out = if check_only {
        temp.path()
    } else {
        Path::new(FIXTURES)
    };
    for script in &scripts {
        sh::run(Command::new("python3").arg(script).arg(out))?;
    }
    if !check_only {
        println!("{} scripts run into {FIXTURES}/", scripts.len());
        return Ok(());
    }
    let produced = sh::walk(temp.path())?;
    ensure!(
        !produced.is_empty(),
        "the scripts in {SCRIPTS} produced no file"
    );
    let mut problems = Vec::new();
    for file in &produced {
        let relative = file
            .strip_prefix(temp.path())
            .context("a produced file outside OUTDIR")?;
        let committed = Path::new(FIXTURES).join(relative);
        let new = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        match std::fs::read(&committed) {
            Ok(old) => {
                if let Some(difference) = first_difference(&old, &new) {
                    problems.push(format!("{}: {difference}", committed.display()));
                }
            }
            Err(_) => problems.push(format!(
                "{}: produced but not committed",
                committed.display()
            )),
        }
    }
    if !problems.is_empty() {
        bail!(
            "committed vectors differ from what the scripts produce (run `cargo xtask vectors`):\n{}",
            problems.join("\n")
        );
    }
    println!(
        "{} files reproduced byte for byte by {} scripts",
        produced.len(),
        scripts.len()
    );
    Ok(())
}

/// Where two byte strings first differ, described; `None` if they are equal.
fn first_difference(old: &[u8], new: &[u8]) -> Option<String> {
    if old == new {
        return None;
    }
    let at = old
        .iter()
        .zip(new)
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| old.len().min(new.len()));
    Some(format!(
        "differs from byte {at} (committed {} bytes, produced {} bytes)",
        old.len(),
        new.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_the_first_offset() {
        assert_eq!(first_difference(b"abc", b"abc"), None);
        assert_eq!(
            first_difference(b"abc", b"abd").as_deref(),
            Some("differs from byte 2 (committed 3 bytes, produced 3 bytes)")
        );
        assert_eq!(
            first_difference(b"ab", b"abc").as_deref(),
            Some("differs from byte 2 (committed 2 bytes, produced 3 bytes)")
        );
    }
}
