//! The three NTLM messages ([MS-NLMP §2.2.1]), their VERSION field and AV pairs.
//!
//! Every message starts with the same 12 bytes, then a fixed part whose variable-length fields
//! are `(Len, MaxLen, BufferOffset)` triples pointing into the payload that follows:
//!
//! ```text
//! 0       8            12
//! +-------+------------+--------------------------------+---------------+----------+
//! |NTLMSSP\0| MessageType | fixed fields, (Len u16, MaxLen u16, Offset u32) | [VERSION] | payload |
//! +-------+------------+--------------------------------+---------------+----------+
//! ```
//!
//! The decoders check every offset and length against the message before reading a byte of the
//! payload, and copy nothing before the bytes are known to be there.
//!
//! [MS-NLMP §2.2.1]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/907f519d-6217-45b1-b421-dca10fc8af0d

use core::fmt;

use dsbackup_proto::{DecodeError, EncodeError};

use crate::flags::NegotiateFlags;

/// `Signature` of every NTLM message.
pub(crate) const NTLMSSP_SIGNATURE: [u8; 8] = *b"NTLMSSP\0";

/// The VERSION structure ([MS-NLMP §2.2.2.10]), 8 bytes; for debugging only.
///
/// ```text
/// ProductMajorVersion u8 | ProductMinorVersion u8 | ProductBuild u16 | Reserved [u8; 3] | NTLMRevisionCurrent u8
/// ```
///
/// [MS-NLMP §2.2.2.10]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/b1a6ceb2-f8ad-462b-b5af-f18527c48175
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Version {
    /// `ProductMajorVersion`.
    pub product_major_version: u8,
    /// `ProductMinorVersion`.
    pub product_minor_version: u8,
    /// `ProductBuild`.
    pub product_build: u16,
    /// `Reserved`, kept so a decoded message re-encodes unchanged.
    pub reserved: [u8; 3],
    /// `NTLMRevisionCurrent` (15 = NTLMSSP_REVISION_W2K3).
    pub ntlm_revision_current: u8,
}

impl Version {
    /// Encoded length.
    pub const LEN: usize = 1 /* ProductMajorVersion */ + 1 /* ProductMinorVersion */
        + 2 /* ProductBuild */ + 3 /* Reserved */ + 1 /* NTLMRevisionCurrent */;

    /// NTLMSSP_REVISION_W2K3.
    pub const NTLMSSP_REVISION_W2K3: u8 = 0x0f;

    /// Windows 10 / Server 2016+ (10.0, build 20348), revision 15: what this crate announces.
    pub const WINDOWS_10: Self = Self {
        product_major_version: 10,
        product_minor_version: 0,
        product_build: 20348,
        reserved: [0; 3],
        ntlm_revision_current: Self::NTLMSSP_REVISION_W2K3,
    };

    fn decode(bytes: [u8; 8]) -> Self {
        let [major, minor, b0, b1, r0, r1, r2, revision] = bytes;
        Self {
            product_major_version: major,
            product_minor_version: minor,
            product_build: u16::from_le_bytes([b0, b1]),
            reserved: [r0, r1, r2],
            ntlm_revision_current: revision,
        }
    }

    fn encode(self) -> [u8; 8] {
        let [b0, b1] = self.product_build.to_le_bytes();
        let [r0, r1, r2] = self.reserved;
        [
            self.product_major_version,
            self.product_minor_version,
            b0,
            b1,
            r0,
            r1,
            r2,
            self.ntlm_revision_current,
        ]
    }
}

/// `AvId` of an AV_PAIR ([MS-NLMP §2.2.2.1]); unknown values round-trip.
///
/// [MS-NLMP §2.2.2.1]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/83f5e789-660d-4781-8491-5f8c6641f75e
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AvId(pub u16);

impl AvId {
    /// MsvAvEOL: end of the list.
    pub const EOL: Self = Self(0);
    /// MsvAvNbComputerName: NetBIOS computer name (UTF-16LE).
    pub const NB_COMPUTER_NAME: Self = Self(1);
    /// MsvAvNbDomainName: NetBIOS domain name (UTF-16LE).
    pub const NB_DOMAIN_NAME: Self = Self(2);
    /// MsvAvDnsComputerName: FQDN of the computer (UTF-16LE).
    pub const DNS_COMPUTER_NAME: Self = Self(3);
    /// MsvAvDnsDomainName: FQDN of the domain (UTF-16LE).
    pub const DNS_DOMAIN_NAME: Self = Self(4);
    /// MsvAvDnsTreeName: FQDN of the forest (UTF-16LE).
    pub const DNS_TREE_NAME: Self = Self(5);
    /// MsvAvFlags: a 32-bit [`AvFlags`] value.
    pub const FLAGS: Self = Self(6);
    /// MsvAvTimestamp: FILETIME of the server (64-bit little-endian).
    pub const TIMESTAMP: Self = Self(7);
    /// MsvAvSingleHost: a Single_Host_Data structure (48 bytes).
    pub const SINGLE_HOST: Self = Self(8);
    /// MsvAvTargetName: SPN of the target server (UTF-16LE).
    pub const TARGET_NAME: Self = Self(9);
    /// MsvAvChannelBindings: MD5 of the gss_channel_bindings_struct (16 bytes; zero when none).
    pub const CHANNEL_BINDINGS: Self = Self(10);

