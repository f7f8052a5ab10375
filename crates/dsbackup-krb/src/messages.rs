//! The Kerberos messages of [RFC 4120 §5] this crate sends and receives, as plain structs with
//! `encode` and `decode`.
//!
//! Decoders borrow nothing from their input beyond the call (the structs own their bytes; the
//! messages are small) and refuse anything malformed with a [`DecodeError`]. Fields this crate
//! does not use (addresses, authorization data, last-req) are skipped when decoding and left
//! out when encoding.
//!
//! [RFC 4120 §5]: https://www.rfc-editor.org/rfc/rfc4120#section-5

use crate::crypto::EncType;
use crate::der::{self, Fields, KerberosTime, Reader};
use crate::error::DecodeError;
use crate::wire::known_values;

/// A KRB-ERROR code ([RFC 4120 §7.5.9]).
///
/// [RFC 4120 §7.5.9]: https://www.rfc-editor.org/rfc/rfc4120#section-7.5.9
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub i32);

known_values! {
    ErrorCode;
    /// The client is not in the KDC's database.
    KDC_ERR_C_PRINCIPAL_UNKNOWN = 6 => "KDC_ERR_C_PRINCIPAL_UNKNOWN",
    /// The server is not in the KDC's database.
    KDC_ERR_S_PRINCIPAL_UNKNOWN = 7 => "KDC_ERR_S_PRINCIPAL_UNKNOWN",
    /// No common encryption type.
    KDC_ERR_ETYPE_NOSUPP = 14 => "KDC_ERR_ETYPE_NOSUPP",
    /// The client's credentials have been revoked (account disabled or locked).
    KDC_ERR_CLIENT_REVOKED = 18 => "KDC_ERR_CLIENT_REVOKED",
    /// The password has expired.
    KDC_ERR_KEY_EXPIRED = 23 => "KDC_ERR_KEY_EXPIRED",
    /// Pre-authentication failed: the password is wrong.
    KDC_ERR_PREAUTH_FAILED = 24 => "KDC_ERR_PREAUTH_FAILED",
    /// Pre-authentication is required (the KDC lists what it accepts in e-data).
    KDC_ERR_PREAUTH_REQUIRED = 25 => "KDC_ERR_PREAUTH_REQUIRED",
    /// The integrity check of a decrypted field failed.
    KRB_AP_ERR_BAD_INTEGRITY = 31 => "KRB_AP_ERR_BAD_INTEGRITY",
    /// The ticket has expired.
    KRB_AP_ERR_TKT_EXPIRED = 32 => "KRB_AP_ERR_TKT_EXPIRED",
    /// A replayed request.
    KRB_AP_ERR_REPEAT = 34 => "KRB_AP_ERR_REPEAT",
    /// The clocks are too far apart.
    KRB_AP_ERR_SKEW = 37 => "KRB_AP_ERR_SKEW",
    /// Generic error (see e-text).
    KRB_ERR_GENERIC = 60 => "KRB_ERR_GENERIC",
    /// The answer would not fit in UDP: retry over TCP.
    KRB_ERR_RESPONSE_TOO_BIG = 52 => "KRB_ERR_RESPONSE_TOO_BIG",
}

impl ErrorCode {
    /// What the refusal means for the user and what to check: `None` for codes a user cannot
    /// act on.
    pub fn hint(self) -> Option<&'static str> {
        Some(match self {
            Self::KDC_ERR_C_PRINCIPAL_UNKNOWN => {
                "the KDC knows no such user (check --user and --realm)"
            }
            Self::KDC_ERR_S_PRINCIPAL_UNKNOWN => {
                "the KDC knows no such service principal (check --spn, or the server's name it is derived from)"
            }
            Self::KDC_ERR_ETYPE_NOSUPP => "the KDC and this client share no encryption type",
            Self::KDC_ERR_CLIENT_REVOKED => "the account is disabled, locked out or expired",
            Self::KDC_ERR_KEY_EXPIRED => "the password has expired: change it",
            Self::KDC_ERR_PREAUTH_FAILED => "wrong password (or keytab key) for the user",
            Self::KRB_AP_ERR_TKT_EXPIRED => "the ticket has expired (run kinit again)",
            Self::KRB_AP_ERR_SKEW => {
                "this host's clock and the KDC's are more than 5 minutes apart (synchronise the clock)"
            }
            _ => return None,
        })
    }
}

