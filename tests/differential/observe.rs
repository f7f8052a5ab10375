//! A reply, read field by field into `name = value` lines; values random by nature are replaced
//! by their role.

use crate::wire::{Reader, ptype, syntax_name};

/// Values compared by role: association groups by order of appearance, the secondary address
/// as "the listening port" when it is one.
#[derive(Debug, Default)]
pub(crate) struct Roles {
    pub(crate) groups: Vec<u32>,
    pub(crate) port: u16,
}

impl Roles {
    pub(crate) fn group(&mut self, id: u32) -> String {
        if id == 0 {
            return "0".to_owned();
        }
        let n = match self.groups.iter().position(|&g| g == id) {
            Some(n) => n,
            None => {
                self.groups.push(id);
                self.groups.len() - 1
            }
        };
        format!("group#{}", n + 1)
    }

    /// The id of group `#n` (1-based) seen so far.
    pub(crate) fn group_id(&self, n: usize) -> Option<u32> {
        self.groups.get(n.checked_sub(1)?).copied()
    }
}

fn ptype_name(p: u8) -> String {
    match p {
        ptype::REQUEST => "request".into(),
        ptype::RESPONSE => "response".into(),
        ptype::FAULT => "fault".into(),
        ptype::BIND_ACK => "bind_ack".into(),
        ptype::BIND_NAK => "bind_nak".into(),
        ptype::ALTER_CONTEXT_RESP => "alter_context_resp".into(),
        ptype::SHUTDOWN => "shutdown".into(),
        other => format!("ptype {other}"),
    }
}

fn flag_names(flags: u8) -> String {
    let names = [
        "FIRST",
        "LAST",
        "PENDING_CANCEL|SUPPORT_HEADER_SIGN",
        "RESERVED_1",
        "CONC_MPX",
        "DID_NOT_EXECUTE",
        "MAYBE",
        "OBJECT_UUID",
    ];
    let set: Vec<&str> = names
        .iter()
        .enumerate()
        .filter(|(bit, _)| flags & (1 << bit) != 0)
        .map(|(_, name)| *name)
        .collect();
    if set.is_empty() {
        "-".to_owned()
    } else {
        set.join("|")
    }
}