    /// The MsvAv* name of a known value.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::EOL => "MsvAvEOL",
            Self::NB_COMPUTER_NAME => "MsvAvNbComputerName",
            Self::NB_DOMAIN_NAME => "MsvAvNbDomainName",
            Self::DNS_COMPUTER_NAME => "MsvAvDnsComputerName",
            Self::DNS_DOMAIN_NAME => "MsvAvDnsDomainName",
            Self::DNS_TREE_NAME => "MsvAvDnsTreeName",
            Self::FLAGS => "MsvAvFlags",
            Self::TIMESTAMP => "MsvAvTimestamp",
            Self::SINGLE_HOST => "MsvAvSingleHost",
            Self::TARGET_NAME => "MsvAvTargetName",
            Self::CHANNEL_BINDINGS => "MsvAvChannelBindings",
            _ => return None,
        })
    }
}

impl fmt::Debug for AvId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "AvId({:#06x})", self.0),
        }
    }
}

bitflags::bitflags! {
    /// The value of MsvAvFlags ([MS-NLMP §2.2.2.1]).
    ///
    /// [MS-NLMP §2.2.2.1]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/83f5e789-660d-4781-8491-5f8c6641f75e
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    #[cfg_attr(feature = "serde", derive(serde::Serialize))]
    #[cfg_attr(feature = "serde", serde(transparent))]
    pub struct AvFlags: u32 {
        /// The server's authentication is constrained.
        const CONSTRAINED = 0x0000_0001;
        /// The AUTHENTICATE carries a MIC.
        const MIC_PRESENT = 0x0000_0002;
        /// The MsvAvTargetName was supplied by an untrusted source.
        const UNVERIFIED_TARGET_NAME = 0x0000_0004;
    }
}

/// One AV_PAIR: `AvId u16 | AvLen u16 | Value [u8; AvLen]`.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AvPair {
    /// `AvId`.
    pub id: AvId,
    /// `Value`.
    pub value: Vec<u8>,
}

/// An AV_PAIR list without its terminating MsvAvEOL (the encoder adds it).
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AvPairs(pub Vec<AvPair>);

impl AvPairs {
    /// Decodes a list up to and including MsvAvEOL; returns it and the number of bytes it took
    /// (bytes after MsvAvEOL are the caller's business).
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] when a pair runs past the input or MsvAvEOL is missing;
    /// [`DecodeError::InvalidField`] when MsvAvEOL has a non-zero length.
    pub fn decode(input: &[u8]) -> Result<(Self, usize), DecodeError> {
        let mut pairs = Vec::new();
        let mut at = 0usize;
        loop {
            let header = input.get(at..).and_then(|rest| rest.get(..4));
            let Some(&[i0, i1, l0, l1]) = header else {
                return Err(DecodeError::Truncated {
                    what: "AV_PAIR list (no MsvAvEOL)",
                    needed: at.saturating_add(4),
                    available: input.len(),
                });
            };
            let id = AvId(u16::from_le_bytes([i0, i1]));
            let len = usize::from(u16::from_le_bytes([l0, l1]));
            let start = at.saturating_add(4);
            let end = start.saturating_add(len);
            if id == AvId::EOL {
                if len != 0 {
                    return Err(DecodeError::InvalidField {
                        what: "AV_PAIR",
                        field: "AvLen",
                        reason: "MsvAvEOL must have a zero length",
                    });
                }
                return Ok((Self(pairs), start));
            }
            let Some(value) = input.get(start..end) else {
                return Err(DecodeError::Truncated {
                    what: "AV_PAIR value",
                    needed: end,
                    available: input.len(),
                });
            };
            pairs.push(AvPair {
                id,
                value: value.to_vec(),
            });
            at = end;
        }
    }

    /// Exact number of bytes [`encode`](Self::encode) appends (with MsvAvEOL).
    pub fn encoded_len(&self) -> usize {
        self.0
            .iter()
            .filter(|pair| pair.id != AvId::EOL)
            .map(|pair| 4usize.saturating_add(pair.value.len()))
            .fold(4, usize::saturating_add)
    }

    /// Appends the list and its MsvAvEOL; pairs with the id MsvAvEOL in the list are skipped
    /// (they would end it early).
    ///
    /// # Errors
    /// [`EncodeError::TooLong`] when a value is longer than 65535 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        for pair in self.0.iter().filter(|pair| pair.id != AvId::EOL) {
            let len = u16::try_from(pair.value.len()).map_err(|_| EncodeError::TooLong {
                what: "AV_PAIR",
                field: "AvLen",
                value: pair.value.len(),
                max: usize::from(u16::MAX),
            })?;
            out.extend_from_slice(&pair.id.0.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&pair.value);
        }
        out.extend_from_slice(&[0; 4]);
        Ok(())
    }

    /// The value of the first pair with this id.
    pub fn get(&self, id: AvId) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|pair| pair.id == id)
            .map(|pair| pair.value.as_slice())
    }

    /// Sets the value of the first pair with this id, or appends the pair.
    pub fn set(&mut self, id: AvId, value: Vec<u8>) {
        match self.0.iter_mut().find(|pair| pair.id == id) {
            Some(pair) => pair.value = value,
            None => self.0.push(AvPair { id, value }),
        }
    }

    /// MsvAvTimestamp, when present and 8 bytes long.
    pub fn timestamp(&self) -> Option<u64> {
        let bytes: [u8; 8] = self.get(AvId::TIMESTAMP)?.try_into().ok()?;
        Some(u64::from_le_bytes(bytes))
    }

    /// MsvAvFlags, when present and 4 bytes long.
    pub fn flags(&self) -> Option<AvFlags> {
        let bytes: [u8; 4] = self.get(AvId::FLAGS)?.try_into().ok()?;
        Some(AvFlags::from_bits_retain(u32::from_le_bytes(bytes)))
    }

    /// A UTF-16LE name (MsvAvNbComputerName, MsvAvDnsDomainName, ...), when present and valid.
    pub fn name(&self, id: AvId) -> Option<String> {
        utf16le_to_string(self.get(id)?)
    }
}