/// Principal name types ([RFC 4120 §6.2]).
///
/// [RFC 4120 §6.2]: https://www.rfc-editor.org/rfc/rfc4120#section-6.2
pub mod name_type {
    /// A user.
    pub const PRINCIPAL: i32 = 1;
    /// A service and its host (`host/dc1.corp.example`, `krbtgt/REALM`).
    pub const SRV_INST: i32 = 2;
    /// A service with the host as a second component.
    pub const SRV_HST: i32 = 3;
}

/// Key usage numbers ([RFC 4120 §7.5.1], [RFC 4121 §2]).
///
/// [RFC 4120 §7.5.1]: https://www.rfc-editor.org/rfc/rfc4120#section-7.5.1
/// [RFC 4121 §2]: https://www.rfc-editor.org/rfc/rfc4121#section-2
pub mod usage {
    /// PA-ENC-TIMESTAMP.
    pub const PA_ENC_TIMESTAMP: u32 = 1;
    /// The encrypted part of a ticket.
    pub const TICKET: u32 = 2;
    /// The encrypted part of an AS-REP.
    pub const AS_REP: u32 = 3;
    /// The checksum of a TGS-REQ body in its authenticator.
    pub const TGS_REQ_CHECKSUM: u32 = 6;
    /// The authenticator of a TGS-REQ.
    pub const TGS_REQ_AUTHENTICATOR: u32 = 7;
    /// The encrypted part of a TGS-REP (under the session key).
    pub const TGS_REP: u32 = 8;
    /// The authenticator of an AP-REQ.
    pub const AP_REQ_AUTHENTICATOR: u32 = 11;
    /// The encrypted part of an AP-REP.
    pub const AP_REP: u32 = 12;
    /// Wrap tokens sealed by the acceptor.
    pub const ACCEPTOR_SEAL: u32 = 22;
    /// MIC and wrap tokens signed by the acceptor.
    pub const ACCEPTOR_SIGN: u32 = 23;
    /// Wrap tokens sealed by the initiator.
    pub const INITIATOR_SEAL: u32 = 24;
    /// MIC and wrap tokens signed by the initiator.
    pub const INITIATOR_SIGN: u32 = 25;
}

/// Pre-authentication data types ([RFC 4120 §7.5.2], [MS-KILE]).
///
/// [RFC 4120 §7.5.2]: https://www.rfc-editor.org/rfc/rfc4120#section-7.5.2
/// [MS-KILE]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-kile/
pub mod pa_type {
    /// PA-TGS-REQ: the AP-REQ of a TGS-REQ.
    pub const TGS_REQ: i32 = 1;
    /// PA-ENC-TIMESTAMP.
    pub const ENC_TIMESTAMP: i32 = 2;
    /// PA-ETYPE-INFO2.
    pub const ETYPE_INFO2: i32 = 19;
    /// PA-PAC-REQUEST ([MS-KILE §2.2.3]).
    pub const PAC_REQUEST: i32 = 128;
}

/// A principal name without its realm.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PrincipalName {
    /// The name type (see [`name_type`]).
    pub name_type: i32,
    /// The components (`["host", "dc1.corp.example"]`).
    pub components: Vec<String>,
}

impl PrincipalName {
    /// A user principal.
    pub fn user(name: &str) -> Self {
        Self {
            name_type: name_type::PRINCIPAL,
            components: vec![name.to_owned()],
        }
    }

    /// A service principal from `service/host` (any number of `/`-separated components).
    pub fn service(spn: &str) -> Self {
        Self {
            name_type: name_type::SRV_INST,
            components: spn.split('/').map(str::to_owned).collect(),
        }
    }

    /// `krbtgt/REALM`.
    pub fn krbtgt(realm: &str) -> Self {
        Self {
            name_type: name_type::SRV_INST,
            components: vec!["krbtgt".to_owned(), realm.to_owned()],
        }
    }

    /// The components joined by `/`.
    pub fn to_text(&self) -> String {
        self.components.join("/")
    }

    /// Whether both name the same principal (components compared, case-sensitively; the
    /// name type is a hint, not part of the identity, [RFC 4120 §6.2]).
    ///
    /// [RFC 4120 §6.2]: https://www.rfc-editor.org/rfc/rfc4120#section-6.2
    pub fn same_as(&self, other: &Self) -> bool {
        self.components == other.components
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let strings = der::sequence_of(
            self.components
                .iter()
                .map(|c| der::element(der::GENERAL_STRING, c.as_bytes())),
        );
        Fields::new()
            .int(0, i64::from(self.name_type))
            .raw(1, &strings)
            .sequence(None)
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut seq = r.nested(der::SEQUENCE)?;
        let name_type = seq.field(0)?.int32()?;
        let mut list = seq.field(1)?.nested(der::SEQUENCE)?;
        let mut components = Vec::new();
        while !list.is_empty() {
            if components.len() >= 16 {
                return Err(DecodeError::new("PrincipalName", "too many components"));
            }
            components.push(list.string()?.to_owned());
        }
        Ok(Self {
            name_type,
            components,
        })
    }
}

