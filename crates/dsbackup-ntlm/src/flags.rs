//! `NegotiateFlags` ([MS-NLMP §2.2.2.5]).
//!
//! ```text
//!  bit 31 (W) ......................................................... bit 0 (A)
//!  W 56 | V KEY_EXCH | U 128 | r1 r2 r3 | T VERSION | r4 | S TARGET_INFO
//!  R REQUEST_NON_NT_SESSION_KEY | r5 | Q IDENTIFY | P EXTENDED_SESSIONSECURITY | r6
//!  O TARGET_TYPE_SERVER | N TARGET_TYPE_DOMAIN | M ALWAYS_SIGN | r7
//!  L OEM_WORKSTATION_SUPPLIED | K OEM_DOMAIN_SUPPLIED | J anonymous | r8 | H NTLM | r9
//!  G LM_KEY | F DATAGRAM | E SEAL | D SIGN | r10 | C REQUEST_TARGET | B OEM | A UNICODE
//! ```
//!
//! [MS-NLMP §2.2.2.5]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/99d90ff4-957f-4c8a-80e4-5bfe5a9a9832

use dsbackup_proto::Protection;

use crate::error::NtlmError;

bitflags::bitflags! {
    /// The `NegotiateFlags` field of every NTLM message ([MS-NLMP §2.2.2.5]).
    ///
    /// Unknown bits are kept (`from_bits_retain`), so a decoded message re-encodes unchanged.
    ///
    /// [MS-NLMP §2.2.2.5]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/99d90ff4-957f-4c8a-80e4-5bfe5a9a9832
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    #[cfg_attr(feature = "serde", derive(serde::Serialize))]
    #[cfg_attr(feature = "serde", serde(transparent))]
    pub struct NegotiateFlags: u32 {
        /// A: Unicode (UTF-16LE) strings.
        const NEGOTIATE_UNICODE = 0x0000_0001;
        /// B: OEM code page strings.
        const NEGOTIATE_OEM = 0x0000_0002;
        /// C: the server is asked for its target name (TargetName of the CHALLENGE).
        const REQUEST_TARGET = 0x0000_0004;
        /// r10: reserved.
        const R10 = 0x0000_0008;
        /// D: message integrity (signing).
        const NEGOTIATE_SIGN = 0x0000_0010;
        /// E: message confidentiality (sealing).
        const NEGOTIATE_SEAL = 0x0000_0020;
        /// F: connectionless authentication.
        const NEGOTIATE_DATAGRAM = 0x0000_0040;
        /// G: LAN Manager session key computation.
        const NEGOTIATE_LM_KEY = 0x0000_0080;
        /// r9: reserved.
        const R9 = 0x0000_0100;
        /// H: NTLM v1 session security (set by every client).
        const NEGOTIATE_NTLM = 0x0000_0200;
        /// r8: reserved.
        const R8 = 0x0000_0400;
        /// J: anonymous connection.
        const ANONYMOUS = 0x0000_0800;
        /// K: the NEGOTIATE carries a domain name.
        const NEGOTIATE_OEM_DOMAIN_SUPPLIED = 0x0000_1000;
        /// L: the NEGOTIATE carries a workstation name.
        const NEGOTIATE_OEM_WORKSTATION_SUPPLIED = 0x0000_2000;
        /// r7: reserved.
        const R7 = 0x0000_4000;
        /// M: a signature is present even without signing negotiated.
        const NEGOTIATE_ALWAYS_SIGN = 0x0000_8000;
        /// N: TargetName is a domain name.
        const TARGET_TYPE_DOMAIN = 0x0001_0000;
        /// O: TargetName is a server name.
        const TARGET_TYPE_SERVER = 0x0002_0000;
        /// r6: reserved.
        const R6 = 0x0004_0000;
        /// P: NTLM v2 session security (extended session security).
        const NEGOTIATE_EXTENDED_SESSIONSECURITY = 0x0008_0000;
        /// Q: identify-level token.
        const NEGOTIATE_IDENTIFY = 0x0010_0000;
        /// r5: reserved.
        const R5 = 0x0020_0000;
        /// R: LMOWF session key.
        const REQUEST_NON_NT_SESSION_KEY = 0x0040_0000;
        /// S: the CHALLENGE carries TargetInfo.
        const NEGOTIATE_TARGET_INFO = 0x0080_0000;
        /// r4: reserved.
        const R4 = 0x0100_0000;
        /// T: the VERSION field is present.
        const NEGOTIATE_VERSION = 0x0200_0000;
        /// r3: reserved.
        const R3 = 0x0400_0000;
        /// r2: reserved.
        const R2 = 0x0800_0000;
        /// r1: reserved.
        const R1 = 0x1000_0000;
        /// U: 128-bit session key.
        const NEGOTIATE_128 = 0x2000_0000;
        /// V: explicit key exchange (EncryptedRandomSessionKey).
        const NEGOTIATE_KEY_EXCH = 0x4000_0000;
        /// W: 56-bit encryption.
        const NEGOTIATE_56 = 0x8000_0000;
    }
}

impl NegotiateFlags {
    /// The flags a context must end with to give `protection` ([MS-NLMP §3.1.1.2]): none at
    /// [`Protection::None`], `NEGOTIATE_SIGN` for integrity, `NEGOTIATE_SIGN` and
    /// `NEGOTIATE_SEAL` for privacy.
    ///
    /// [MS-NLMP §3.1.1.2]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/a4a41f0d-ca27-44bf-ad1d-6f8c3a3796f2
    pub const fn required_for(protection: Protection) -> Self {
        match protection {
            Protection::None => Self::empty(),
            Protection::Integrity => Self::NEGOTIATE_SIGN,
            Protection::Privacy => Self::NEGOTIATE_SIGN.union(Self::NEGOTIATE_SEAL),
        }
    }

    /// Checks that the negotiated flags (`self`) hold every one of `required`.
    ///
    /// # Errors
    /// [`NtlmError::NotNegotiated`] naming the lowest missing one (signing before sealing).
    pub(crate) fn check_required(self, required: Self) -> Result<(), NtlmError> {
        match required.difference(self).iter_names().next() {
            Some((name, _)) => Err(NtlmError::NotNegotiated(name)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_4_2_4_flags_value() {
        // [MS-NLMP §4.2.4] NegotiateFlags: 33 82 8a e2.
        let flags = NegotiateFlags::NEGOTIATE_KEY_EXCH
            | NegotiateFlags::NEGOTIATE_56
            | NegotiateFlags::NEGOTIATE_128
            | NegotiateFlags::NEGOTIATE_VERSION
            | NegotiateFlags::NEGOTIATE_TARGET_INFO
            | NegotiateFlags::NEGOTIATE_EXTENDED_SESSIONSECURITY
            | NegotiateFlags::TARGET_TYPE_SERVER
            | NegotiateFlags::NEGOTIATE_ALWAYS_SIGN
            | NegotiateFlags::NEGOTIATE_NTLM
            | NegotiateFlags::NEGOTIATE_SEAL
            | NegotiateFlags::NEGOTIATE_SIGN
            | NegotiateFlags::NEGOTIATE_OEM
            | NegotiateFlags::NEGOTIATE_UNICODE;
        assert_eq!(flags.bits().to_le_bytes(), [0x33, 0x82, 0x8a, 0xe2]);
    }
}
