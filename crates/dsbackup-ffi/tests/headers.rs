//! The headers agree with the library and the status table:
//! `include/ntdsbmsg.h` is generated from `spec/ntdsbmsg.tsv` (this test writes it when
//! `NTDSBCLI_BLESS=1`, and otherwise fails if the committed file differs), and every code and
//! BFT value `include/ntdsbcli.h` defines has the library's value.

#![cfg(test)]

use std::path::{Path, PathBuf};

use dsbackup_proto::BftKind;
use ntdsbcli::hresult::codes;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn include(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("include")
        .join(name)
}

/// `ntdsbmsg.h` as generated from the table.
fn generate_ntdsbmsg(tsv: &str) -> String {
    let mut out = String::from(
        "/*\n * ntdsbmsg.h: the status codes of the NTDS backup API (hr*), for Linux.\n *\n \
         * Generated from spec/ntdsbmsg.tsv by crates/dsbackup-ffi/tests/headers.rs \
         (NTDSBCLI_BLESS=1\n * cargo test -p dsbackup-ffi --test headers); do not edit.\n *\n \
         * SPDX-License-Identifier: MIT OR Apache-2.0\n */\n\
         #ifndef NTDSBMSG_H\n#define NTDSBMSG_H\n\n#include <stdint.h>\n\n\
         #ifndef _HRESULT_DEFINED\n#define _HRESULT_DEFINED\ntypedef int32_t HRESULT;\n#endif\n\n",
    );
    for line in tsv.lines().filter(|line| !line.starts_with('#')) {
        let mut fields = line.split('\t');
        let (Some(name), Some(hex)) = (fields.next(), fields.next()) else {
            continue;
        };
        let hex = hex.trim_start_matches("0x");
        out.push_str(&format!("#define {name} ((HRESULT)0x{hex}L)\n"));
    }
    out.push_str("\n#endif /* NTDSBMSG_H */\n");
    out
}

#[test]
fn ntdsbmsg_h_is_generated_from_the_status_table() {
    let tsv = std::fs::read_to_string(root().join("spec/ntdsbmsg.tsv")).unwrap();
    let generated = generate_ntdsbmsg(&tsv);
    assert_eq!(generated.matches("#define hr").count(), 187);
    let path = include("ntdsbmsg.h");
    if std::env::var_os("NTDSBCLI_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} differs from spec/ntdsbmsg.tsv: regenerate it with \
         NTDSBCLI_BLESS=1 cargo test -p dsbackup-ffi --test headers",
        path.display()
    );
}

/// The value of `#define NAME VALUE` in `header`, evaluated for the forms the header uses.
fn define(header: &str, name: &str) -> Option<i64> {
    let prefix = format!("#define {name} ");
    let value = header
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))?
        .trim();
    let value = value
        .trim_start_matches("((HRESULT)")
        .trim_end_matches(')')
        .trim_end_matches('L');
    let hex = |text: &str| i64::from_str_radix(text.trim_start_matches("0x"), 16).ok();
    if let Some(text) = value
        .strip_prefix("('\\x")
        .and_then(|v| v.strip_suffix('\''))
    {
        return hex(text);
    }
    if let Some((low, high)) = value
        .strip_prefix("('\\x")
        .and_then(|v| v.split_once("' | "))
    {
        let high = high.trim_end_matches(')');
        return Some(hex(low)? | define(header, high)?);
    }
    if value.starts_with("0x") {
        hex(value)
    } else {
        value.parse().ok()
    }
}

#[test]
fn ntdsbcli_h_defines_the_codes_and_bft_values_of_the_library() {
    let header = std::fs::read_to_string(include("ntdsbcli.h")).unwrap();
    for (name, value) in codes::ALL {
        let defined = define(&header, name).unwrap_or_else(|| panic!("{name} is not defined"));
        assert_eq!(
            i32::from_ne_bytes(u32::try_from(defined).unwrap().to_ne_bytes()),
            *value,
            "{name} in ntdsbcli.h is {defined:#x}"
        );
    }
    let kinds = [
        ("BFT_UNKNOWN", BftKind::UNKNOWN),
        ("BFT_LOG", BftKind::LOG),
        ("BFT_PATCH_FILE", BftKind::PATCH_FILE),
        ("BFT_NTDS_DATABASE", BftKind::NTDS_DATABASE),
        ("BFT_LOG_DIR", BftKind::LOG_DIR),
        ("BFT_CHECKPOINT_DIR", BftKind::CHECKPOINT_DIR),
    ];
    for (name, kind) in kinds {
        assert_eq!(define(&header, name), Some(i64::from(kind.0)), "{name}");
    }
    let types = [
        (
            "BACKUP_TYPE_FULL",
            dsbackup_proto::iface::ad_backup::BACKUP_TYPE_FULL,
        ),
        (
            "BACKUP_TYPE_LOGS_ONLY",
            dsbackup_proto::iface::ad_backup::BACKUP_TYPE_LOGS_ONLY,
        ),
        (
            "BACKUP_TYPE_INCREMENTAL",
            dsbackup_proto::iface::ad_backup::BACKUP_TYPE_INCREMENTAL,
        ),
        (
            "RESTORE_TYPE_CATCHUP",
            dsbackup_proto::iface::ad_restore::RESTORE_TYPE_CATCHUP,
        ),
    ];
    for (name, value) in types {
        assert_eq!(define(&header, name), Some(i64::from(value)), "{name}");
    }
}

#[test]
fn every_exported_function_is_declared_in_both_forms() {
    let header = std::fs::read_to_string(include("ntdsbcli.h")).unwrap();
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let exported: Vec<&str> = lib
        .split("extern \"C\" fn ")
        .skip(1)
        .filter_map(|rest| rest.split('(').next())
        .collect();
    let documented = [
        "DsBackupPrepare",
        "DsBackupGetDatabaseNames",
        "DsBackupOpenFile",
        "DsBackupGetBackupLogs",
        "DsRestoreGetDatabaseLocations",
        "DsRestorePrepare",
        "DsRestoreRegister",
        "DsSetCurrentBackupLog",
        "DsSetAuthIdentity",
        "DsIsNTDSOnline",
    ]
    .iter()
    .flat_map(|name| [format!("{name}A"), format!("{name}W")])
    .chain(
        [
            "DsBackupRead",
            "DsBackupClose",
            "DsBackupTruncateLogs",
            "DsBackupEnd",
            "DsBackupFree",
            "DsRestoreRegisterComplete",
            "DsRestoreEnd",
        ]
        .map(str::to_owned),
    )
    .collect::<Vec<_>>();
    assert_eq!(documented.len(), 27);
    for name in &documented {
        assert!(exported.contains(&name.as_str()), "{name} is not exported");
        assert!(
            header.contains(&format!(" {name}(")),
            "{name} is not declared"
        );
    }
    assert_eq!(exported.len(), documented.len(), "{exported:?}");
}