/// EncryptedData: a ciphertext and the type and version of the key it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncryptedData {
    /// The encryption type.
    pub etype: EncType,
    /// The key version number, when the key has one.
    pub kvno: Option<u32>,
    /// The ciphertext.
    pub cipher: Vec<u8>,
}

impl EncryptedData {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut f = Fields::new().int(0, i64::from(self.etype.0));
        if let Some(kvno) = self.kvno {
            f = f.int(1, i64::from(kvno));
        }
        f.octets(2, &self.cipher).sequence(None)
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut seq = r.nested(der::SEQUENCE)?;
        let etype = EncType(seq.field(0)?.int32()?);
        let kvno = seq.optional(1)?.map(|mut f| f.uint32()).transpose()?;
        let cipher = seq.field(2)?.octets()?.to_vec();
        Ok(Self {
            etype,
            kvno,
            cipher,
        })
    }
}

/// EncryptionKey as it travels inside encrypted parts.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptionKey {
    /// The encryption type.
    pub keytype: EncType,
    /// The key bytes.
    pub value: zeroize::Zeroizing<Vec<u8>>,
}

impl core::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "EncryptionKey({:?}, {} bytes)",
            self.keytype,
            self.value.len()
        )
    }
}

impl EncryptionKey {
    pub(crate) fn encode(&self) -> Vec<u8> {
        Fields::new()
            .int(0, i64::from(self.keytype.0))
            .octets(1, &self.value)
            .sequence(None)
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut seq = r.nested(der::SEQUENCE)?;
        let keytype = EncType(seq.field(0)?.int32()?);
        let value = zeroize::Zeroizing::new(seq.field(1)?.octets()?.to_vec());
        Ok(Self { keytype, value })
    }
}

/// A Checksum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checksum {
    /// The checksum type.
    pub cksumtype: i32,
    /// Its bytes.
    pub value: Vec<u8>,
}

impl Checksum {
    pub(crate) fn encode(&self) -> Vec<u8> {
        Fields::new()
            .int(0, i64::from(self.cksumtype))
            .octets(1, &self.value)
            .sequence(None)
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut seq = r.nested(der::SEQUENCE)?;
        let cksumtype = seq.field(0)?.int32()?;
        let value = seq.field(1)?.octets()?.to_vec();
        Ok(Self { cksumtype, value })
    }
}

/// A ticket ([APPLICATION 1]); its encrypted part is opaque to the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket {
    /// The service's realm.
    pub realm: String,
    /// The service.
    pub sname: PrincipalName,
    /// EncTicketPart, under the service's long-term key.
    pub enc_part: EncryptedData,
}

impl Ticket {
    /// The DER encoding.
    pub fn encode(&self) -> Vec<u8> {
        Fields::new()
            .int(0, 5)
            .string(1, &self.realm)
            .raw(2, &self.sname.encode())
            .raw(3, &self.enc_part.encode())
            .sequence(Some(1))
    }

    /// Decodes a whole ticket.
    ///
    /// # Errors
    /// [`DecodeError`] when malformed.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, "Ticket");
        let ticket = Self::decode_from(&mut r)?;
        r.finish()?;
        Ok(ticket)
    }

    pub(crate) fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut app = r.nested(der::application(1))?;
        let mut seq = app.nested(der::SEQUENCE)?;
        if seq.field(0)?.integer()? != 5 {
            return Err(DecodeError::new("Ticket", "tkt-vno is not 5"));
        }
        let realm = seq.field(1)?.string()?.to_owned();
        let sname = PrincipalName::decode(&mut seq.field(2)?)?;
        let enc_part = EncryptedData::decode(&mut seq.field(3)?)?;
        Ok(Self {
            realm,
            sname,
            enc_part,
        })
    }
}

