//! `cargo xtask bench --load`: the server under load and attack over loopback
//! (`crates/dsbackup-transport/examples/load.rs`): 1,000 authenticated associations making
//! calls while 1,000 hostile sockets attack the same server (once with an attacker who
//! reconnects every socket the server closes), then 250 connections each holding a 1 MiB
//! partial request. Each prints one JSON line, shown here as a table.

use anyhow::{Context as _, Result};
use serde_json::Value;

use crate::sh;

/// Runs both scenarios and prints their figures.
pub(crate) fn run() -> Result<()> {
    for (title, args) in [
        // A table of 1500 associations for 2000 sockets: hostile ones must make room.
        ("load and attack", ["attack", "1000", "1000", "1500", ""]),
        // The same, the attacker connecting again as soon as a socket of his is closed.
        (
            "load and attack, attackers reconnecting",
            ["attack", "1000", "1000", "1500", "churn"],
        ),
        // A table large enough for all: the cost of the attack alone.
        (
            "load and attack, no eviction",
            ["attack", "1000", "1000", "2100", ""],
        ),
        ("partial requests", ["partial", "250", "", "", ""]),
    ] {
        let json = sh::read(
            sh::cargo()
                .args([
                    "run",
                    "--release",
                    "--locked",
                    "-p",
                    "dsbackup-transport",
                    "--example",
                    "load",
                    "--",
                ])
                .args(args.iter().filter(|arg| !arg.is_empty())),
        )?;
        let line = json
            .lines()
            .rev()
            .find(|line| line.starts_with('{'))
            .context("the load example printed no JSON")?;
        let result: Value = serde_json::from_str(line).context("the load example's JSON")?;
        print!("{}", table(title, &result));
    }
    Ok(())
}

fn table(title: &str, result: &Value) -> String {
    let mut out = format!("\n{title}\n");
    if let Some(fields) = result.as_object() {
        for (key, value) in fields {
            out.push_str(&format!("  {key:<28} {value}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_figure_gets_a_row() {
        let result = serde_json::json!({"calls_ok": 10000, "server_peak_rss_mib": 88.5});
        let text = table("load", &result);
        assert!(text.contains("calls_ok") && text.contains("10000"));
        assert!(text.contains("server_peak_rss_mib") && text.contains("88.5"));
    }
}
