//! `cargo xtask bench`: the criterion benches, and each throughput against memcpy.
//!
//! Absolute numbers depend on the machine; the ratio to a plain memcpy of the same bytes, measured
//! in the same run, says how far a decoder or encoder is from the speed of light. Each bench group
//! that wants a ratio carries a `memcpy` benchmark with the same throughput (same parameter).

use std::path::Path;
use std::time::SystemTime;

use anyhow::{Context as _, Result};
use serde_json::Value;

use crate::sh;

/// One benchmark's result as criterion left it in `target/criterion/.../new/`.
#[derive(Debug, Clone, PartialEq)]
struct Result1 {
    group: String,
    /// `group/function/value`.
    id: String,
    value: Option<String>,
    /// Mean time per iteration, ns.
    mean_ns: f64,
    /// Bytes per iteration, if the benchmark declares a byte throughput.
    bytes: Option<f64>,
}

impl Result1 {
    fn bytes_per_sec(&self) -> Option<f64> {
        let bytes = self.bytes?;
        (self.mean_ns > 0.0).then(|| bytes * 1e9 / self.mean_ns)
    }

    fn is_memcpy(&self) -> bool {
        self.id.contains("memcpy")
    }
}

pub(crate) fn run() -> Result<()> {
    let started = SystemTime::now();
    let meta = sh::metadata()?;
    let mut benches = Vec::new();
    for package in meta
        .get("packages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = package
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        for target in package
            .get("targets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let is_bench = target
                .get("kind")
                .and_then(Value::as_array)
                .is_some_and(|kinds| kinds.iter().any(|k| k == "bench"));
            if let (true, Some(bench)) = (is_bench, target.get("name").and_then(Value::as_str)) {
                benches.push((name.to_owned(), bench.to_owned()));
            }
        }
    }
    if benches.is_empty() {
        println!("no bench targets yet (e.g. crates/dsbackup-proto/benches/pdu.rs): nothing to do");
        return Ok(());
    }
    for (package, bench) in &benches {
        sh::run(sh::cargo().args(["bench", "--locked", "-p", package, "--bench", bench]))?;
    }
    let results = collect(&sh::target_dir()?.join("criterion"), Some(started))?;
    print!("{}", table(&results));
    backup_throughput()
}

/// The backup over loopback at each auth level, against a plain TCP copy in the same run
/// (`crates/dsbackup-cli/examples/backup_throughput.rs` prints one JSON document).
fn backup_throughput() -> Result<()> {
    let json = sh::read(sh::cargo().args([
        "run",
        "--release",
        "--locked",
        "-p",
        "dsbackup-cli",
        "--example",
        "backup_throughput",
        "--",
        "1024",
    ]))?;
    let line = json
        .lines()
        .rev()
        .find(|line| line.starts_with('{'))
        .context("backup_throughput printed no JSON")?;
    let result: Value = serde_json::from_str(line).context("backup_throughput's JSON")?;
    print!("{}", throughput_table(&result));
    Ok(())
}

fn throughput_table(result: &Value) -> String {
    let number = |value: &Value, key: &str| value.get(key).and_then(Value::as_f64);
    let mut out = format!(
        "\nbackup of {} bytes over loopback; each level's reads alternate with plain TCP copies\n\
         {:<10}  {:>10}  {:>15}  {:>19}  {:>21}\n",
        result.get("bytes").and_then(Value::as_u64).unwrap_or(0),
        "auth",
        "read MiB/s",
        "plain TCP MiB/s",
        "ratio-to-plain-tcp",
        "backup_to_dir MiB/s"
    );
    for level in result
        .get("levels")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let cell = |key: &str, digits: usize| {
            number(level, key).map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
        };
        out.push_str(&format!(
            "{:<10}  {:>10}  {:>15}  {:>19}  {:>21}\n",
            level.get("auth").and_then(Value::as_str).unwrap_or("?"),
            cell("read_mib_s", 1),
            cell("plain_tcp_mib_s", 1),
            cell("read_ratio_to_plain_tcp", 3),
            cell("backup_to_dir_mib_s", 1),
        ));
    }
    if let Some(rss) = number(result, "peak_rss_mib") {
        out.push_str(&format!(
            "peak RSS {rss:.1} MiB (mock server and client in one process)\n"
        ));
    }
    out
}

/// Every result under `dir` written at or after `since`.
fn collect(dir: &Path, since: Option<SystemTime>) -> Result<Vec<Result1>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut results = Vec::new();
    for file in sh::walk(dir)? {
        if !file.ends_with("new/benchmark.json") {
            continue;
        }
        let estimates = file.with_file_name("estimates.json");
        let fresh = std::fs::metadata(&estimates)
            .and_then(|m| m.modified())
            .is_ok_and(|modified| since.is_none_or(|since| modified >= since));
        if !fresh {
            continue;
        }
        let read = |path: &Path| -> Result<Value> {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("cannot parse {}", path.display()))
        };
        if let Some(result) = parse(&read(&file)?, &read(&estimates)?) {
            results.push(result);
        }
    }
    results.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(results)
}

