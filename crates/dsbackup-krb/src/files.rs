//! The two file formats of MIT Kerberos that users already have: keytabs (version 0x502) and
//! credential caches (`FILE:` ccache, versions 3 and 4), parsed from bytes the caller read.
//!
//! Both parsers refuse truncated or oversized records with a [`DecodeError`] and never
//! allocate by a length before checking that the bytes are there.

use crate::crypto::{EncType, Key};
use crate::der::KerberosTime;
use crate::error::DecodeError;
use crate::exchange::Credential;
use crate::messages::{PrincipalName, Ticket};

/// A cursor over big-endian fields.
struct Cursor<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn err(&self, reason: &'static str) -> DecodeError {
        DecodeError::new(self.what, reason)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let (head, rest) = self
            .buf
            .split_at_checked(n)
            .ok_or_else(|| self.err("truncated"))?;
        self.buf = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        self.take(1)?
            .first()
            .copied()
            .ok_or_else(|| self.err("truncated"))
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b: [u8; 2] = self
            .take(2)?
            .try_into()
            .map_err(|_| self.err("truncated"))?;
        Ok(u16::from_be_bytes(b))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b: [u8; 4] = self
            .take(4)?
            .try_into()
            .map_err(|_| self.err("truncated"))?;
        Ok(u32::from_be_bytes(b))
    }

    fn data16(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }

    fn data32(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = usize::try_from(self.u32()?).map_err(|_| self.err("length"))?;
        self.take(n)
    }

    fn text16(&mut self) -> Result<String, DecodeError> {
        let bytes = self.data16()?;
        String::from_utf8(bytes.to_vec()).map_err(|_| self.err("name is not UTF-8"))
    }

    fn text32(&mut self) -> Result<String, DecodeError> {
        let bytes = self.data32()?;
        String::from_utf8(bytes.to_vec()).map_err(|_| self.err("name is not UTF-8"))
    }
}

/// One keytab entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeytabEntry {
    /// The realm.
    pub realm: String,
    /// The principal.
    pub principal: PrincipalName,
    /// The key version number.
    pub kvno: u32,
    /// The key.
    pub key: Key,
}

/// The entries of a keytab file (version 0x502) whose encryption types this crate implements;
/// deleted entries (negative sizes) and other etypes are skipped.
///
/// # Errors
/// [`DecodeError`] when the file is not a version 2 keytab or an entry is malformed.
pub fn parse_keytab(bytes: &[u8]) -> Result<Vec<KeytabEntry>, DecodeError> {
    let mut c = Cursor {
        buf: bytes,
        what: "keytab",
    };
    if c.u16()? != 0x0502 {
        return Err(c.err("not a version 2 keytab"));
    }
    let mut out = Vec::new();
    while !c.buf.is_empty() {
        let size = i32::from_be_bytes(c.take(4)?.try_into().map_err(|_| c.err("truncated"))?);
        let len = usize::try_from(size.unsigned_abs()).map_err(|_| c.err("length"))?;
        let record = c.take(len)?;
        if size <= 0 {
            continue;
        }
        let mut r = Cursor {
            buf: record,
            what: "keytab entry",
        };
        let count = r.u16()?;
        let realm = r.text16()?;
        let mut components = Vec::new();
        for _ in 0..count {
            components.push(r.text16()?);
        }
        let name_type = i32::from_be_bytes(r.u32()?.to_be_bytes());
        let _timestamp = r.u32()?;
        let vno8 = r.u8()?;
        let etype = EncType(i32::from(r.u16()?));
        let key_bytes = r.data16()?;
        let kvno = if r.buf.len() >= 4 {
            r.u32()?
        } else {
            u32::from(vno8)
        };
        let Ok(key) = Key::new(etype, key_bytes) else {
            continue;
        };
        out.push(KeytabEntry {
            realm,
            principal: PrincipalName {
                name_type,
                components,
            },
            kvno,
            key,
        });
    }
    Ok(out)
}

/// A version 2 keytab holding `entries` (what `ktutil` writes; the mirror of
/// [`parse_keytab`]). Timestamps are written as 0.
pub fn encode_keytab(entries: &[KeytabEntry]) -> Vec<u8> {
    fn data16(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&u16::try_from(bytes.len()).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(bytes.get(..usize::from(u16::MAX)).unwrap_or(bytes));
    }
    let mut out = 0x0502u16.to_be_bytes().to_vec();
    for e in entries {
        let mut record = Vec::new();
        let count = u16::try_from(e.principal.components.len()).unwrap_or(0);
        record.extend_from_slice(&count.to_be_bytes());
        data16(&mut record, e.realm.as_bytes());
        for c in e.principal.components.iter().take(usize::from(count)) {
            data16(&mut record, c.as_bytes());
        }
        record.extend_from_slice(&e.principal.name_type.to_be_bytes());
        record.extend_from_slice(&0u32.to_be_bytes());
        record.push(u8::try_from(e.kvno & 0xff).unwrap_or(0));
        record.extend_from_slice(&u16::try_from(e.key.etype().0).unwrap_or(0).to_be_bytes());
        data16(&mut record, e.key.as_bytes());
        record.extend_from_slice(&e.kvno.to_be_bytes());
        out.extend_from_slice(&i32::try_from(record.len()).unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&record);
    }
    out
}