/// NEGOTIATE_MESSAGE ([MS-NLMP §2.2.1.1]).
///
/// ```text
/// 0  Signature "NTLMSSP\0"        8  MessageType = 1
/// 12 NegotiateFlags               16 DomainNameFields (Len, MaxLen, Offset)
/// 24 WorkstationFields            32 VERSION (when NEGOTIATE_VERSION)   40 payload
/// ```
///
/// [MS-NLMP §2.2.1.1]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/b34032e5-3aae-4bc6-84c3-c6d80eadf7f2
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NegotiateMessage {
    /// `NegotiateFlags`.
    pub flags: NegotiateFlags,
    /// `DomainName` (OEM code page bytes), usually empty.
    pub domain_name: Vec<u8>,
    /// `Workstation` (OEM code page bytes), usually empty.
    pub workstation: Vec<u8>,
    /// `Version`, present when NEGOTIATE_VERSION is set.
    pub version: Option<Version>,
}

impl NegotiateMessage {
    /// `MessageType` of NEGOTIATE_MESSAGE.
    pub const MESSAGE_TYPE: u32 = 1;
    /// Offsets of DomainNameFields and WorkstationFields.
    const FIELDS: [usize; 2] = [16, 24];
    const FIXED_LEN: usize = 8 /* Signature */ + 4 /* MessageType */ + 4 /* NegotiateFlags */
        + 8 /* DomainNameFields */ + 8 /* WorkstationFields */;

    /// Decodes a NEGOTIATE_MESSAGE.
    ///
    /// # Errors
    /// [`DecodeError`] when the message is short, of another type, or a field points outside it.
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        const WHAT: &str = "NEGOTIATE_MESSAGE";
        check_header(input, WHAT, Self::MESSAGE_TYPE, Self::FIXED_LEN)?;
        let flags = NegotiateFlags::from_bits_retain(read_u32(input, 12, WHAT)?);
        let payload = payload_start(input, &Self::FIELDS);
        let (version, header_len) = read_version(input, flags, Self::FIXED_LEN, payload, WHAT)?;
        let domain_name = read_field(input, 16, header_len, WHAT, "DomainNameFields")?.to_vec();
        let workstation = read_field(input, 24, header_len, WHAT, "WorkstationFields")?.to_vec();
        Ok(Self {
            flags,
            domain_name,
            workstation,
            version,
        })
    }

    /// Exact number of bytes [`encode`](Self::encode) returns.
    pub fn encoded_len(&self) -> usize {
        header_len(Self::FIXED_LEN, self.version.is_some(), false)
            .saturating_add(self.domain_name.len())
            .saturating_add(self.workstation.len())
    }

    /// Encodes the message.
    ///
    /// # Errors
    /// [`EncodeError::TooLong`] when a field is longer than 65535 bytes.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(self.encoded_len());
        let mut payload = Payload::new(header_len(Self::FIXED_LEN, self.version.is_some(), false));
        out.extend_from_slice(&NTLMSSP_SIGNATURE);
        out.extend_from_slice(&Self::MESSAGE_TYPE.to_le_bytes());
        out.extend_from_slice(&self.flags.bits().to_le_bytes());
        payload.field(&mut out, &self.domain_name, "DomainNameFields")?;
        payload.field(&mut out, &self.workstation, "WorkstationFields")?;
        write_version(&mut out, self.version, false);
        out.extend_from_slice(&payload.data);
        debug_assert_eq!(out.len(), self.encoded_len());
        Ok(out)
    }
}

