//! The data representation label (`packed_drep`) of [C706 §14.1] and [C706 §12.6.3.1].
//!
//! ```text
//!  byte 0: bits 7..4 integer representation (0 big-endian, 1 little-endian)
//!          bits 3..0 character representation (0 ASCII, 1 EBCDIC)
//!  byte 1: floating-point representation (0 IEEE, 1 VAX, 2 Cray, 3 IBM)
//!  bytes 2, 3: reserved, zero
//! ```
//!
//! Only ASCII characters and IEEE floats are supported, in either byte order: that is what every
//! Windows and Samba peer sends.
//!
//! [C706 §14.1]: https://pubs.opengroup.org/onlinepubs/9629399/chap14.htm
//! [C706 §12.6.3.1]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm

use core::fmt;

use crate::error::DecodeError;

/// Byte order of the integers of a PDU and of its stub.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum ByteOrder {
    /// Most significant byte first.
    BigEndian,
    /// Least significant byte first (what Windows sends).
    LittleEndian,
}

/// A decoded, supported data representation label.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DataRep {
    byte_order: ByteOrder,
}

impl DataRep {
    /// Little-endian integers, ASCII characters, IEEE floats: `10 00 00 00`.
    pub const LITTLE_ENDIAN: Self = Self {
        byte_order: ByteOrder::LittleEndian,
    };
    /// Big-endian integers, ASCII characters, IEEE floats: `00 00 00 00`.
    pub const BIG_ENDIAN: Self = Self {
        byte_order: ByteOrder::BigEndian,
    };
    /// Encoded length on the wire.
    pub const LEN: usize = 4;

    /// The label for a byte order, with ASCII characters and IEEE floats.
    pub const fn new(byte_order: ByteOrder) -> Self {
        Self { byte_order }
    }

    /// Byte order of integers.
    pub const fn byte_order(self) -> ByteOrder {
        self.byte_order
    }

    /// Whether integers are little-endian.
    pub const fn is_little_endian(self) -> bool {
        matches!(self.byte_order, ByteOrder::LittleEndian)
    }

    /// Decodes the four bytes of `packed_drep`.
    ///
    /// The reserved bytes are ignored, as C706 asks of a receiver.
    ///
    /// # Errors
    /// [`DecodeError::InvalidField`] for an integer representation other than 0 or 1, EBCDIC
    /// characters, or non-IEEE floats.
    pub fn decode(packed: [u8; 4]) -> Result<Self, DecodeError> {
        let [first, float, _, _] = packed;
        let byte_order = match first >> 4 {
            0 => ByteOrder::BigEndian,
            1 => ByteOrder::LittleEndian,
            _ => return Err(invalid("integer representation is neither 0 nor 1")),
        };
        if first & 0x0f != 0 {
            return Err(invalid("EBCDIC characters are not supported"));
        }
        if float != 0 {
            return Err(invalid("only IEEE floating point is supported"));
        }
        Ok(Self { byte_order })
    }

    /// The four bytes of `packed_drep`.
    pub const fn encode(self) -> [u8; 4] {
        match self.byte_order {
            ByteOrder::LittleEndian => [0x10, 0, 0, 0],
            ByteOrder::BigEndian => [0, 0, 0, 0],
        }
    }

    /// Reads a `u16` in this byte order.
    pub const fn u16(self, bytes: [u8; 2]) -> u16 {
        match self.byte_order {
            ByteOrder::LittleEndian => u16::from_le_bytes(bytes),
            ByteOrder::BigEndian => u16::from_be_bytes(bytes),
        }
    }

    /// Reads a `u32` in this byte order.
    pub const fn u32(self, bytes: [u8; 4]) -> u32 {
        match self.byte_order {
            ByteOrder::LittleEndian => u32::from_le_bytes(bytes),
            ByteOrder::BigEndian => u32::from_be_bytes(bytes),
        }
    }

    /// Reads a `u64` in this byte order.
    pub const fn u64(self, bytes: [u8; 8]) -> u64 {
        match self.byte_order {
            ByteOrder::LittleEndian => u64::from_le_bytes(bytes),
            ByteOrder::BigEndian => u64::from_be_bytes(bytes),
        }
    }

    /// Writes a `u16` in this byte order.
    pub const fn u16_bytes(self, value: u16) -> [u8; 2] {
        match self.byte_order {
            ByteOrder::LittleEndian => value.to_le_bytes(),
            ByteOrder::BigEndian => value.to_be_bytes(),
        }
    }

    /// Writes a `u32` in this byte order.
    pub const fn u32_bytes(self, value: u32) -> [u8; 4] {
        match self.byte_order {
            ByteOrder::LittleEndian => value.to_le_bytes(),
            ByteOrder::BigEndian => value.to_be_bytes(),
        }
    }

    /// Writes a `u64` in this byte order.
    pub const fn u64_bytes(self, value: u64) -> [u8; 8] {
        match self.byte_order {
            ByteOrder::LittleEndian => value.to_le_bytes(),
            ByteOrder::BigEndian => value.to_be_bytes(),
        }
    }
}

impl Default for DataRep {
    fn default() -> Self {
        Self::LITTLE_ENDIAN
    }
}

impl fmt::Debug for DataRep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.encode();
        write!(
            f,
            "DataRep({:?}, [{a:02x} {b:02x} {c:02x} {d:02x}])",
            self.byte_order
        )
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for DataRep {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.byte_order.serialize(serializer)
    }
}

fn invalid(reason: &'static str) -> DecodeError {
    DecodeError::InvalidField {
        what: "common header",
        field: "packed_drep",
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn little_and_big_endian_labels_round_trip() {
        for drep in [DataRep::LITTLE_ENDIAN, DataRep::BIG_ENDIAN] {
            assert_eq!(DataRep::decode(drep.encode()), Ok(drep));
        }
        assert_eq!(DataRep::LITTLE_ENDIAN.encode(), [0x10, 0, 0, 0]);
        assert_eq!(DataRep::LITTLE_ENDIAN.u32([1, 0, 0, 0]), 1);
        assert_eq!(DataRep::BIG_ENDIAN.u32([0, 0, 0, 1]), 1);
    }

    #[test]
    fn reserved_bytes_are_ignored() {
        assert_eq!(
            DataRep::decode([0x10, 0, 0xaa, 0x55]),
            Ok(DataRep::LITTLE_ENDIAN)
        );
    }

    #[test]
    fn ebcdic_vax_and_unknown_integer_formats_are_refused() {
        for packed in [
            [0x11, 0, 0, 0],
            [0x10, 1, 0, 0],
            [0x20, 0, 0, 0],
            [0x01, 0, 0, 0],
        ] {
            assert!(
                matches!(
                    DataRep::decode(packed),
                    Err(DecodeError::InvalidField {
                        field: "packed_drep",
                        ..
                    })
                ),
                "{packed:02x?}"
            );
        }
    }
}