/// EncTicketPart ([APPLICATION 3]): what the acceptor learns from a ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncTicketPart {
    /// Ticket flags.
    pub flags: u32,
    /// The session key.
    pub key: EncryptionKey,
    /// The client's realm.
    pub crealm: String,
    /// The client.
    pub cname: PrincipalName,
    /// When the client authenticated.
    pub authtime: KerberosTime,
    /// Start of validity (authtime when absent).
    pub starttime: Option<KerberosTime>,
    /// End of validity.
    pub endtime: KerberosTime,
}

impl EncTicketPart {
    /// The DER encoding (transited empty; no addresses or authorization data).
    pub fn encode(&self) -> Vec<u8> {
        let transited = Fields::new().int(0, 0).octets(1, &[]).sequence(None);
        let mut f = Fields::new()
            .flags(0, self.flags)
            .raw(1, &self.key.encode())
            .string(2, &self.crealm)
            .raw(3, &self.cname.encode())
            .raw(4, &transited)
            .time(5, self.authtime);
        if let Some(start) = self.starttime {
            f = f.time(6, start);
        }
        f.time(7, self.endtime).sequence(Some(3))
    }

    /// Decodes the plaintext of a ticket's encrypted part.
    ///
    /// # Errors
    /// [`DecodeError`] when malformed.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, "EncTicketPart");
        let mut seq = r.nested(der::application(3))?.nested(der::SEQUENCE)?;
        let flags = seq.field(0)?.flags()?;
        let key = EncryptionKey::decode(&mut seq.field(1)?)?;
        let crealm = seq.field(2)?.string()?.to_owned();
        let cname = PrincipalName::decode(&mut seq.field(3)?)?;
        let _transited = seq.field(4)?;
        let authtime = seq.field(5)?.time()?;
        let starttime = seq.optional(6)?.map(|mut f| f.time()).transpose()?;
        let endtime = seq.field(7)?.time()?;
        Ok(Self {
            flags,
            key,
            crealm,
            cname,
            authtime,
            starttime,
            endtime,
        })
    }
}

/// One PA-DATA element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaData {
    /// Its type (see [`pa_type`]).
    pub padata_type: i32,
    /// Its value.
    pub value: Vec<u8>,
}

impl PaData {
    fn encode(&self) -> Vec<u8> {
        Fields::new()
            .int(1, i64::from(self.padata_type))
            .octets(2, &self.value)
            .sequence(None)
    }

    fn decode_list(r: &mut Reader<'_>) -> Result<Vec<Self>, DecodeError> {
        let mut list = r.nested(der::SEQUENCE)?;
        let mut out = Vec::new();
        while !list.is_empty() {
            if out.len() >= 32 {
                return Err(DecodeError::new("PA-DATA", "too many elements"));
            }
            let mut seq = list.nested(der::SEQUENCE)?;
            let padata_type = seq.field(1)?.int32()?;
            let value = seq.field(2)?.octets()?.to_vec();
            out.push(Self { padata_type, value });
        }
        Ok(out)
    }

    /// PA-ENC-TIMESTAMP's plaintext: PA-ENC-TS-ENC.
    pub fn enc_timestamp_plain(time: KerberosTime, usec: u32) -> Vec<u8> {
        Fields::new()
            .time(0, time)
            .int(1, i64::from(usec))
            .sequence(None)
    }

    /// PA-PAC-REQUEST asking for a PAC.
    pub fn pac_request() -> Self {
        // KERB-PA-PAC-REQUEST ::= SEQUENCE { include-pac [0] BOOLEAN }
        let value = Fields::new()
            .raw(0, &der::element(0x01, &[0xff]))
            .sequence(None);
        Self {
            padata_type: pa_type::PAC_REQUEST,
            value,
        }
    }
}

/// One ETYPE-INFO2 entry: how the KDC wants a password turned into a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtypeInfo2 {
    /// The encryption type.
    pub etype: EncType,
    /// The salt, when not the default.
    pub salt: Option<String>,
    /// The string-to-key parameters.
    pub s2kparams: Option<Vec<u8>>,
}

impl EtypeInfo2 {
    /// Decodes a PA-ETYPE-INFO2 value.
    ///
    /// # Errors
    /// [`DecodeError`] when malformed.
    pub fn decode_list(bytes: &[u8]) -> Result<Vec<Self>, DecodeError> {
        let mut r = Reader::new(bytes, "ETYPE-INFO2");
        let mut list = r.nested(der::SEQUENCE)?;
        let mut out = Vec::new();
        while !list.is_empty() {
            if out.len() >= 16 {
                return Err(DecodeError::new("ETYPE-INFO2", "too many entries"));
            }
            let mut seq = list.nested(der::SEQUENCE)?;
            let etype = EncType(seq.field(0)?.int32()?);
            let salt = seq
                .optional(1)?
                .map(|mut f| f.string().map(str::to_owned))
                .transpose()?;
            let s2kparams = seq
                .optional(2)?
                .map(|mut f| f.octets().map(<[u8]>::to_vec))
                .transpose()?;
            out.push(Self {
                etype,
                salt,
                s2kparams,
            });
        }
        r.finish()?;
        Ok(out)
    }
}

