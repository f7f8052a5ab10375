//! `cargo xtask check deps`: the dependency direction of ARCHITECTURE.md, as a check.
//!
//! `proto` <- `ntlm` <- `transport` <- `client` <- `cli`, and `transport` <- `mock` <- `cli`;
//! `client` and `mock` never depend on each other; `proto` and `ntlm` stay sans-IO (no async
//! runtime, sockets or randomness anywhere in their normal dependency graph); libraries report
//! typed errors, so none of them uses `anyhow`. Only crates that exist are checked.

use std::collections::BTreeSet;

use anyhow::{Context as _, Result, bail};

use crate::sh;

/// Which workspace crates each crate may reach through normal dependencies.
const MAY_USE: &[(&str, &[&str])] = &[
    ("dsbackup-proto", &[]),
    ("dsbackup-ntlm", &["dsbackup-proto"]),
    ("dsbackup-krb", &["dsbackup-proto"]),
    (
        "dsbackup-transport",
        &["dsbackup-proto", "dsbackup-ntlm", "dsbackup-krb"],
    ),
    (
        "dsbackup-client",
        &[
            "dsbackup-proto",
            "dsbackup-ntlm",
            "dsbackup-krb",
            "dsbackup-transport",
        ],
    ),
    (
        "dsbackup-mock",
        &[
            "dsbackup-proto",
            "dsbackup-ntlm",
            "dsbackup-krb",
            "dsbackup-transport",
        ],
    ),
    // libntdsbcli: the C API over the client.
    (
        "dsbackup-ffi",
        &[
            "dsbackup-proto",
            "dsbackup-ntlm",
            "dsbackup-krb",
            "dsbackup-transport",
            "dsbackup-client",
        ],
    ),
    (
        "dsbackup-cli",
        &[
            "dsbackup-proto",
            "dsbackup-ntlm",
            "dsbackup-krb",
            "dsbackup-transport",
            "dsbackup-client",
            "dsbackup-mock",
        ],
    ),
    // The integration tests use client and mock as dev-dependencies only.
    ("dsbackup-tests", &[]),
    ("xtask", &[]),
];

/// Crates that must not do I/O, read the clock or draw randomness.
const SANS_IO: &[&str] = &["dsbackup-proto", "dsbackup-ntlm", "dsbackup-krb"];

/// Crates that would bring an async runtime, sockets or randomness.
const NOT_SANS_IO: &[&str] = &[
    "tokio",
    "tokio-util",
    "async-std",
    "smol",
    "mio",
    "socket2",
    "rand",
    "getrandom",
];

/// Library crates: typed errors (thiserror), never `anyhow`.
const LIBRARIES: &[&str] = &[
    "dsbackup-proto",
    "dsbackup-ntlm",
    "dsbackup-krb",
    "dsbackup-transport",
    "dsbackup-client",
    "dsbackup-mock",
    "dsbackup-ffi",
];

/// The one crate that may use `unsafe` (the C ABI): it overrides the workspace's
/// `unsafe_code = "forbid"` in a lint table of its own, which must otherwise equal the
/// workspace's; every other crate takes the workspace's lints.
const UNSAFE_CRATE: &str = "dsbackup-ffi";

pub(crate) fn check() -> Result<()> {
    let meta = sh::metadata()?;
    let packages = meta
        .get("packages")
        .and_then(serde_json::Value::as_array)
        .context("`cargo metadata` lists no packages")?;
    let members: BTreeSet<&str> = packages
        .iter()
        .filter_map(|p| p.get("name").and_then(serde_json::Value::as_str))
        .collect();

    let mut violations = Vec::new();
    for package in packages {
        let Some(name) = package.get("name").and_then(serde_json::Value::as_str) else {
            continue;
        };
        let Some(&(_, may_use)) = MAY_USE.iter().find(|(krate, _)| *krate == name) else {
            println!("{name}: no rule for this crate (add one to xtask/src/deps.rs)");
            continue;
        };
        let reached = normal_dependencies(name)?;
        let mut bad: Vec<&str> = Vec::new();
        for dep in &reached {
            let forbidden_member =
                members.contains(dep.as_str()) && !may_use.contains(&dep.as_str());
            let forbidden_io = SANS_IO.contains(&name) && NOT_SANS_IO.contains(&dep.as_str());
            if forbidden_member || forbidden_io {
                bad.push(dep);
            }
        }
        if LIBRARIES.contains(&name) && direct_normal_dependencies(package).any(|d| d == "anyhow") {
            violations.push(format!(
                "{name} depends on anyhow: libraries return typed errors"
            ));
        }
        for dep in &bad {
            let why = if members.contains(dep) {
                format!(
                    "{name} must not depend on {dep} (allowed: {})",
                    list(may_use)
                )
            } else {
                format!("{name} must stay sans-IO but reaches {dep}")
            };
            let path = sh::read(sh::cargo().args([
                "tree",
                "-p",
                name,
                "-e",
                "normal",
                "--all-features",
                "--invert",
                dep,
            ]))
            .unwrap_or_default();
            violations.push(format!("{why}:\n{path}"));
        }
        let workspace_deps: Vec<&str> = reached
            .iter()
            .map(String::as_str)
            .filter(|d| members.contains(d))
            .collect();
        println!(
            "{name}: {} normal dependencies, workspace crates: {}{}",
            reached.len(),
            list(&workspace_deps),
            if SANS_IO.contains(&name) {
                ", sans-IO"
            } else {
                ""
            },
        );
    }
    violations.extend(unsafe_rule(packages)?);
    if !violations.is_empty() {
        bail!("dependency rules broken:\n{}", violations.join("\n"));
    }
    println!("dependency direction holds");
    Ok(())
}