/// CHALLENGE_MESSAGE ([MS-NLMP §2.2.1.2]).
///
/// ```text
/// 0  Signature "NTLMSSP\0"   8  MessageType = 2      12 TargetNameFields
/// 20 NegotiateFlags          24 ServerChallenge [8]  32 Reserved [8]
/// 40 TargetInfoFields        48 VERSION (when NEGOTIATE_VERSION)   56 payload
/// ```
///
/// [MS-NLMP §2.2.1.2]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/801a4681-8809-4be9-ab0d-61dcfe762786
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChallengeMessage {
    /// `NegotiateFlags`.
    pub flags: NegotiateFlags,
    /// `TargetName` (UTF-16LE or OEM as the flags say).
    pub target_name: Vec<u8>,
    /// `ServerChallenge`.
    pub server_challenge: [u8; 8],
    /// `Reserved`, kept so a decoded message re-encodes unchanged.
    pub reserved: [u8; 8],
    /// `TargetInfo`; `None` when its length is zero.
    pub target_info: Option<AvPairs>,
    /// `Version`, present when NEGOTIATE_VERSION is set.
    pub version: Option<Version>,
}

impl ChallengeMessage {
    /// `MessageType` of CHALLENGE_MESSAGE.
    pub const MESSAGE_TYPE: u32 = 2;
    /// Offsets of TargetNameFields and TargetInfoFields.
    const FIELDS: [usize; 2] = [12, 40];
    const FIXED_LEN: usize = 8 /* Signature */ + 4 /* MessageType */ + 8 /* TargetNameFields */
        + 4 /* NegotiateFlags */ + 8 /* ServerChallenge */ + 8 /* Reserved */
        + 8 /* TargetInfoFields */;

    /// Decodes a CHALLENGE_MESSAGE.
    ///
    /// # Errors
    /// [`DecodeError`] when the message is short, of another type, a field points outside it, or
    /// `TargetInfo` is not an AV_PAIR list ending with MsvAvEOL and nothing after it.
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        const WHAT: &str = "CHALLENGE_MESSAGE";
        check_header(input, WHAT, Self::MESSAGE_TYPE, Self::FIXED_LEN)?;
        let flags = NegotiateFlags::from_bits_retain(read_u32(input, 20, WHAT)?);
        let payload = payload_start(input, &Self::FIELDS);
        let (version, header_len) = read_version(input, flags, Self::FIXED_LEN, payload, WHAT)?;
        let target_name = read_field(input, 12, header_len, WHAT, "TargetNameFields")?.to_vec();
        let server_challenge = read_array(input, 24, WHAT)?;
        let reserved = read_array(input, 32, WHAT)?;
        let info = read_field(input, 40, header_len, WHAT, "TargetInfoFields")?;
        let target_info = if info.is_empty() {
            None
        } else {
            let (pairs, used) = AvPairs::decode(info)?;
            if used != info.len() {
                return Err(DecodeError::TrailingBytes {
                    what: "TargetInfo after MsvAvEOL",
                    count: info.len().saturating_sub(used),
                });
            }
            Some(pairs)
        };
        Ok(Self {
            flags,
            target_name,
            server_challenge,
            reserved,
            target_info,
            version,
        })
    }

    /// Exact number of bytes [`encode`](Self::encode) returns.
    pub fn encoded_len(&self) -> usize {
        header_len(Self::FIXED_LEN, self.version.is_some(), false)
            .saturating_add(self.target_name.len())
            .saturating_add(self.target_info.as_ref().map_or(0, AvPairs::encoded_len))
    }

    /// Encodes the message.
    ///
    /// # Errors
    /// [`EncodeError::TooLong`] when a field is longer than 65535 bytes.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut info = Vec::new();
        if let Some(pairs) = &self.target_info {
            pairs.encode(&mut info)?;
        }
        let mut out = Vec::with_capacity(self.encoded_len());
        let mut payload = Payload::new(header_len(Self::FIXED_LEN, self.version.is_some(), false));
        out.extend_from_slice(&NTLMSSP_SIGNATURE);
        out.extend_from_slice(&Self::MESSAGE_TYPE.to_le_bytes());
        payload.field(&mut out, &self.target_name, "TargetNameFields")?;
        out.extend_from_slice(&self.flags.bits().to_le_bytes());
        out.extend_from_slice(&self.server_challenge);
        out.extend_from_slice(&self.reserved);
        payload.field(&mut out, &info, "TargetInfoFields")?;
        write_version(&mut out, self.version, false);
        out.extend_from_slice(&payload.data);
        debug_assert_eq!(out.len(), self.encoded_len());
        Ok(out)
    }
}

/// AUTHENTICATE_MESSAGE ([MS-NLMP §2.2.1.3]).
///
/// ```text
/// 0  Signature "NTLMSSP\0"           8  MessageType = 3
/// 12 LmChallengeResponseFields       20 NtChallengeResponseFields
/// 28 DomainNameFields                36 UserNameFields
/// 44 WorkstationFields               52 EncryptedRandomSessionKeyFields
/// 60 NegotiateFlags                  64 VERSION [8]      72 MIC [16]      88 payload
/// ```
///
/// The MIC is taken to be present when the payload starts at or after offset 88 (the lowest
/// offset of a non-empty field, or the message length when all are empty), as Windows lays it
/// out; VERSION likewise when NEGOTIATE_VERSION is set and the payload starts at or after 72.
///
/// [MS-NLMP §2.2.1.3]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/033d32cc-88f9-4483-9bf2-b273055038ce
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticateMessage {
    /// `NegotiateFlags`.
    pub flags: NegotiateFlags,
    /// `LmChallengeResponse` (LMv2: 24 bytes; `Z(24)` when the challenge had a timestamp).
    pub lm_challenge_response: Vec<u8>,
    /// `NtChallengeResponse` (NTLMv2: NTProofStr followed by the client's blob).
    pub nt_challenge_response: Vec<u8>,
    /// `DomainName` (UTF-16LE or OEM as the flags say).
    pub domain_name: Vec<u8>,
    /// `UserName`.
    pub user_name: Vec<u8>,
    /// `Workstation`.
    pub workstation: Vec<u8>,
    /// `EncryptedRandomSessionKey` (16 bytes with NEGOTIATE_KEY_EXCH, else empty).
    pub encrypted_random_session_key: Vec<u8>,
    /// `Version`, present when NEGOTIATE_VERSION is set.
    pub version: Option<Version>,
    /// `MIC`, when the layout has room for it.
    pub mic: Option<[u8; 16]>,
}

