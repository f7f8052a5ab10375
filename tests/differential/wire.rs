//! PDUs built byte by byte, every field settable (to values no encoder of ours would write), and
//! replies read back field by field without our own decoder, so that the harness judges both
//! servers by the same independent reading.

/// A UUID as its four wire fields (the first three follow the byte order of the data
/// representation, the last eight bytes never do).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Guid(
    pub(crate) u32,
    pub(crate) u16,
    pub(crate) u16,
    pub(crate) [u8; 8],
);

/// The remote management interface, served on every endpoint (C706 Appendix Q).
pub(crate) const MGMT: (Guid, u16, u16) = (
    Guid(
        0xafa8_bd80,
        0x7d8a,
        0x11c9,
        [0xbe, 0xf4, 0x08, 0x00, 0x2b, 0x10, 0x29, 0x89],
    ),
    1,
    0,
);
/// The endpoint mapper.
pub(crate) const EPM: (Guid, u16, u16) = (
    Guid(
        0xe1af_8308,
        0x5d1f,
        0x11c9,
        [0x91, 0xa4, 0x08, 0x00, 0x2b, 0x14, 0xa0, 0xfa],
    ),
    3,
    0,
);
/// An interface no server serves.
pub(crate) const UNKNOWN_IF: (Guid, u16, u16) = (
    Guid(
        0x1234_5678,
        0x1234,
        0x5678,
        [0x9a, 0xbc, 0xde, 0xf0, 0x12, 0x34, 0x56, 0x78],
    ),
    1,
    0,
);
/// NDR 2.0.
pub(crate) const NDR: (Guid, u32) = (
    Guid(
        0x8a88_5d04,
        0x1ceb,
        0x11c9,
        [0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48, 0x60],
    ),
    2,
);
/// NDR64.
pub(crate) const NDR64: (Guid, u32) = (
    Guid(
        0x7171_0533,
        0xbeba,
        0x4937,
        [0x83, 0x19, 0xb5, 0xdb, 0xef, 0x9c, 0xcc, 0x36],
    ),
    1,
);
/// The bind-time feature negotiation syntax offering security-context multiplexing and keeping
/// the connection on orphan (MS-RPCE 3.3.1.5.3).
pub(crate) const BTFN: (Guid, u32) = (
    Guid(0x6cb7_1c2c, 0x9812, 0x4540, [3, 0, 0, 0, 0, 0, 0, 0]),
    1,
);
/// A transfer syntax nobody knows.
pub(crate) const BAD_SYNTAX: (Guid, u32) = (
    Guid(0x0bad_0bad, 0x0bad, 0x0bad, [0xb, 0xa, 0xd, 0, 0, 0, 0, 0]),
    1,
);

/// Packet types, by their C706 numbers.
pub(crate) mod ptype {
    pub(crate) const REQUEST: u8 = 0;
    pub(crate) const RESPONSE: u8 = 2;
    pub(crate) const FAULT: u8 = 3;
    pub(crate) const BIND: u8 = 11;
    pub(crate) const BIND_ACK: u8 = 12;
    pub(crate) const BIND_NAK: u8 = 13;
    pub(crate) const ALTER_CONTEXT: u8 = 14;
    pub(crate) const ALTER_CONTEXT_RESP: u8 = 15;
    pub(crate) const AUTH3: u8 = 16;
    pub(crate) const SHUTDOWN: u8 = 17;
    pub(crate) const CO_CANCEL: u8 = 18;
    pub(crate) const ORPHANED: u8 = 19;
}

/// PFC flags.
pub(crate) mod pfc {
    pub(crate) const FIRST: u8 = 0x01;
    pub(crate) const LAST: u8 = 0x02;
    pub(crate) const PENDING_CANCEL: u8 = 0x04;
    pub(crate) const HDR_SIGN: u8 = 0x04;
    pub(crate) const RESERVED_1: u8 = 0x08;
    pub(crate) const CONC_MPX: u8 = 0x10;
    pub(crate) const DID_NOT_EXECUTE: u8 = 0x20;
    pub(crate) const MAYBE: u8 = 0x40;
    pub(crate) const OBJECT_UUID: u8 = 0x80;
}

/// Writes fields in one byte order.
#[derive(Debug)]
pub(crate) struct Writer {
    pub(crate) big_endian: bool,
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new(big_endian: bool) -> Self {
        Self {
            big_endian,
            buf: Vec::new(),
        }
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub(crate) fn u16(&mut self, v: u16) {
        let bytes = if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.buf.extend_from_slice(&bytes);
    }

    pub(crate) fn u32(&mut self, v: u32) {
        let bytes = if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.buf.extend_from_slice(&bytes);
    }

    pub(crate) fn guid(&mut self, g: Guid) {
        self.u32(g.0);
        self.u16(g.1);
        self.u16(g.2);
        self.buf.extend_from_slice(&g.3);
    }

    pub(crate) fn pad_to(&mut self, align: usize, from: usize) {
        while !(self.buf.len() - from).is_multiple_of(align) {
            self.buf.push(0);
        }
    }
}

/// One presentation context as proposed.
#[derive(Clone, Debug)]
pub(crate) struct Ctx {
    pub(crate) id: u16,
    pub(crate) abstract_syntax: (Guid, u16, u16),
    pub(crate) transfer: Vec<(Guid, u32)>,
}

/// The body of a bind or alter_context.
#[derive(Clone, Debug)]
pub(crate) struct BindBody {
    pub(crate) max_xmit: u16,
    pub(crate) max_recv: u16,
    pub(crate) assoc_group: u32,
    pub(crate) contexts: Vec<Ctx>,
}

impl BindBody {
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u16(self.max_xmit);
        w.u16(self.max_recv);
        w.u32(self.assoc_group);
        w.u8(u8::try_from(self.contexts.len()).unwrap_or(u8::MAX));
        w.u8(0);
        w.u16(0);
        for ctx in &self.contexts {
            w.u16(ctx.id);
            w.u8(u8::try_from(ctx.transfer.len()).unwrap_or(u8::MAX));
            w.u8(0);
            let (uuid, major, minor) = ctx.abstract_syntax;
            w.guid(uuid);
            w.u16(major);
            w.u16(minor);
            for &(uuid, version) in &ctx.transfer {
                w.guid(uuid);
                w.u32(version);
            }
        }
    }
}