/// KDC options ([RFC 4120 §5.4.1]), as bits of a big-endian u32.
///
/// [RFC 4120 §5.4.1]: https://www.rfc-editor.org/rfc/rfc4120#section-5.4.1
pub mod kdc_options {
    /// forwardable (the same bit as the ticket flag).
    pub const FORWARDABLE: u32 = 0x4000_0000;
    /// renewable.
    pub const RENEWABLE: u32 = 0x0080_0000;
    /// canonicalize.
    pub const CANONICALIZE: u32 = 0x0001_0000;
    /// renewable-ok.
    pub const RENEWABLE_OK: u32 = 0x0000_0010;
}

/// An AS-REQ or TGS-REQ ([APPLICATION 10] / [APPLICATION 12] KDC-REQ).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KdcReq {
    /// 10 for AS-REQ, 12 for TGS-REQ.
    pub msg_type: i32,
    /// Pre-authentication data.
    pub padata: Vec<PaData>,
    /// KDC options.
    pub kdc_options: u32,
    /// The client (AS-REQ only).
    pub cname: Option<PrincipalName>,
    /// The realm of the server.
    pub realm: String,
    /// The server.
    pub sname: PrincipalName,
    /// Requested end time.
    pub till: KerberosTime,
    /// The nonce the reply must echo.
    pub nonce: u32,
    /// Encryption types acceptable for the session key, preferred first.
    pub etypes: Vec<EncType>,
}

impl KdcReq {
    /// The encoding of KDC-REQ-BODY (which a TGS-REQ's authenticator checksums).
    pub fn encode_body(&self) -> Vec<u8> {
        let mut f = Fields::new().flags(0, self.kdc_options);
        if let Some(cname) = &self.cname {
            f = f.raw(1, &cname.encode());
        }
        let etypes = der::sequence_of(self.etypes.iter().map(|e| der::integer(i64::from(e.0))));
        f.string(2, &self.realm)
            .raw(3, &self.sname.encode())
            .time(5, self.till)
            .int(7, i64::from(self.nonce))
            .raw(8, &etypes)
            .sequence(None)
    }

    /// The DER encoding of the whole request.
    pub fn encode(&self) -> Vec<u8> {
        let mut f = Fields::new().int(1, 5).int(2, i64::from(self.msg_type));
        if !self.padata.is_empty() {
            f = f.raw(3, &der::sequence_of(self.padata.iter().map(PaData::encode)));
        }
        let app = u8::try_from(self.msg_type).unwrap_or(10);
        f.raw(4, &self.encode_body()).sequence(Some(app))
    }
}

/// An AS-REP or TGS-REP ([APPLICATION 11] / [APPLICATION 13] KDC-REP).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KdcRep {
    /// 11 for AS-REP, 13 for TGS-REP.
    pub msg_type: i32,
    /// Pre-authentication data (ETYPE-INFO2 in an AS-REP).
    pub padata: Vec<PaData>,
    /// The client's realm.
    pub crealm: String,
    /// The client.
    pub cname: PrincipalName,
    /// The ticket.
    pub ticket: Ticket,
    /// EncKDCRepPart, under the client's key (AS) or the TGT session key (TGS).
    pub enc_part: EncryptedData,
}

impl KdcRep {
    fn decode_with(r: &mut Reader<'_>, app: u8) -> Result<Self, DecodeError> {
        let mut seq = r.nested(der::application(app))?.nested(der::SEQUENCE)?;
        if seq.field(0)?.integer()? != 5 {
            return Err(DecodeError::new("KDC-REP", "pvno is not 5"));
        }
        let msg_type = seq.field(1)?.int32()?;
        if msg_type != i32::from(app) {
            return Err(DecodeError::new(
                "KDC-REP",
                "msg-type does not match its tag",
            ));
        }
        let padata = match seq.optional(2)? {
            Some(mut f) => PaData::decode_list(&mut f)?,
            None => Vec::new(),
        };
        let crealm = seq.field(3)?.string()?.to_owned();
        let cname = PrincipalName::decode(&mut seq.field(4)?)?;
        let ticket = Ticket::decode_from(&mut seq.field(5)?)?;
        let enc_part = EncryptedData::decode(&mut seq.field(6)?)?;
        Ok(Self {
            msg_type,
            padata,
            crealm,
            cname,
            ticket,
            enc_part,
        })
    }
}