/// A credential cache: its default principal and the credentials it holds.
#[derive(Clone, Debug)]
pub struct Ccache {
    /// The realm of the default principal.
    pub realm: String,
    /// The default principal (the user `kinit` logged in).
    pub principal: PrincipalName,
    /// The credentials, in file order (configuration entries left out).
    pub credentials: Vec<Credential>,
}

impl Ccache {
    /// A credential for `server` in `realm` still valid at `now`: a service ticket to present
    /// directly, or (with `krbtgt/REALM`) the TGT to ask the KDC for one.
    pub fn find(
        &self,
        server: &PrincipalName,
        realm: &str,
        now: KerberosTime,
    ) -> Option<&Credential> {
        self.credentials.iter().find(|c| {
            c.server.same_as(server) && c.srealm.eq_ignore_ascii_case(realm) && c.valid_at(now)
        })
    }
}

/// A version 4 `FILE:` credential cache of `principal@realm` holding `credentials` (what
/// `kinit` leaves; the mirror of [`parse_ccache`]), for tools that read one, such as
/// impacket's `-k`.
pub fn encode_ccache(
    realm: &str,
    principal: &PrincipalName,
    credentials: &[Credential],
) -> Vec<u8> {
    fn data32(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(0).to_be_bytes());
        out.extend_from_slice(bytes);
    }
    fn principal_of(out: &mut Vec<u8>, realm: &str, name: &PrincipalName) {
        out.extend_from_slice(&name.name_type.to_be_bytes());
        out.extend_from_slice(
            &u32::try_from(name.components.len())
                .unwrap_or(0)
                .to_be_bytes(),
        );
        data32(out, realm.as_bytes());
        for c in &name.components {
            data32(out, c.as_bytes());
        }
    }
    let time = |t: KerberosTime| u32::try_from(t.0).unwrap_or(0).to_be_bytes();
    let mut out = vec![0x05, 0x04, 0x00, 0x00];
    principal_of(&mut out, realm, principal);
    for c in credentials {
        principal_of(&mut out, &c.crealm, &c.client);
        principal_of(&mut out, &c.srealm, &c.server);
        out.extend_from_slice(
            &u16::try_from(c.session_key.etype().0)
                .unwrap_or(0)
                .to_be_bytes(),
        );
        data32(&mut out, c.session_key.as_bytes());
        for t in [c.authtime, c.authtime, c.endtime, c.endtime] {
            out.extend_from_slice(&time(t));
        }
        out.push(0);
        out.extend_from_slice(&c.flags.to_be_bytes());
        out.extend_from_slice(&[0; 8]);
        data32(&mut out, &c.ticket.encode());
        data32(&mut out, &[]);
    }
    out
}

fn ccache_principal(c: &mut Cursor<'_>, v4: bool) -> Result<(String, PrincipalName), DecodeError> {
    let name_type = if v4 {
        i32::from_be_bytes(c.u32()?.to_be_bytes())
    } else {
        1
    };
    let count = c.u32()?;
    if count > 16 {
        return Err(c.err("too many name components"));
    }
    let realm = c.text32()?;
    let mut components = Vec::new();
    for _ in 0..count {
        components.push(c.text32()?);
    }
    Ok((
        realm,
        PrincipalName {
            name_type,
            components,
        },
    ))
}

/// Parses a `FILE:` credential cache (versions 0x503 and 0x504).
///
/// # Errors
/// [`DecodeError`] when the file is not such a cache or a record is malformed.
pub fn parse_ccache(bytes: &[u8]) -> Result<Ccache, DecodeError> {
    let mut c = Cursor {
        buf: bytes,
        what: "ccache",
    };
    let version = c.u16()?;
    let v4 = match version {
        0x0504 => true,
        0x0503 => false,
        _ => return Err(c.err("not a version 3 or 4 credential cache")),
    };
    if v4 {
        let header_len = usize::from(c.u16()?);
        c.take(header_len)?;
    }
    let (realm, principal) = ccache_principal(&mut c, true)?;
    let mut credentials = Vec::new();
    while !c.buf.is_empty() {
        let (crealm, client) = ccache_principal(&mut c, true)?;
        let (srealm, server) = ccache_principal(&mut c, true)?;
        let etype = EncType(i32::from(c.u16()?));
        let key = c.data32()?;
        let authtime = KerberosTime(i64::from(c.u32()?));
        let _starttime = c.u32()?;
        let endtime = KerberosTime(i64::from(c.u32()?));
        let _renew_till = c.u32()?;
        let _is_skey = c.u8()?;
        let flags = c.u32()?;
        for _ in 0..c.u32()? {
            let _addr_type = c.u16()?;
            c.data32()?;
        }
        for _ in 0..c.u32()? {
            let _ad_type = c.u16()?;
            c.data32()?;
        }
        let ticket = c.data32()?;
        let _second_ticket = c.data32()?;
        // Configuration entries (X-CACHECONF: realm) carry no ticket we can use.
        if srealm == "X-CACHECONF:" {
            continue;
        }
        let (Ok(session_key), Ok(ticket)) = (Key::new(etype, key), Ticket::decode(ticket)) else {
            continue;
        };
        credentials.push(Credential {
            crealm,
            client,
            srealm,
            server,
            ticket,
            session_key,
            authtime,
            endtime,
            flags,
        });
    }
    Ok(Ccache {
        realm,
        principal,
        credentials,
    })
}