/// A sec_trailer and its auth_value.
#[derive(Clone, Debug)]
pub(crate) struct Trailer {
    pub(crate) auth_type: u8,
    pub(crate) auth_level: u8,
    pub(crate) context_id: u32,
    pub(crate) value: Vec<u8>,
}

/// The common header's fields as sent.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Header {
    pub(crate) vers: u8,
    pub(crate) minor: u8,
    pub(crate) ptype: u8,
    pub(crate) flags: u8,
    pub(crate) drep: [u8; 4],
    pub(crate) call_id: u32,
}

impl Header {
    pub(crate) fn new(ptype: u8, call_id: u32) -> Self {
        Self {
            vers: 5,
            minor: 0,
            ptype,
            flags: pfc::FIRST | pfc::LAST,
            drep: [0x10, 0, 0, 0],
            call_id,
        }
    }

    pub(crate) fn big_endian(&self) -> bool {
        self.drep[0] & 0x10 == 0
    }
}

/// Where the stub and the signature of an assembled PDU are, for signing in place.
#[derive(Clone, Debug)]
pub(crate) struct Assembled {
    pub(crate) bytes: Vec<u8>,
    /// The stub and its auth padding.
    pub(crate) stub: std::ops::Range<usize>,
    /// Where the sec_trailer ends (the signature follows), if there is one.
    pub(crate) trailer_end: Option<usize>,
}

/// A whole PDU: header, `body` (already in the header's byte order), optional trailer; the
/// body is padded to `pad_align` bytes (counted from `stub_start`) before the trailer.
pub(crate) fn assemble(
    header: &Header,
    body: &[u8],
    stub_start: usize,
    pad_align: usize,
    trailer: Option<&Trailer>,
) -> Assembled {
    let mut w = Writer::new(header.big_endian());
    w.u8(header.vers);
    w.u8(header.minor);
    w.u8(header.ptype);
    w.u8(header.flags);
    w.buf.extend_from_slice(&header.drep);
    w.u16(0); // frag_length, patched below
    w.u16(trailer.map_or(0, |t| u16::try_from(t.value.len()).unwrap_or(u16::MAX)));
    w.u32(header.call_id);
    w.buf.extend_from_slice(body);
    let stub_from = 16 + stub_start;
    let mut trailer_end = None;
    if let Some(t) = trailer {
        let before = w.buf.len();
        w.pad_to(pad_align, stub_from);
        let pad = u8::try_from(w.buf.len() - before).unwrap_or(0);
        w.u8(t.auth_type);
        w.u8(t.auth_level);
        w.u8(pad);
        w.u8(0);
        w.u32(t.context_id);
        trailer_end = Some(w.buf.len());
        w.buf.extend_from_slice(&t.value);
    }
    let stub_end = trailer_end.map_or(w.buf.len(), |end| end - 8);
    let len = u16::try_from(w.buf.len()).unwrap_or(u16::MAX);
    let len = if header.big_endian() {
        len.to_be_bytes()
    } else {
        len.to_le_bytes()
    };
    if let Some(slot) = w.buf.get_mut(8..10) {
        slot.copy_from_slice(&len);
    }
    Assembled {
        bytes: w.buf,
        stub: stub_from.min(stub_end)..stub_end,
        trailer_end,
    }
}

/// Reads fields of a received PDU in its declared byte order; out-of-range reads give `None`.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) big_endian: bool,
}

impl Reader<'_> {
    pub(crate) fn u8(&self, at: usize) -> Option<u8> {
        self.bytes.get(at).copied()
    }

    pub(crate) fn u16(&self, at: usize) -> Option<u16> {
        let b: [u8; 2] = self.bytes.get(at..at + 2)?.try_into().ok()?;
        Some(if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    pub(crate) fn u32(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.bytes.get(at..at + 4)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    pub(crate) fn guid(&self, at: usize) -> Option<Guid> {
        let tail: [u8; 8] = self.bytes.get(at + 8..at + 16)?.try_into().ok()?;
        Some(Guid(
            self.u32(at)?,
            self.u16(at + 4)?,
            self.u16(at + 6)?,
            tail,
        ))
    }
}

/// The name of a transfer syntax the harness knows.
pub(crate) fn syntax_name(g: Guid, version: u32) -> String {
    for (name, (known, v)) in [("NDR", NDR), ("NDR64", NDR64), ("bad", BAD_SYNTAX)] {
        if known == g && v == version {
            return name.to_owned();
        }
    }
    if g == Guid(0, 0, 0, [0; 8]) && version == 0 {
        return "null".to_owned();
    }
    if g.0 == BTFN.0.0 && g.1 == BTFN.0.1 && g.2 == BTFN.0.2 {
        return format!("BTFN{:?}", g.3);
    }
    format!(
        "{:08x}-{:04x}-{:04x}-{:02x?} v{version}",
        g.0, g.1, g.2, g.3
    )
}
