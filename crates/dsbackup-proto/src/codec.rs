//! Private helpers shared by the PDU decoders and encoders: a bounds-checked reader over a frame
//! and writers in the frame's data representation.

use bytes::{BufMut, Bytes, BytesMut};

use crate::drep::DataRep;
use crate::error::DecodeError;
use crate::uuid::Uuid;

/// A cursor over part of a received frame; every read checks what remains first.
#[derive(Debug)]
pub(crate) struct Reader {
    buf: Bytes,
    drep: DataRep,
    what: &'static str,
    /// Offset of `buf` within the frame, for alignment.
    offset: usize,
}

impl Reader {
    /// A reader over `buf`, whose first byte is at `offset` in the frame.
    pub(crate) fn new(buf: Bytes, drep: DataRep, what: &'static str, offset: usize) -> Self {
        Self {
            buf,
            drep,
            what,
            offset,
        }
    }

    pub(crate) fn ensure(&self, needed: usize) -> Result<(), DecodeError> {
        if self.buf.len() < needed {
            return Err(DecodeError::Truncated {
                what: self.what,
                needed,
                available: self.buf.len(),
            });
        }
        Ok(())
    }

    /// Takes `n` bytes as a slice of the frame (no copy).
    pub(crate) fn take(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        self.ensure(n)?;
        self.offset += n;
        Ok(self.buf.split_to(n))
    }

    /// Takes everything that is left.
    pub(crate) fn rest(&mut self) -> Bytes {
        self.offset += self.buf.len();
        self.buf.split_off(0)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        self.ensure(N)?;
        let head = self.buf.split_to(N);
        self.offset += N;
        let mut out = [0; N];
        // INVARIANT: `ensure` checked that `head` holds exactly N bytes.
        out.copy_from_slice(&head);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(self.drep.u16(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(self.drep.u32(self.array()?))
    }

    pub(crate) fn uuid(&mut self) -> Result<Uuid, DecodeError> {
        Ok(Uuid::from_wire(self.array()?, self.drep))
    }

    /// Skips the padding up to the next multiple of `align` within the frame.
    pub(crate) fn align(&mut self, align: usize) -> Result<(), DecodeError> {
        let pad = pad_len(self.offset, align);
        self.take(pad).map(drop)
    }

    /// Fails when bytes are left.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                what: self.what,
                count: self.buf.len(),
            })
        }
    }
}

/// Writers in a data representation.
pub(crate) trait PutDrep {
    fn put_u16_drep(&mut self, drep: DataRep, value: u16);
    fn put_u32_drep(&mut self, drep: DataRep, value: u32);
    fn put_uuid_drep(&mut self, drep: DataRep, value: Uuid);
}

impl PutDrep for BytesMut {
    fn put_u16_drep(&mut self, drep: DataRep, value: u16) {
        self.put_slice(&drep.u16_bytes(value));
    }

    fn put_u32_drep(&mut self, drep: DataRep, value: u32) {
        self.put_slice(&drep.u32_bytes(value));
    }

    fn put_uuid_drep(&mut self, drep: DataRep, value: Uuid) {
        self.put_slice(&value.to_wire(drep));
    }
}

/// Bytes of padding from `offset` to the next multiple of `align` (a power of two).
pub(crate) const fn pad_len(offset: usize, align: usize) -> usize {
    (align - offset % align) % align
}

/// A count that must fit a `u8` wire field.
pub(crate) fn count_u8(
    what: &'static str,
    field: &'static str,
    value: usize,
) -> Result<u8, crate::error::EncodeError> {
    u8::try_from(value).map_err(|_| crate::error::EncodeError::TooLong {
        what,
        field,
        value,
        max: u8::MAX.into(),
    })
}

/// A length that must fit a `u16` wire field.
pub(crate) fn len_u16(
    what: &'static str,
    field: &'static str,
    value: usize,
) -> Result<u16, crate::error::EncodeError> {
    u16::try_from(value).map_err(|_| crate::error::EncodeError::TooLong {
        what,
        field,
        value,
        max: u16::MAX.into(),
    })
}
