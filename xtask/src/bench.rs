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

pub(crate) fn run(mut args: crate::args::Args) -> Result<()> {
    let backup_only = args.flag("--backup-only");
    let size_mib = args.number("--size")?.unwrap_or(1024);
    args.finish()?;
    if !backup_only {
        criterion_benches()?;
    }
    backup_throughput(size_mib)
}

/// Every criterion bench of the workspace, each throughput against memcpy's.
fn criterion_benches() -> Result<()> {
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
        println!("no bench targets yet (e.g. crates/dsbackup-proto/benches/pdu.rs)");
        return Ok(());
    }
    for (package, bench) in &benches {
        sh::run(sh::cargo().args(["bench", "--locked", "-p", package, "--bench", bench]))?;
    }
    let results = collect(&sh::target_dir()?.join("criterion"), Some(started))?;
    print!("{}", table(&results));
    Ok(())
}

/// The backup over loopback at each auth level and fragment size, with the bounds it is held
/// to (`crates/dsbackup-cli/examples/backup_throughput.rs` prints one JSON document; the bounds
/// come from the primitives it times in the same run, and from `openssl speed` when installed).
fn backup_throughput(size_mib: u64) -> Result<()> {
    let size = size_mib.to_string();
    let json = sh::read(sh::cargo().args([
        "run",
        "--release",
        "--locked",
        "-p",
        "dsbackup-cli",
        "--example",
        "backup_throughput",
        "--",
        &size,
    ]))?;
    let line = json
        .lines()
        .rev()
        .find(|line| line.starts_with('{'))
        .context("backup_throughput printed no JSON")?;
    let result: Value = serde_json::from_str(line).context("backup_throughput's JSON")?;
    let openssl = openssl_speed();
    print!("{}", throughput_table(&result, &openssl));
    Ok(())
}

/// The crypto primitives of the data path, as the JSON and `openssl speed` name them (the
/// last two openssl's only: together they stand for Kerberos's `KRB`).
const PRIMITIVES: [(&str, &str); 6] = [
    ("rc4", "rc4"),
    ("md5", "md5"),
    ("hmac_md5", "hmac(md5)"),
    ("sha256", "sha256"),
    ("aes256_cbc", "aes-256-cbc"),
    ("hmac_sha1", "hmac(sha1)"),
];
/// Kerberos's encryption of a message: AES-256-CTS and HMAC-SHA1-96 (the JSON times ours in
/// one; for openssl, AES-256-CBC plus HMAC-SHA1).
const KRB: &str = "aes256_cts_hmac_sha1";

/// Nanoseconds per byte of each primitive by `openssl speed` (16 KiB blocks, 1 s each, wall clock), where
/// `openssl` is installed; RC4 needs OpenSSL 3's legacy provider.
fn openssl_speed() -> Vec<(&'static str, f64)> {
    if !sh::on_path("openssl") {
        return Vec::new();
    }
    let mut speeds = Vec::new();
    for (key, name) in PRIMITIVES {
        let mut cmd = std::process::Command::new("openssl");
        // -elapsed: wall-clock time, as ours are timed (by default it divides by CPU time).
        cmd.args(["speed", "-elapsed", "-seconds", "1", "-bytes", "16384"]);
        match key {
            "rc4" => cmd.args(["-provider", "legacy", "-provider", "default", "-evp", name]),
            "hmac_md5" => cmd.args(["-hmac", "md5"]),
            "hmac_sha1" => cmd.args(["-hmac", "sha1"]),
            "aes256_cbc" => cmd.args(["-evp", name]),
            _ => cmd.arg(name),
        };
        cmd.stderr(std::process::Stdio::null());
        let Ok(output) = cmd.output() else { continue };
        let text = String::from_utf8_lossy(&output.stdout);
        if let Some(kbytes_per_sec) = parse_openssl_speed(&text) {
            // ns per byte = 1e9 / (1000 * k bytes per second).
            speeds.push((key, 1e6 / kbytes_per_sec));
        }
    }
    let ns = |key: &str| speeds.iter().find(|(k, _)| *k == key).map(|(_, ns)| *ns);
    if let (Some(aes), Some(hmac)) = (ns("aes256_cbc"), ns("hmac_sha1")) {
        speeds.push((KRB, aes + hmac));
    }
    speeds
}