/// The fields of one reply PDU, each a line `name = value`.
pub(crate) fn observe(frame: &[u8], roles: &mut Roles) -> Vec<String> {
    let mut out = Vec::new();
    let big_endian = frame.get(4).is_some_and(|d| d & 0x10 == 0);
    let r = Reader {
        bytes: frame,
        big_endian,
    };
    let (Some(vers), Some(minor), Some(p), Some(flags)) = (r.u8(0), r.u8(1), r.u8(2), r.u8(3))
    else {
        out.push(format!("short reply = {} bytes", frame.len()));
        return out;
    };
    out.push(format!("ptype = {}", ptype_name(p)));
    out.push(format!("version = {vers}.{minor}"));
    out.push(format!("pfc_flags = {}", flag_names(flags)));
    out.push(format!(
        "drep = {:02x?}",
        frame.get(4..8).unwrap_or_default()
    ));
    let frag_len = r.u16(8).unwrap_or(0);
    let auth_len = r.u16(10).unwrap_or(0);
    out.push(format!("call_id = {}", r.u32(12).unwrap_or(0)));
    let has_token = auth_len > 0 && matches!(p, ptype::BIND_ACK | ptype::ALTER_CONTEXT_RESP);
    if !has_token {
        // With an NTLM CHALLENGE inside, the length depends on the server's names.
        out.push(format!("frag_length = {frag_len}"));
        out.push(format!("auth_length = {auth_len}"));
    }
    let body_end = usize::from(frag_len)
        .saturating_sub(usize::from(auth_len))
        .saturating_sub(if auth_len > 0 { 8 } else { 0 });
    match p {
        ptype::BIND_ACK | ptype::ALTER_CONTEXT_RESP => {
            out.push(format!("max_xmit_frag = {}", r.u16(16).unwrap_or(0)));
            out.push(format!("max_recv_frag = {}", r.u16(18).unwrap_or(0)));
            out.push(format!(
                "assoc_group = {}",
                roles.group(r.u32(20).unwrap_or(0))
            ));
            let sec_len = usize::from(r.u16(24).unwrap_or(0));
            let addr = frame.get(26..26 + sec_len).unwrap_or_default();
            let text = String::from_utf8_lossy(addr.strip_suffix(&[0]).unwrap_or(addr));
            let role = if text == roles.port.to_string() {
                "the listening port".to_owned()
            } else {
                format!("{text:?}")
            };
            out.push(format!("sec_addr = {role}"));
            let mut at = 26 + sec_len;
            let pad = (4 - at % 4) % 4;
            out.push(format!(
                "sec_addr padding = {:02x?}",
                frame.get(at..at + pad).unwrap_or_default()
            ));
            at += pad;
            let n = usize::from(r.u8(at).unwrap_or(0));
            out.push(format!("n_results = {n}"));
            at += 4;
            for i in 0..n {
                let result = r.u16(at).unwrap_or(0xffff);
                let reason = r.u16(at + 2).unwrap_or(0xffff);
                let syntax = r.guid(at + 4).map_or_else(
                    || "?".to_owned(),
                    |g| syntax_name(g, r.u32(at + 20).unwrap_or(0)),
                );
                out.push(format!(
                    "result[{i}] = result {result} reason {reason} syntax {syntax}"
                ));
                at += 24;
            }
        }
        ptype::BIND_NAK => {
            out.push(format!("reject_reason = {}", r.u16(16).unwrap_or(0)));
            let n = usize::from(r.u8(18).unwrap_or(0));
            let versions: Vec<String> = (0..n)
                .map(|i| {
                    format!(
                        "{}.{}",
                        r.u8(19 + 2 * i).unwrap_or(0),
                        r.u8(20 + 2 * i).unwrap_or(0)
                    )
                })
                .collect();
            out.push(format!("versions = [{}]", versions.join(", ")));
        }
        ptype::FAULT => {
            out.push(format!("alloc_hint = {}", r.u32(16).unwrap_or(0)));
            out.push(format!("p_cont_id = {}", r.u16(20).unwrap_or(0)));
            out.push(format!("cancel_count = {}", r.u8(22).unwrap_or(0)));
            out.push(format!("fault flags = {:#04x}", r.u8(23).unwrap_or(0)));
            out.push(format!("status = {:#010x}", r.u32(24).unwrap_or(0)));
        }
        ptype::RESPONSE => {
            out.push(format!("alloc_hint = {}", r.u32(16).unwrap_or(0)));
            out.push(format!("p_cont_id = {}", r.u16(20).unwrap_or(0)));
            out.push(format!("cancel_count = {}", r.u8(22).unwrap_or(0)));
            let pad = if auth_len > 0 {
                usize::from(r.u8(body_end + 2).unwrap_or(0))
            } else {
                0
            };
            out.push(format!(
                "stub length = {}",
                body_end.saturating_sub(24 + pad)
            ));
        }
        _ => {}
    }
    if auth_len > 0 {
        let at = body_end;
        out.push(format!(
            "auth trailer = type {} level {} pad {} context {}",
            r.u8(at).unwrap_or(0),
            r.u8(at + 1).unwrap_or(0),
            r.u8(at + 2).unwrap_or(0),
            r.u32(at + 4).unwrap_or(0)
        ));
        if has_token {
            let token = frame.get(at + 8..).unwrap_or_default();
            let kind = if token.starts_with(b"NTLMSSP\0") {
                format!("NTLM message type {}", token.get(8).copied().unwrap_or(0))
            } else {
                format!("{} bytes", token.len())
            };
            out.push(format!("auth token = {kind}"));
        }
    }
    out
}