/// EncKDCRepPart ([APPLICATION 25] in an AS-REP, [APPLICATION 26] in a TGS-REP; either is
/// accepted in both, as MIT and Heimdal do).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncKdcRepPart {
    /// The session key of the ticket.
    pub key: EncryptionKey,
    /// The request's nonce.
    pub nonce: u32,
    /// Ticket flags.
    pub flags: u32,
    /// When the client authenticated.
    pub authtime: KerberosTime,
    /// Start of validity.
    pub starttime: Option<KerberosTime>,
    /// End of validity.
    pub endtime: KerberosTime,
    /// Renewable until.
    pub renew_till: Option<KerberosTime>,
    /// The server's realm.
    pub srealm: String,
    /// The server.
    pub sname: PrincipalName,
}

impl EncKdcRepPart {
    /// Decodes the plaintext of a KDC-REP's encrypted part.
    ///
    /// # Errors
    /// [`DecodeError`] when malformed.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, "EncKDCRepPart");
        let tag = r.peek_tag();
        let app = if tag == Some(der::application(26)) {
            26
        } else {
            25
        };
        let mut seq = r.nested(der::application(app))?.nested(der::SEQUENCE)?;
        let key = EncryptionKey::decode(&mut seq.field(0)?)?;
        let _last_req = seq.field(1)?;
        let nonce = seq.field(2)?.uint32()?;
        let _key_expiration = seq.optional(3)?;
        let flags = seq.field(4)?.flags()?;
        let authtime = seq.field(5)?.time()?;
        let starttime = seq.optional(6)?.map(|mut f| f.time()).transpose()?;
        let endtime = seq.field(7)?.time()?;
        let renew_till = seq.optional(8)?.map(|mut f| f.time()).transpose()?;
        let srealm = seq.field(9)?.string()?.to_owned();
        let sname = PrincipalName::decode(&mut seq.field(10)?)?;
        Ok(Self {
            key,
            nonce,
            flags,
            authtime,
            starttime,
            endtime,
            renew_till,
            srealm,
            sname,
        })
    }
}

/// KRB-ERROR ([APPLICATION 30]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KrbErrorMsg {
    /// The server's time.
    pub stime: KerberosTime,
    /// The error code.
    pub code: ErrorCode,
    /// The realm of the server.
    pub realm: String,
    /// Free text.
    pub e_text: Option<String>,
    /// Error-specific data (METHOD-DATA with ETYPE-INFO2 for PREAUTH_REQUIRED).
    pub e_data: Option<Vec<u8>>,
}

impl KrbErrorMsg {
    /// The DER encoding, as a KDC sends it (for `sname`, the TGS of `realm`).
    pub fn encode(&self) -> Vec<u8> {
        let mut fields = Fields::new()
            .int(0, 5)
            .int(1, 30)
            .time(4, self.stime)
            .int(5, 0)
            .int(6, i64::from(self.code.0))
            .string(9, &self.realm)
            .raw(10, &PrincipalName::krbtgt(&self.realm).encode());
        if let Some(text) = &self.e_text {
            fields = fields.string(11, text);
        }
        if let Some(data) = &self.e_data {
            fields = fields.octets(12, data);
        }
        fields.sequence(Some(30))
    }

    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut seq = r.nested(der::application(30))?.nested(der::SEQUENCE)?;
        let _pvno = seq.field(0)?;
        let _msg_type = seq.field(1)?;
        let _ctime = seq.optional(2)?;
        let _cusec = seq.optional(3)?;
        let stime = seq.field(4)?.time()?;
        let _susec = seq.field(5)?;
        let code = ErrorCode(seq.field(6)?.int32()?);
        let _crealm = seq.optional(7)?;
        let _cname = seq.optional(8)?;
        let realm = seq.field(9)?.string()?.to_owned();
        let _sname = seq.field(10)?;
        let e_text = seq
            .optional(11)?
            .map(|mut f| f.string().map(str::to_owned))
            .transpose()?;
        let e_data = seq
            .optional(12)?
            .map(|mut f| f.octets().map(<[u8]>::to_vec))
            .transpose()?;
        Ok(Self {
            stime,
            code,
            realm,
            e_text,
            e_data,
        })
    }

    /// The ETYPE-INFO2 entries of a PREAUTH_REQUIRED error's METHOD-DATA.
    pub fn etype_info2(&self) -> Vec<EtypeInfo2> {
        let Some(data) = &self.e_data else {
            return Vec::new();
        };
        let mut r = Reader::new(data, "METHOD-DATA");
        let Ok(list) = PaData::decode_list(&mut r) else {
            return Vec::new();
        };
        list.iter()
            .filter(|pa| pa.padata_type == pa_type::ETYPE_INFO2)
            .find_map(|pa| EtypeInfo2::decode_list(&pa.value).ok())
            .unwrap_or_default()
    }
}