/// The rate on the last line of `openssl speed` output (`md5  456144.41k`), in 1000s of bytes
/// per second.
fn parse_openssl_speed(text: &str) -> Option<f64> {
    let last = text.lines().rev().find(|line| !line.trim().is_empty())?;
    let rate = last.split_whitespace().last()?.strip_suffix('k')?;
    rate.parse().ok().filter(|rate: &f64| *rate > 0.0)
}

/// The bounds an auth level is held to: 1 / (the sum of its primitives' ns per byte).
fn bound_mib_s(per_byte_ns: &[(&str, f64)], auth: &str) -> Option<f64> {
    const MIB: f64 = 1024.0 * 1024.0;
    let needs: &[&str] = match auth {
        "privacy" => &["rc4", "md5", "sha256"],
        "krb-privacy" => &[KRB, "sha256"],
        "integrity" => &["md5", "sha256"],
        _ => return None,
    };
    let mut ns = 0.0;
    for need in needs {
        ns += per_byte_ns.iter().find(|(key, _)| key == need)?.1;
    }
    (ns > 0.0).then(|| 1e9 / ns / MIB)
}

fn throughput_table(result: &Value, openssl: &[(&'static str, f64)]) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let number = |value: &Value, key: &str| value.get(key).and_then(Value::as_f64);
    let ours: Vec<(&str, f64)> = PRIMITIVES
        .iter()
        .map(|(key, _)| *key)
        .chain([KRB])
        .filter_map(|key| Some((key, number(result.get("primitives")?, key)?)))
        .collect();
    let rate = |per_byte: &[(&str, f64)], key: &str| {
        per_byte.iter().find(|(k, _)| *k == key).map_or_else(
            || "-".to_owned(),
            |(_, ns)| format!("{:.0}", 1e9 / ns / MIB),
        )
    };
    let mut out = format!(
        "\nprimitives on this machine, this run (MiB/s)\n{:<20}  {:>8}  {:>8}\n",
        "primitive", "ours", "openssl"
    );
    for key in PRIMITIVES.iter().map(|(key, _)| *key).chain([KRB]) {
        out.push_str(&format!(
            "{key:<20}  {:>8}  {:>8}\n",
            rate(&ours, key),
            rate(openssl, key)
        ));
    }
    // The rc4 crate our RC4 is tested against, for comparison (the bounds use ours).
    if let Some(ns) = result
        .get("primitives")
        .and_then(|p| number(p, "rc4_crate"))
        .filter(|ns| *ns > 0.0)
    {
        out.push_str(&format!(
            "{:<20}  {:>8.0}  {:>8}\n",
            "rc4 crate",
            1e9 / ns / MIB,
            "-"
        ));
    }
    // What the NTLM sessions run, beside the primitives the bounds are made of: one 64 KiB
    // fragment sealed in one stitched pass, eight 8 KiB fragments signed or sealed as a batch.
    for (key, what) in [
        ("ntlm_seal_one", "seal 1 fragment"),
        ("ntlm_sign_batch8", "sign 8 as a batch"),
        ("ntlm_seal_batch8", "seal 8 as a batch"),
    ] {
        if let Some(ns) = result
            .get("primitives")
            .and_then(|p| number(p, key))
            .filter(|ns| *ns > 0.0)
        {
            out.push_str(&format!(
                "{what:<20}  {:>8.0}  {:>8}\n",
                1e9 / ns / MIB,
                "-"
            ));
        }
    }
    let bound = |per_byte: &[(&str, f64)], auth| {
        bound_mib_s(per_byte, auth).map_or_else(|| "-".to_owned(), |b| format!("{b:.0}"))
    };
    out.push_str(&format!(
        "bounds (MiB/s): integrity 1/(MD5+SHA-256) {} ours, {} openssl; \
         privacy 1/(RC4+MD5+SHA-256) {} ours, {} openssl; \
         krb-privacy 1/(AES-CTS+HMAC-SHA1+SHA-256) {} ours, {} openssl\n",
        bound(&ours, "integrity"),
        bound(openssl, "integrity"),
        bound(&ours, "privacy"),
        bound(openssl, "privacy"),
        bound(&ours, "krb-privacy"),
        bound(openssl, "krb-privacy"),
    ));
    out.push_str(&format!(
        "\nbackup of {} bytes to disk over loopback (SHA-256, write, fsync); best of {} runs\n\
         {:<6} {:<11} {:>7} {:>7} {:>13} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9}\n",
        result.get("bytes").and_then(Value::as_u64).unwrap_or(0),
        result.get("runs").and_then(Value::as_u64).unwrap_or(0),
        "frag",
        "auth",
        "MiB/s",
        "target",
        "ratio",
        "read/tcp",
        "cli CPU/G",
        "srv CPU/G",
        "cli RSS",
        "srv RSS",
        "base",
    ));
    for row in result
        .get("rows")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let cell = |key: &str, digits: usize| {
            number(row, key).map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
        };
        let auth = row.get("auth").and_then(Value::as_str).unwrap_or("?");
        let backup = number(row, "backup_mib_s");
        // none and connect: against the receive + SHA-256 + write baseline of the same run;
        // integrity and privacy: against the primitives' bound (ours / openssl's).
        let (target, ratio) = match bound_mib_s(&ours, auth) {
            Some(ours_bound) => {
                let theirs = bound_mib_s(openssl, auth);
                let ratio =
                    |b: f64| backup.map_or_else(|| "-".to_owned(), |v| format!("{:.2}", v / b));
                (
                    "0.8 bnd",
                    format!(
                        "{} / {}",
                        ratio(ours_bound),
                        theirs.map_or_else(|| "-".to_owned(), ratio)
                    ),
                )
            }
            None => (
                "1.0 base",
                backup
                    .zip(number(row, "baseline_mib_s"))
                    .map_or_else(|| "-".to_owned(), |(v, b)| format!("{:.2}", v / b)),
            ),
        };
        out.push_str(&format!(
            "{:<6} {auth:<11} {:>7} {target:>7} {ratio:>13} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9}\n",
            cell("frag", 0),
            cell("backup_mib_s", 1),
            cell("read_ratio_to_plain_tcp", 3),
            cell("client_cpu_s_per_gib", 2),
            cell("server_cpu_s_per_gib", 2),
            cell("client_peak_rss_mib", 1),
            cell("server_peak_rss_mib", 1),
            cell("baseline_mib_s", 1),
        ));
    }
    out.push_str(
        "ratio: none/connect to the receive+SHA-256+write baseline (base, MiB/s); \
         integrity/privacy to the bound, ours / openssl's. read/tcp: the reads alone against a \
         plain TCP copy. CPU in s per GiB, RSS peaks in MiB\n",
    );
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
    fn backup_throughput_prints_one_row_per_level_and_fragment_size() {
        let result: Value = serde_json::from_str(
            r#"{"bytes":1073741824,"runs":3,
                "primitives":{"rc4":2.0,"md5":1.5,"hmac_md5":1.6,"sha256":0.5},
                "rows":[{"frag":5840,"auth":"none","backup_mib_s":700.0,"baseline_mib_s":640.0,
                         "read_ratio_to_plain_tcp":0.9,"client_cpu_s_per_gib":1.25,
                         "server_cpu_s_per_gib":1.0,"client_peak_rss_mib":20.5,
                         "server_peak_rss_mib":30.0},
                        {"frag":65535,"auth":"privacy","backup_mib_s":200.0}]}"#,
        )
        .unwrap();
        let table = throughput_table(&result, &[("md5", 1.0), ("sha256", 1.0), ("rc4", 2.0)]);
        let line = |start: &str| {
            table
                .lines()
                .find(|l| l.starts_with(start))
                .unwrap_or_else(|| panic!("no {start} in {table}"))
                .to_owned()
        };
        // 1e9 / 4 ns per byte = 238 MiB/s: 200 is 0.84 of it; openssl's 4 ns gives the same.
        assert!(line("65535  privacy").contains("0.84 / 0.84"), "{table}");
        // 700 / 640 of the baseline.
        assert!(line("5840   none").contains("1.09"), "{table}");
        assert!(line("5840   none").contains("20.5"), "{table}");
        // integrity: 1e9 / 2 ns = 477 MiB/s ours, 1e9 / 2 ns openssl.
        assert!(
            line("bounds").contains("integrity 1/(MD5+SHA-256) 477 ours, 477 openssl"),
            "{table}"
        );
    }

    #[test]
    fn openssl_speed_output_parses() {
        let text = "Doing md5 for 1s on 16384 size blocks: 27841 md5's in 1.00s\n\
                    type          16384 bytes\nmd5             456144.41k\n";
        assert_eq!(parse_openssl_speed(text), Some(456_144.41));
        assert_eq!(parse_openssl_speed("RC4  0.00 \n"), None);
    }
}