impl AuthenticateMessage {
    /// `MessageType` of AUTHENTICATE_MESSAGE.
    pub const MESSAGE_TYPE: u32 = 3;
    /// Offset of the MIC field in the message.
    pub const MIC_OFFSET: usize = Self::FIXED_LEN + Version::LEN;
    const FIXED_LEN: usize = 8 /* Signature */ + 4 /* MessageType */
        + 8 /* LmChallengeResponseFields */ + 8 /* NtChallengeResponseFields */
        + 8 /* DomainNameFields */ + 8 /* UserNameFields */ + 8 /* WorkstationFields */
        + 8 /* EncryptedRandomSessionKeyFields */ + 4 /* NegotiateFlags */;
    const FIELDS: [usize; 6] = [12, 20, 28, 36, 44, 52];

    /// Decodes an AUTHENTICATE_MESSAGE.
    ///
    /// # Errors
    /// [`DecodeError`] when the message is short, of another type, or a field points outside it.
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        const WHAT: &str = "AUTHENTICATE_MESSAGE";
        check_header(input, WHAT, Self::MESSAGE_TYPE, Self::FIXED_LEN)?;
        let flags = NegotiateFlags::from_bits_retain(read_u32(input, 60, WHAT)?);
        let payload = payload_start(input, &Self::FIELDS);
        let (version, mut header_len) = read_version(input, flags, Self::FIXED_LEN, payload, WHAT)?;
        let mic_end = Self::MIC_OFFSET.saturating_add(16);
        let mic = if payload >= mic_end {
            header_len = mic_end;
            Some(read_array(input, Self::MIC_OFFSET, WHAT)?)
        } else {
            None
        };
        let [lm, nt, domain, user, workstation, key] = Self::FIELDS;
        let field = |offset: usize, name: &'static str| {
            read_field(input, offset, header_len, WHAT, name).map(<[u8]>::to_vec)
        };
        Ok(Self {
            flags,
            lm_challenge_response: field(lm, "LmChallengeResponseFields")?,
            nt_challenge_response: field(nt, "NtChallengeResponseFields")?,
            domain_name: field(domain, "DomainNameFields")?,
            user_name: field(user, "UserNameFields")?,
            workstation: field(workstation, "WorkstationFields")?,
            encrypted_random_session_key: field(key, "EncryptedRandomSessionKeyFields")?,
            version,
            mic,
        })
    }

    /// Exact number of bytes [`encode`](Self::encode) returns.
    pub fn encoded_len(&self) -> usize {
        [
            &self.lm_challenge_response,
            &self.nt_challenge_response,
            &self.domain_name,
            &self.user_name,
            &self.workstation,
            &self.encrypted_random_session_key,
        ]
        .iter()
        .map(|field| field.len())
        .fold(
            header_len(Self::FIXED_LEN, self.version.is_some(), self.mic.is_some()),
            usize::saturating_add,
        )
    }

    /// Encodes the message; the payload is laid out as Windows does: domain, user, workstation,
    /// LM response, NT response, session key.
    ///
    /// # Errors
    /// [`EncodeError::TooLong`] when a field is longer than 65535 bytes.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let start = header_len(Self::FIXED_LEN, self.version.is_some(), self.mic.is_some());
        // Payload order differs from the order of the field descriptors: place it first.
        let mut payload = Payload::new(start);
        let domain = payload.place(&self.domain_name, "DomainNameFields")?;
        let user = payload.place(&self.user_name, "UserNameFields")?;
        let workstation = payload.place(&self.workstation, "WorkstationFields")?;
        let lm = payload.place(&self.lm_challenge_response, "LmChallengeResponseFields")?;
        let nt = payload.place(&self.nt_challenge_response, "NtChallengeResponseFields")?;
        let key = payload.place(
            &self.encrypted_random_session_key,
            "EncryptedRandomSessionKeyFields",
        )?;
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&NTLMSSP_SIGNATURE);
        out.extend_from_slice(&Self::MESSAGE_TYPE.to_le_bytes());
        for descriptor in [lm, nt, domain, user, workstation, key] {
            out.extend_from_slice(&descriptor);
        }
        out.extend_from_slice(&self.flags.bits().to_le_bytes());
        write_version(&mut out, self.version, self.mic.is_some());
        if let Some(mic) = &self.mic {
            out.extend_from_slice(mic);
        }
        out.extend_from_slice(&payload.data);
        debug_assert_eq!(out.len(), self.encoded_len());
        Ok(out)
    }

    /// The user name as text, decoded per NEGOTIATE_UNICODE.
    pub fn user(&self) -> Option<String> {
        decode_string(self.flags, &self.user_name)
    }

    /// The domain name as text, decoded per NEGOTIATE_UNICODE.
    pub fn domain(&self) -> Option<String> {
        decode_string(self.flags, &self.domain_name)
    }

    /// The workstation name as text, decoded per NEGOTIATE_UNICODE.
    pub fn workstation_name(&self) -> Option<String> {
        decode_string(self.flags, &self.workstation)
    }
}