/// What a KDC answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KdcReply {
    /// AS-REP or TGS-REP.
    Rep(KdcRep),
    /// KRB-ERROR.
    Error(KrbErrorMsg),
}

impl KdcReply {
    /// Decodes an AS-REP, a TGS-REP or a KRB-ERROR.
    ///
    /// # Errors
    /// [`DecodeError`] for anything else or anything malformed.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, "KDC reply");
        let reply = match r.peek_tag() {
            Some(t) if t == der::application(11) => Self::Rep(KdcRep::decode_with(&mut r, 11)?),
            Some(t) if t == der::application(13) => Self::Rep(KdcRep::decode_with(&mut r, 13)?),
            Some(t) if t == der::application(30) => Self::Error(KrbErrorMsg::decode_from(&mut r)?),
            _ => {
                return Err(DecodeError::new(
                    "KDC reply",
                    "not AS-REP, TGS-REP or KRB-ERROR",
                ));
            }
        };
        r.finish()?;
        Ok(reply)
    }
}

/// AP options ([RFC 4120 §5.5.1]).
///
/// [RFC 4120 §5.5.1]: https://www.rfc-editor.org/rfc/rfc4120#section-5.5.1
pub mod ap_options {
    /// use-session-key.
    pub const USE_SESSION_KEY: u32 = 0x4000_0000;
    /// mutual-required.
    pub const MUTUAL_REQUIRED: u32 = 0x2000_0000;
}

/// AP-REQ ([APPLICATION 14]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApReq {
    /// AP options.
    pub ap_options: u32,
    /// The service ticket.
    pub ticket: Ticket,
    /// The Authenticator, under the ticket's session key.
    pub authenticator: EncryptedData,
}

impl ApReq {
    /// The DER encoding.
    pub fn encode(&self) -> Vec<u8> {
        Fields::new()
            .int(0, 5)
            .int(1, 14)
            .flags(2, self.ap_options)
            .raw(3, &self.ticket.encode())
            .raw(4, &self.authenticator.encode())
            .sequence(Some(14))
    }

    /// Decodes an AP-REQ.
    ///
    /// # Errors
    /// [`DecodeError`] when malformed.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, "AP-REQ");
        let mut seq = r.nested(der::application(14))?.nested(der::SEQUENCE)?;
        if seq.field(0)?.integer()? != 5 || seq.field(1)?.integer()? != 14 {
            return Err(DecodeError::new("AP-REQ", "pvno or msg-type wrong"));
        }
        let ap_options = seq.field(2)?.flags()?;
        let ticket = Ticket::decode_from(&mut seq.field(3)?)?;
        let authenticator = EncryptedData::decode(&mut seq.field(4)?)?;
        r.finish()?;
        Ok(Self {
            ap_options,
            ticket,
            authenticator,
        })
    }
}

/// Authenticator ([APPLICATION 2]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticator {
    /// The client's realm.
    pub crealm: String,
    /// The client.
    pub cname: PrincipalName,
    /// The checksum (the GSS checksum of [RFC 4121 §4.1.1] in an AP-REQ of GSS-API).
    pub cksum: Option<Checksum>,
    /// Microseconds of `ctime`.
    pub cusec: u32,
    /// The client's time.
    pub ctime: KerberosTime,
    /// A subkey for the session.
    pub subkey: Option<EncryptionKey>,
    /// The initial sequence number of the client.
    pub seq_number: Option<u32>,
}