/// The lint rule: `unsafe_code = "forbid"` holds for every crate but [`UNSAFE_CRATE`], and
/// that crate's lints are the workspace's with `unsafe` allowed (and documented: clippy's
/// `undocumented_unsafe_blocks` denied). The broken rules, one line each.
fn unsafe_rule(packages: &[serde_json::Value]) -> Result<Vec<String>> {
    let root = std::fs::read_to_string("Cargo.toml").context("cannot read Cargo.toml")?;
    if !root.contains("unsafe_code = \"forbid\"") {
        return Ok(vec![
            "the workspace's lints no longer forbid unsafe_code".to_owned(),
        ]);
    }
    let workspace_lints = lint_lines(&root, "[workspace.lints.");
    let mut broken = Vec::new();
    for package in packages {
        let (Some(name), Some(manifest)) = (
            package.get("name").and_then(serde_json::Value::as_str),
            package
                .get("manifest_path")
                .and_then(serde_json::Value::as_str),
        ) else {
            continue;
        };
        let text =
            std::fs::read_to_string(manifest).with_context(|| format!("cannot read {manifest}"))?;
        if name != UNSAFE_CRATE {
            if !text.contains("[lints]\nworkspace = true") {
                broken.push(format!(
                    "{name} does not take the workspace's lints ([lints] workspace = true)"
                ));
            }
            continue;
        }
        let own = lint_lines(&text, "[lints.");
        for line in &workspace_lints {
            let expected = if line.starts_with("unsafe_code") {
                "unsafe_code = \"allow\"".to_owned()
            } else {
                line.clone()
            };
            if !own.contains(&expected) {
                broken.push(format!(
                    "{name}'s lints lack `{expected}` (the workspace has it)"
                ));
            }
        }
        if !own.contains(&"undocumented_unsafe_blocks = \"deny\"".to_owned()) {
            broken.push(format!(
                "{name} must deny clippy::undocumented_unsafe_blocks"
            ));
        }
    }
    Ok(broken)
}

/// The `key = value` lines of the lint tables whose headers start with `prefix`.
fn lint_lines(manifest: &str, prefix: &str) -> Vec<String> {
    let mut inside = false;
    let mut lines = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line.starts_with(prefix);
        } else if inside && line.contains('=') && !line.starts_with('#') {
            lines.push(line.to_owned());
        }
    }
    lines
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// The direct non-dev, non-build dependencies `cargo metadata` lists for a package.
fn direct_normal_dependencies(package: &serde_json::Value) -> impl Iterator<Item = &str> {
    package
        .get("dependencies")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter(|d| d.get("kind").is_none_or(serde_json::Value::is_null))
        .filter_map(|d| d.get("name").and_then(serde_json::Value::as_str))
}

/// Every crate `krate` reaches through normal dependencies, with all its features on.
fn normal_dependencies(krate: &str) -> Result<BTreeSet<String>> {
    let tree = sh::read(sh::cargo().args([
        "tree",
        "--locked",
        "-p",
        krate,
        "-e",
        "normal",
        "--all-features",
        "--prefix",
        "none",
        "--format",
        "{p}",
    ]))?;
    Ok(parse_tree(&tree, krate))
}

/// Package names out of `cargo tree --prefix none --format {p}` lines, the root left out.
fn parse_tree(tree: &str, root: &str) -> BTreeSet<String> {
    tree.lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != root)
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_lines_become_names_without_the_root() {
        let tree = "dsbackup-ntlm v0.1.0 (/w/crates/dsbackup-ntlm)\n\
                    dsbackup-proto v0.1.0 (/w/crates/dsbackup-proto)\n\
                    bytes v1.10.1\n\
                    bytes v1.10.1 (*)\n";
        let names = parse_tree(tree, "dsbackup-ntlm");
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            ["bytes", "dsbackup-proto"]
        );
    }

    #[test]
    fn the_rules_forbid_what_the_design_forbids() {
        let may_use = |krate: &str| MAY_USE.iter().find(|(k, _)| *k == krate).unwrap().1;
        assert!(!may_use("dsbackup-client").contains(&"dsbackup-mock"));
        assert!(!may_use("dsbackup-mock").contains(&"dsbackup-client"));
        assert!(may_use("dsbackup-proto").is_empty());
        assert!(may_use("xtask").is_empty());
        assert!(NOT_SANS_IO.contains(&"tokio"));
    }
}