/// Any of the three messages, told apart by `MessageType`.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// NEGOTIATE_MESSAGE.
    Negotiate(NegotiateMessage),
    /// CHALLENGE_MESSAGE.
    Challenge(ChallengeMessage),
    /// AUTHENTICATE_MESSAGE.
    Authenticate(AuthenticateMessage),
}

impl Message {
    /// Decodes whichever message `input` holds.
    ///
    /// # Errors
    /// [`DecodeError`] as the message's own decoder, or for an unknown `MessageType`.
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        match read_u32(input, 8, "NTLM message")? {
            NegotiateMessage::MESSAGE_TYPE => NegotiateMessage::decode(input).map(Self::Negotiate),
            ChallengeMessage::MESSAGE_TYPE => ChallengeMessage::decode(input).map(Self::Challenge),
            AuthenticateMessage::MESSAGE_TYPE => {
                AuthenticateMessage::decode(input).map(Self::Authenticate)
            }
            _ => Err(DecodeError::InvalidField {
                what: "NTLM message",
                field: "MessageType",
                reason: "not 1, 2 or 3",
            }),
        }
    }

    /// Encodes the message.
    ///
    /// # Errors
    /// [`EncodeError::TooLong`] when a field is longer than 65535 bytes.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        match self {
            Self::Negotiate(message) => message.encode(),
            Self::Challenge(message) => message.encode(),
            Self::Authenticate(message) => message.encode(),
        }
    }
}

/// Text of a name field: UTF-16LE with NEGOTIATE_UNICODE, else OEM bytes read as Latin-1.
///
/// `None` for invalid UTF-16 (an odd length or an unpaired surrogate).
pub fn decode_string(flags: NegotiateFlags, bytes: &[u8]) -> Option<String> {
    if flags.contains(NegotiateFlags::NEGOTIATE_UNICODE) {
        utf16le_to_string(bytes)
    } else {
        Some(bytes.iter().copied().map(char::from).collect())
    }
}

/// Bytes of a name field: UTF-16LE with NEGOTIATE_UNICODE, else Latin-1 (`?` for what it lacks).
pub(crate) fn encode_string(flags: NegotiateFlags, text: &str) -> Vec<u8> {
    if flags.contains(NegotiateFlags::NEGOTIATE_UNICODE) {
        crate::crypto::utf16le(text)
    } else {
        text.chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
            .collect()
    }
}

fn utf16le_to_string(bytes: &[u8]) -> Option<String> {
    let (units, rest) = bytes.as_chunks::<2>();
    if !rest.is_empty() {
        return None;
    }
    char::decode_utf16(units.iter().map(|&unit| u16::from_le_bytes(unit)))
        .collect::<Result<String, _>>()
        .ok()
}

fn check_header(
    input: &[u8],
    what: &'static str,
    message_type: u32,
    fixed_len: usize,
) -> Result<(), DecodeError> {
    if input.len() < fixed_len {
        return Err(DecodeError::Truncated {
            what,
            needed: fixed_len,
            available: input.len(),
        });
    }
    if input.get(..8) != Some(NTLMSSP_SIGNATURE.as_slice()) {
        return Err(DecodeError::InvalidField {
            what,
            field: "Signature",
            reason: "not \"NTLMSSP\\0\"",
        });
    }
    if read_u32(input, 8, what)? != message_type {
        return Err(DecodeError::InvalidField {
            what,
            field: "MessageType",
            reason: "not the type of this message",
        });
    }
    Ok(())
}

fn read_array<const N: usize>(
    input: &[u8],
    at: usize,
    what: &'static str,
) -> Result<[u8; N], DecodeError> {
    input
        .get(at..)
        .and_then(|rest| rest.first_chunk::<N>())
        .copied()
        .ok_or_else(|| DecodeError::Truncated {
            what,
            needed: at.saturating_add(N),
            available: input.len(),
        })
}

fn read_u32(input: &[u8], at: usize, what: &'static str) -> Result<u32, DecodeError> {
    read_array(input, at, what).map(u32::from_le_bytes)
}