impl Authenticator {
    /// The DER encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut f = Fields::new()
            .int(0, 5)
            .string(1, &self.crealm)
            .raw(2, &self.cname.encode());
        if let Some(ck) = &self.cksum {
            f = f.raw(3, &ck.encode());
        }
        f = f.int(4, i64::from(self.cusec)).time(5, self.ctime);
        if let Some(key) = &self.subkey {
            f = f.raw(6, &key.encode());
        }
        if let Some(seq) = self.seq_number {
            f = f.int(7, i64::from(seq));
        }
        f.sequence(Some(2))
    }

    /// Decodes an Authenticator.
    ///
    /// # Errors
    /// [`DecodeError`] when malformed.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, "Authenticator");
        let mut seq = r.nested(der::application(2))?.nested(der::SEQUENCE)?;
        if seq.field(0)?.integer()? != 5 {
            return Err(DecodeError::new("Authenticator", "vno is not 5"));
        }
        let crealm = seq.field(1)?.string()?.to_owned();
        let cname = PrincipalName::decode(&mut seq.field(2)?)?;
        let cksum = seq
            .optional(3)?
            .map(|mut f| Checksum::decode(&mut f))
            .transpose()?;
        let cusec = seq.field(4)?.uint32()?;
        let ctime = seq.field(5)?.time()?;
        let subkey = seq
            .optional(6)?
            .map(|mut f| EncryptionKey::decode(&mut f))
            .transpose()?;
        let seq_number = seq.optional(7)?.map(|mut f| f.uint32()).transpose()?;
        Ok(Self {
            crealm,
            cname,
            cksum,
            cusec,
            ctime,
            subkey,
            seq_number,
        })
    }
}

/// AP-REP ([APPLICATION 15]) with its decrypted part (EncAPRepPart, [APPLICATION 27]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApRep {
    /// EncAPRepPart under the session key.
    pub enc_part: EncryptedData,
}

impl ApRep {
    /// The DER encoding.
    pub fn encode(&self) -> Vec<u8> {
        Fields::new()
            .int(0, 5)
            .int(1, 15)
            .raw(2, &self.enc_part.encode())
            .sequence(Some(15))
    }

    /// Decodes an AP-REP.
    ///
    /// # Errors
    /// [`DecodeError`] when malformed.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, "AP-REP");
        let mut seq = r.nested(der::application(15))?.nested(der::SEQUENCE)?;
        if seq.field(0)?.integer()? != 5 || seq.field(1)?.integer()? != 15 {
            return Err(DecodeError::new("AP-REP", "pvno or msg-type wrong"));
        }
        let enc_part = EncryptedData::decode(&mut seq.field(2)?)?;
        r.finish()?;
        Ok(Self { enc_part })
    }
}

/// EncAPRepPart ([APPLICATION 27]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncApRepPart {
    /// The client's time from the authenticator.
    pub ctime: KerberosTime,
    /// Its microseconds.
    pub cusec: u32,
    /// The acceptor's subkey.
    pub subkey: Option<EncryptionKey>,
    /// The acceptor's initial sequence number.
    pub seq_number: Option<u32>,
}

impl EncApRepPart {
    /// The DER encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut f = Fields::new()
            .time(0, self.ctime)
            .int(1, i64::from(self.cusec));
        if let Some(key) = &self.subkey {
            f = f.raw(2, &key.encode());
        }
        if let Some(seq) = self.seq_number {
            f = f.int(3, i64::from(seq));
        }
        f.sequence(Some(27))
    }

    /// Decodes an EncAPRepPart.
    ///
    /// # Errors
    /// [`DecodeError`] when malformed.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, "EncAPRepPart");
        let mut seq = r.nested(der::application(27))?.nested(der::SEQUENCE)?;
        let ctime = seq.field(0)?.time()?;
        let cusec = seq.field(1)?.uint32()?;
        let subkey = seq
            .optional(2)?
            .map(|mut f| EncryptionKey::decode(&mut f))
            .transpose()?;
        let seq_number = seq.optional(3)?.map(|mut f| f.uint32()).transpose()?;
        Ok(Self {
            ctime,
            cusec,
            subkey,
            seq_number,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_krb_error_round_trips() {
        let error = KrbErrorMsg {
            stime: KerberosTime(1_700_000_000),
            code: ErrorCode::KRB_AP_ERR_SKEW,
            realm: "TEST.LOCAL".into(),
            e_text: Some("Too large time skew".into()),
            e_data: Some(vec![1, 2, 3]),
        };
        assert_eq!(
            KdcReply::decode(&error.encode()).unwrap(),
            KdcReply::Error(error)
        );
        assert!(
            ErrorCode::KDC_ERR_PREAUTH_FAILED
                .hint()
                .unwrap()
                .contains("password")
        );
        assert_eq!(ErrorCode::KRB_ERR_GENERIC.hint(), None);
    }
}
