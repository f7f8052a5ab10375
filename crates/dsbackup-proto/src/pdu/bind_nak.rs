//! [C706 §12.6.4.5] bind_nak, extended by [MS-RPCE §2.2.2.9].
//!
//! ```text
//!  16                      18            19
//! +-----------------------+-------------+---------------------------+------------------------
//! | provider_reject_reason| n_protocols | {major u8, minor u8}[n]   | pad, signature, extended
//! +-----------------------+-------------+---------------------------+ error (MS-RPCE), kept raw
//! ```
//!
//! [C706 §12.6.4.5]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm
//! [MS-RPCE §2.2.2.9]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::{PutDrep, Reader, count_u8};
use crate::drep::DataRep;
use crate::error::{DecodeError, EncodeError};
use crate::header::CommonHeader;
use crate::ndr::reader::padding;
use crate::wire_enum::{known_values, named_debug};

/// A bind_nak: the server refuses the association.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindNak {
    /// `provider_reject_reason`.
    pub provider_reject_reason: RejectReason,
    /// `versions`: the protocol versions the server supports.
    pub versions: Vec<Version>,
    /// Whatever follows the versions, kept as sent: padding to 4 bytes, and on Windows a
    /// signature and extended error information ([MS-RPCE §2.2.2.9]).
    ///
    /// [MS-RPCE §2.2.2.9]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
    pub trailer: Bytes,
}

impl BindNak {
    /// A bind_nak for `reason` announcing version 5.0, padded to 4 bytes as Samba sends it.
    pub fn new(reason: RejectReason) -> Self {
        let versions = vec![Version { major: 5, minor: 0 }];
        let end = CommonHeader::LEN + 2 + 1 + 2 * versions.len();
        Self {
            provider_reject_reason: reason,
            versions,
            trailer: Bytes::from(vec![0; padding(end, 4)]),
        }
    }

    /// Exact number of bytes [`encode`](Self::encode) appends.
    pub fn encoded_len(&self) -> usize {
        2 /* provider_reject_reason */ + 1 /* n_protocols */
            + self.versions.len() * Version::LEN
            + self.trailer.len()
    }

    /// Appends the body.
    ///
    /// # Errors
    /// [`EncodeError::TooLong`] for more than 255 versions.
    pub fn encode(&self, drep: DataRep, dst: &mut BytesMut) -> Result<(), EncodeError> {
        dst.put_u16_drep(drep, self.provider_reject_reason.0);
        dst.put_u8(count_u8("bind_nak", "n_protocols", self.versions.len())?);
        for version in &self.versions {
            dst.put_u8(version.major);
            dst.put_u8(version.minor);
        }
        dst.put_slice(&self.trailer);
        Ok(())
    }

    pub(crate) fn decode(reader: &mut Reader) -> Result<Self, DecodeError> {
        let provider_reject_reason = RejectReason(reader.u16()?);
        let count = usize::from(reader.u8()?);
        reader.ensure(count * Version::LEN)?;
        let mut versions = Vec::with_capacity(count);
        for _ in 0..count {
            versions.push(Version {
                major: reader.u8()?,
                minor: reader.u8()?,
            });
        }
        Ok(Self {
            provider_reject_reason,
            versions,
            trailer: reader.rest(),
        })
    }
}

/// One entry of `p_rt_versions_supported_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Version {
    /// `major`.
    pub major: u8,
    /// `minor`.
    pub minor: u8,
}

impl Version {
    /// Encoded length: 1 /* major */ + 1 /* minor */.
    pub const LEN: usize = 1 + 1;
}

/// `provider_reject_reason` of a bind_nak ([C706 §12.6.3.1], [MS-RPCE §2.2.2.5]).
///
/// [C706 §12.6.3.1]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm
/// [MS-RPCE §2.2.2.5]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RejectReason(pub u16);

known_values! {
    RejectReason, name: "The spec name of a known value.";
    /// reason_not_specified.
    REASON_NOT_SPECIFIED = 0 => "reason_not_specified",
    /// temporary_congestion.
    TEMPORARY_CONGESTION = 1 => "temporary_congestion",
    /// local_limit_exceeded.
    LOCAL_LIMIT_EXCEEDED = 2 => "local_limit_exceeded",
    /// called_paddr_unknown.
    CALLED_PADDR_UNKNOWN = 3 => "called_paddr_unknown",
    /// protocol_version_not_supported.
    PROTOCOL_VERSION_NOT_SUPPORTED = 4 => "protocol_version_not_supported",
    /// default_context_not_supported.
    DEFAULT_CONTEXT_NOT_SUPPORTED = 5 => "default_context_not_supported",
    /// user_data_not_readable.
    USER_DATA_NOT_READABLE = 6 => "user_data_not_readable",
    /// no_psap_available.
    NO_PSAP_AVAILABLE = 7 => "no_psap_available",
    /// authentication_type_not_recognized ([MS-RPCE §2.2.2.5]).
    ///
    /// [MS-RPCE §2.2.2.5]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
    AUTHENTICATION_TYPE_NOT_RECOGNIZED = 8 => "authentication_type_not_recognized",
    /// invalid_checksum ([MS-RPCE §2.2.2.5]).
    ///
    /// [MS-RPCE §2.2.2.5]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
    INVALID_CHECKSUM = 9 => "invalid_checksum",
}

named_debug!(RejectReason);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_named_and_unknown_ones_kept() {
        assert_eq!(
            RejectReason::INVALID_CHECKSUM.to_string(),
            "invalid_checksum"
        );
        assert_eq!(format!("{:?}", RejectReason(0x42)), "RejectReason(0x42)");
    }

    #[test]
    fn new_pads_to_four_bytes() {
        let nak = BindNak::new(RejectReason::PROTOCOL_VERSION_NOT_SUPPORTED);
        let mut out = BytesMut::new();
        nak.encode(DataRep::LITTLE_ENDIAN, &mut out).unwrap();
        assert_eq!(
            out[..],
            [
                0x04, 0x00, // provider_reject_reason: protocol_version_not_supported
                0x01, // n_protocols 1
                0x05, 0x00, // version 5.0
                0x00, 0x00, 0x00, // pad to 4 (frame offset 24)
            ]
        );
        assert_eq!(nak.encoded_len(), out.len());
    }
}