/// One result from criterion's `benchmark.json` and `estimates.json`.
fn parse(benchmark: &Value, estimates: &Value) -> Option<Result1> {
    let text = |key: &str| {
        benchmark
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let throughput = benchmark.get("throughput");
    let bytes = throughput
        .and_then(|t| t.get("Bytes").or_else(|| t.get("BytesDecimal")))
        .or_else(|| throughput?.get("ElementsAndBytes")?.get("bytes"))
        .and_then(Value::as_f64);
    Some(Result1 {
        group: text("group_id")?,
        id: text("full_id")?,
        value: text("value_str"),
        mean_ns: estimates.pointer("/mean/point_estimate")?.as_f64()?,
        bytes,
    })
}

/// The memcpy result `result` is compared with: same group and parameter, else same group,
/// else any memcpy of the run.
fn baseline<'a>(result: &Result1, all: &'a [Result1]) -> Option<&'a Result1> {
    let memcpy = || all.iter().filter(|r| r.is_memcpy() && r.bytes.is_some());
    memcpy()
        .find(|r| r.group == result.group && r.value == result.value)
        .or_else(|| memcpy().find(|r| r.group == result.group))
        .or_else(|| memcpy().next())
}

fn table(results: &[Result1]) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let width = results.iter().map(|r| r.id.len()).max().unwrap_or(2).max(2);
    let mut out = format!(
        "{:<width$}  {:>10}  {:>15}\n",
        "id", "MiB/s", "ratio-to-memcpy"
    );
    for result in results {
        let rate = result.bytes_per_sec();
        let mib = rate.map_or_else(|| "-".to_owned(), |r| format!("{:.1}", r / MIB));
        let ratio = rate
            .zip(baseline(result, results).and_then(Result1::bytes_per_sec))
            .map_or_else(|| "-".to_owned(), |(r, base)| format!("{:.3}", r / base));
        out.push_str(&format!("{:<width$}  {mib:>10}  {ratio:>15}\n", result.id));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(id: &str, value: Option<&str>, mean_ns: f64, bytes: Option<f64>) -> Result1 {
        Result1 {
            group: id.split('/').next().unwrap().to_owned(),
            id: id.to_owned(),
            value: value.map(str::to_owned),
            mean_ns,
            bytes,
        }
    }

    #[test]
    fn criterion_files_parse() {
        let benchmark: Value = serde_json::from_str(
            r#"{"group_id":"pdu","function_id":"decode_request","value_str":"4096",
                "throughput":{"Bytes":4096},"full_id":"pdu/decode_request/4096",
                "directory_name":"pdu/decode_request/4096","title":"pdu/decode_request/4096"}"#,
        )
        .unwrap();
        let estimates: Value =
            serde_json::from_str(r#"{"mean":{"point_estimate":1000.0,"standard_error":1.0}}"#)
                .unwrap();
        let parsed = parse(&benchmark, &estimates).unwrap();
        assert_eq!(
            parsed,
            result(
                "pdu/decode_request/4096",
                Some("4096"),
                1000.0,
                Some(4096.0)
            )
        );
        assert_eq!(parsed.bytes_per_sec(), Some(4096.0e6));
    }

    #[test]
    fn ratios_use_the_memcpy_of_the_same_group_and_size() {
        let results = vec![
            result("pdu/decode/4096", Some("4096"), 2000.0, Some(4096.0)),
            result("pdu/memcpy/4096", Some("4096"), 100.0, Some(4096.0)),
            result("pdu/memcpy/64", Some("64"), 1.0, Some(64.0)),
            result("ndr/count", None, 5.0, None),
        ];
        assert_eq!(
            baseline(&results[0], &results).map(|r| r.id.as_str()),
            Some("pdu/memcpy/4096")
        );
        let table = table(&results);
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("pdu/decode/4096") && l.ends_with("0.050")),
            "{table}"
        );
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("ndr/count") && l.ends_with('-')),
            "{table}"
        );
    }

    #[test]
    fn stale_results_are_left_out() {
        let temp = sh::TempDir::new("bench-test").unwrap();
        let dir = temp.path().join("pdu/memcpy/new");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("benchmark.json"),
            r#"{"group_id":"pdu","full_id":"pdu/memcpy","throughput":{"Bytes":8}}"#,
        )
        .unwrap();
        std::fs::write(
            dir.join("estimates.json"),
            r#"{"mean":{"point_estimate":2.0}}"#,
        )
        .unwrap();
        assert_eq!(collect(temp.path(), None).unwrap().len(), 1);
        let later = SystemTime::now() + std::time::Duration::from_secs(3600);
        assert!(collect(temp.path(), Some(later)).unwrap().is_empty());
    }

    #[test]
    fn backup_throughput_prints_one_row_per_auth_level() {
        let result: Value = serde_json::from_str(
            r#"{"bytes":1073741824,"plain_tcp_mib_s":2000.0,"peak_rss_mib":40.5,
                "levels":[{"auth":"none","read_mib_s":1800.0,"read_ratio_to_plain_tcp":0.9,
                           "plain_tcp_mib_s":2000.0,"backup_to_dir_mib_s":700.0},
                          {"auth":"privacy","read_mib_s":200.0,"read_ratio_to_plain_tcp":0.1,
                           "backup_to_dir_mib_s":150.0}]}"#,
        )
        .unwrap();
        let table = throughput_table(&result);
        assert!(table.contains("2000.0"), "{table}");
        assert!(table.contains("none"), "{table}");
        assert!(table.contains("0.900"), "{table}");
        assert!(table.contains("privacy"), "{table}");
        assert!(table.contains("peak RSS 40.5 MiB"), "{table}");
    }
}
