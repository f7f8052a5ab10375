//! UUIDs as DCE/RPC puts them on the wire ([C706 Appendix A]).
//!
//! A UUID is `{u32 time_low; u16 time_mid; u16 time_hi_and_version; u8 clock_seq_hi;
//! u8 clock_seq_low; u8 node[6]}`: the first three fields follow the data representation of the
//! PDU or stub, the last eight bytes are bytes. [`Uuid`] keeps the canonical (big-endian, RFC 4122)
//! byte order and converts at the edges.
//!
//! [C706 Appendix A]: https://pubs.opengroup.org/onlinepubs/9629399/apdxa.htm

use core::fmt;
use core::str::FromStr;

use crate::drep::DataRep;
use crate::error::DecodeError;

/// A UUID in canonical byte order (as its text form reads).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// The nil UUID, all zero.
    pub const NIL: Self = Self([0; 16]);
    /// Encoded length on the wire.
    pub const LEN: usize = 16;

    /// Parses the text form `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` at compile time.
    ///
    /// # Panics
    /// When `text` is not a UUID; meant for constants, where that is a build error.
    #[expect(
        clippy::panic,
        reason = "const evaluation: a bad literal fails the build"
    )]
    pub const fn from_str_const(text: &str) -> Self {
        match parse(text.as_bytes()) {
            Some(uuid) => uuid,
            None => panic!("not a UUID"),
        }
    }

    /// Reads a UUID from 16 wire bytes in the given data representation.
    pub const fn from_wire(bytes: [u8; 16], drep: DataRep) -> Self {
        let mut out = bytes;
        if drep.is_little_endian() {
            swap_fields(&mut out);
        }
        Self(out)
    }

    /// The 16 wire bytes in the given data representation.
    pub const fn to_wire(self, drep: DataRep) -> [u8; 16] {
        let mut out = self.0;
        if drep.is_little_endian() {
            swap_fields(&mut out);
        }
        out
    }

    /// Decodes the first 16 bytes of `input`.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] when fewer than 16 bytes remain.
    pub fn decode(input: &[u8], drep: DataRep) -> Result<Self, DecodeError> {
        let bytes: [u8; 16] = input
            .get(..Self::LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(DecodeError::Truncated {
                what: "uuid",
                needed: Self::LEN,
                available: input.len(),
            })?;
        Ok(Self::from_wire(bytes, drep))
    }

    /// Whether this is the nil UUID.
    pub const fn is_nil(&self) -> bool {
        u128::from_be_bytes(self.0) == 0
    }
}

/// Error for a string that is not a UUID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a UUID in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx")]
pub struct ParseUuidError;

impl FromStr for Uuid {
    type Err = ParseUuidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s.as_bytes()).ok_or(ParseUuidError)
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Uuid {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Reverses the byte order of the first three fields (4, 2 and 2 bytes).
const fn swap_fields(b: &mut [u8; 16]) {
    let [a0, a1, a2, a3, b0, b1, c0, c1, ..] = *b;
    b[0] = a3;
    b[1] = a2;
    b[2] = a1;
    b[3] = a0;
    b[4] = b1;
    b[5] = b0;
    b[6] = c1;
    b[7] = c0;
}

#[expect(
    clippy::indexing_slicing,
    reason = "const fn: indices stay below the length of 36 checked first"
)]
const fn parse(text: &[u8]) -> Option<Uuid> {
    if text.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    let mut i = 0;
    let mut o = 0;
    while i < 36 {
        if i == 8 || i == 13 || i == 18 || i == 23 {
            if text[i] != b'-' {
                return None;
            }
            i += 1;
            continue;
        }
        let (Some(hi), Some(lo)) = (hex(text[i]), hex(text[i + 1])) else {
            return None;
        };
        out[o] = (hi << 4) | lo;
        o += 1;
        i += 2;
    }
    Some(Uuid(out))
}

const fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NDR: Uuid = Uuid::from_str_const("8a885d04-1ceb-11c9-9fe8-08002b104860");

    #[test]
    fn text_form_round_trips() {
        assert_eq!(NDR.to_string(), "8a885d04-1ceb-11c9-9fe8-08002b104860");
        assert_eq!("8A885D04-1CEB-11C9-9FE8-08002B104860".parse(), Ok(NDR));
        assert_eq!(
            "8a885d04-1ceb-11c9-9fe8-08002b10486".parse::<Uuid>(),
            Err(ParseUuidError)
        );
        assert_eq!(
            "8a885d04x1ceb-11c9-9fe8-08002b104860".parse::<Uuid>(),
            Err(ParseUuidError)
        );
    }

    #[test]
    fn little_endian_wire_form_swaps_the_first_three_fields() {
        let wire = [
            0x04, 0x5d, 0x88, 0x8a, // time_low 8a885d04
            0xeb, 0x1c, // time_mid 1ceb
            0xc9, 0x11, // time_hi_and_version 11c9
            0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48, 0x60, // clock_seq and node
        ];
        assert_eq!(NDR.to_wire(DataRep::LITTLE_ENDIAN), wire);
        assert_eq!(Uuid::from_wire(wire, DataRep::LITTLE_ENDIAN), NDR);
        assert_eq!(NDR.to_wire(DataRep::BIG_ENDIAN), NDR.0);
        assert_eq!(
            Uuid::decode(&wire[..15], DataRep::LITTLE_ENDIAN),
            Err(DecodeError::Truncated {
                what: "uuid",
                needed: 16,
                available: 15
            })
        );
    }
}