/// VERSION after the fixed part when NEGOTIATE_VERSION is set; returns it and where the fixed
/// part ends.
fn read_version(
    input: &[u8],
    flags: NegotiateFlags,
    fixed_len: usize,
    payload_start: usize,
    what: &'static str,
) -> Result<(Option<Version>, usize), DecodeError> {
    if !flags.contains(NegotiateFlags::NEGOTIATE_VERSION) {
        return Ok((None, fixed_len));
    }
    let end = fixed_len.saturating_add(Version::LEN);
    // A VERSION that would overlap the payload is not there (some peers set the flag alone).
    if payload_start < end {
        return Ok((None, fixed_len));
    }
    let bytes = read_array(input, fixed_len, what)?;
    Ok((Some(Version::decode(bytes)), end))
}

/// The lowest payload offset of the message's non-empty fields (descriptors at `fields`), or
/// the message length when all are empty (empty fields carry any offset: impacket leaves them
/// at zero). Never more than the message length.
fn payload_start(input: &[u8], fields: &[usize]) -> usize {
    fields
        .iter()
        .filter_map(|&at| {
            let [l0, l1, _, _, o0, o1, o2, o3] = read_array::<8>(input, at, "").ok()?;
            let offset = u32::from_le_bytes([o0, o1, o2, o3]);
            (u16::from_le_bytes([l0, l1]) > 0)
                .then(|| usize::try_from(offset).unwrap_or(usize::MAX))
        })
        .min()
        .unwrap_or(input.len())
        .min(input.len())
}

/// Reads a `(Len, MaxLen, BufferOffset)` descriptor at `at` and returns the bytes it points to.
fn read_field<'a>(
    input: &'a [u8],
    at: usize,
    header_len: usize,
    what: &'static str,
    field: &'static str,
) -> Result<&'a [u8], DecodeError> {
    let [l0, l1, _max0, _max1, o0, o1, o2, o3] = read_array::<8>(input, at, what)?;
    let len = usize::from(u16::from_le_bytes([l0, l1]));
    if len == 0 {
        return Ok(&[]);
    }
    let offset = usize::try_from(u32::from_le_bytes([o0, o1, o2, o3])).unwrap_or(usize::MAX);
    if offset < header_len {
        return Err(DecodeError::InvalidField {
            what,
            field,
            reason: "BufferOffset points inside the fixed part of the message",
        });
    }
    let end = offset.saturating_add(len);
    input.get(offset..end).ok_or(DecodeError::Truncated {
        what: field,
        needed: end,
        available: input.len(),
    })
}

fn header_len(fixed_len: usize, version: bool, mic: bool) -> usize {
    let mut len = fixed_len;
    if version || mic {
        len = len.saturating_add(Version::LEN);
    }
    if mic {
        len = len.saturating_add(16);
    }
    len
}

fn write_version(out: &mut Vec<u8>, version: Option<Version>, slot_needed: bool) {
    match version {
        Some(version) => out.extend_from_slice(&version.encode()),
        None if slot_needed => out.extend_from_slice(&[0; Version::LEN]),
        None => {}
    }
}

/// The payload of a message being encoded, and where the next field goes.
struct Payload {
    start: usize,
    data: Vec<u8>,
}

impl Payload {
    fn new(start: usize) -> Self {
        Self {
            start,
            data: Vec::new(),
        }
    }

    /// Appends `bytes` to the payload and returns its `(Len, MaxLen, BufferOffset)` descriptor.
    fn place(&mut self, bytes: &[u8], field: &'static str) -> Result<[u8; 8], EncodeError> {
        let too_long = |value: usize, max: usize| EncodeError::TooLong {
            what: "NTLM message",
            field,
            value,
            max,
        };
        let len = u16::try_from(bytes.len()).map_err(|_| too_long(bytes.len(), 0xffff))?;
        let offset_usize = self.start.saturating_add(self.data.len());
        let offset =
            u32::try_from(offset_usize).map_err(|_| too_long(offset_usize, 0xffff_ffff))?;
        self.data.extend_from_slice(bytes);
        let [l0, l1] = len.to_le_bytes();
        let [o0, o1, o2, o3] = offset.to_le_bytes();
        Ok([l0, l1, l0, l1, o0, o1, o2, o3])
    }

    /// [`place`](Self::place), writing the descriptor to `out`.
    fn field(
        &mut self,
        out: &mut Vec<u8>,
        bytes: &[u8],
        field: &'static str,
    ) -> Result<(), EncodeError> {
        let descriptor = self.place(bytes, field)?;
        out.extend_from_slice(&descriptor);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[rustfmt::skip]
    const PAIRS: [u8; 24] = [
        0x02, 0x00, 0x04, 0x00,             // AvId MsvAvNbDomainName, AvLen 4
        b'C', 0x00, b'O', 0x00,             // "CO" in UTF-16LE
        0x06, 0x00, 0x04, 0x00,             // AvId MsvAvFlags, AvLen 4
        0x02, 0x00, 0x00, 0x00,             // MIC_PRESENT
        0x00, 0x00, 0x00, 0x00,             // MsvAvEOL, AvLen 0
        0xee, 0xee, 0xee, 0xee,             // not part of the list
    ];

    #[test]
    fn av_pairs_decode_up_to_eol() {
        let (pairs, used) = AvPairs::decode(&PAIRS).unwrap();
        assert_eq!(used, 20);
        assert_eq!(pairs.name(AvId::NB_DOMAIN_NAME).as_deref(), Some("CO"));
        assert_eq!(pairs.flags(), Some(AvFlags::MIC_PRESENT));
        assert_eq!(pairs.timestamp(), None);
        let mut out = Vec::new();
        pairs.encode(&mut out).unwrap();
        assert_eq!(out, PAIRS[..20]);
        assert_eq!(pairs.encoded_len(), 20);
    }

    #[test]
    fn eol_pairs_in_a_list_are_not_encoded() {
        let pairs = AvPairs(vec![AvPair {
            id: AvId::EOL,
            value: vec![1],
        }]);
        let mut out = Vec::new();
        pairs.encode(&mut out).unwrap();
        assert_eq!(out, [0; 4]);
        assert_eq!(pairs.encoded_len(), 4);
    }

    #[test]
    fn av_id_debug_names_known_values() {
        assert_eq!(format!("{:?}", AvId::TIMESTAMP), "MsvAvTimestamp");
        assert_eq!(format!("{:?}", AvId(0x1234)), "AvId(0x1234)");
    }

    #[test]
    fn strings_follow_the_unicode_flag() {
        let unicode = NegotiateFlags::NEGOTIATE_UNICODE;
        assert_eq!(encode_string(unicode, "Aé"), [0x41, 0, 0xe9, 0]);
        assert_eq!(
            encode_string(NegotiateFlags::NEGOTIATE_OEM, "Aé€"),
            [0x41, 0xe9, b'?']
        );
        assert_eq!(decode_string(unicode, &[0x41, 0]).as_deref(), Some("A"));
        assert_eq!(decode_string(unicode, &[0x41]), None);
        assert_eq!(
            decode_string(unicode, &[0x00, 0xd8]),
            None,
            "unpaired surrogate"
        );
    }

    #[test]
    fn too_long_field_is_an_encode_error() {
        let message = NegotiateMessage {
            flags: NegotiateFlags::empty(),
            domain_name: vec![0; 0x1_0000],
            workstation: Vec::new(),
            version: None,
        };
        assert!(matches!(message.encode(), Err(EncodeError::TooLong { .. })));
    }

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..40)
    }

    fn pairs() -> impl Strategy<Value = AvPairs> {
        proptest::collection::vec((1u16.., bytes()), 0..5).prop_map(|pairs| {
            AvPairs(
                pairs
                    .into_iter()
                    .map(|(id, value)| AvPair {
                        id: AvId(id),
                        value,
                    })
                    .collect(),
            )
        })
    }

    fn version() -> impl Strategy<Value = Version> {
        (
            any::<[u8; 2]>(),
            any::<u16>(),
            any::<[u8; 3]>(),
            any::<u8>(),
        )
            .prop_map(
                |([major, minor], product_build, reserved, ntlm_revision_current)| Version {
                    product_major_version: major,
                    product_minor_version: minor,
                    product_build,
                    reserved,
                    ntlm_revision_current,
                },
            )
    }

    /// Flags and a VERSION consistent with them (present exactly when NEGOTIATE_VERSION is).
    fn flags_and_version() -> impl Strategy<Value = (NegotiateFlags, Option<Version>)> {
        (any::<u32>(), version()).prop_map(|(bits, version)| {
            let flags = NegotiateFlags::from_bits_retain(bits);
            (
                flags,
                flags
                    .contains(NegotiateFlags::NEGOTIATE_VERSION)
                    .then_some(version),
            )
        })
    }

    proptest! {
        #[test]
        fn negotiate_round_trips((flags, version) in flags_and_version(), domain_name in bytes(), workstation in bytes()) {
            let message = NegotiateMessage { flags, domain_name, workstation, version };
            let bytes = message.encode().unwrap();
            prop_assert_eq!(bytes.len(), message.encoded_len());
            prop_assert_eq!(NegotiateMessage::decode(&bytes).unwrap(), message);
        }

        #[test]
        fn challenge_round_trips(
            (flags, version) in flags_and_version(),
            target_name in bytes(),
            server_challenge in any::<[u8; 8]>(),
            reserved in any::<[u8; 8]>(),
            target_info in proptest::option::of(pairs()),
        ) {
            let message = ChallengeMessage { flags, target_name, server_challenge, reserved, target_info, version };
            let bytes = message.encode().unwrap();
            prop_assert_eq!(bytes.len(), message.encoded_len());
            prop_assert_eq!(ChallengeMessage::decode(&bytes).unwrap(), message);
        }

        #[test]
        fn authenticate_round_trips(
            (flags, version) in flags_and_version(),
            fields in proptest::array::uniform6(bytes()),
            mic in proptest::option::of(any::<[u8; 16]>()),
        ) {
            let [lm, nt, domain, user, workstation, key] = fields;
            let message = AuthenticateMessage {
                flags,
                lm_challenge_response: lm,
                nt_challenge_response: nt,
                domain_name: domain,
                user_name: user,
                workstation,
                encrypted_random_session_key: key,
                version,
                mic,
            };
            let bytes = message.encode().unwrap();
            prop_assert_eq!(bytes.len(), message.encoded_len());
            prop_assert_eq!(AuthenticateMessage::decode(&bytes).unwrap(), message);
        }
    }
}
