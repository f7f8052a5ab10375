//! [`NdrWriter`]: builds the bytes of one call stub.

use bytes::Bytes;

use crate::chain::{Chain, SHARE_AT_LEAST};
use crate::drep::DataRep;
use crate::error::EncodeError;
use crate::ndr::Ndr;
use crate::ndr::reader::padding;

/// The first referent id the writer hands out; later ones step by 4, as MIDL-generated stubs
/// number them (`0x00020000`, `0x00020004`, ...).
pub const FIRST_REFERENT_ID: u32 = 0x0002_0000;

/// Writes NDR 2.0 primitives into a call stub, in a given data representation.
///
/// Padding bytes are zero. Non-null pointers get referent ids in the order they are written.
///
/// Large byte runs given as [`Bytes`] ([`shared_bytes`](Self::shared_bytes)) are not copied:
/// the stub becomes a [`Chain`] of the bytes written around them and the runs themselves.
#[derive(Debug)]
pub struct NdrWriter {
    /// The stub before `buf`: written bytes and shared runs, in order.
    done: Chain,
    buf: Vec<u8>,
    drep: DataRep,
    next_referent: u32,
    /// Byte ranges written as alignment padding (tests compare against encoders that pad with
    /// other bytes).
    #[cfg(test)]
    pub(crate) pads: Vec<core::ops::Range<usize>>,
}

impl NdrWriter {
    /// An empty stub in the given data representation.
    pub fn new(drep: DataRep) -> Self {
        Self {
            done: Chain::new(),
            buf: Vec::new(),
            drep,
            next_referent: FIRST_REFERENT_ID,
            #[cfg(test)]
            pads: Vec::new(),
        }
    }

    /// The data representation being written.
    pub const fn drep(&self) -> DataRep {
        self.drep
    }

    /// Bytes written so far.
    pub const fn position(&self) -> usize {
        self.done.len() + self.buf.len()
    }

    /// The stub in one vector (the shared runs copied into it).
    pub fn into_vec(self) -> Vec<u8> {
        if self.done.is_empty() {
            return self.buf;
        }
        let mut stub = self.done.to_vec();
        stub.extend_from_slice(&self.buf);
        stub
    }

    /// The stub as a chain: the shared runs are segments of it, not copies.
    pub fn into_chain(mut self) -> Chain {
        self.done.push(Bytes::from(self.buf));
        self.done
    }

    /// Zero padding up to the next multiple of `align`.
    pub fn align(&mut self, align: usize) {
        let pad = padding(self.position(), align);
        #[cfg(test)]
        self.pads.push(self.position()..self.position() + pad);
        self.buf.resize(self.buf.len() + pad, 0);
    }

    /// Raw bytes, unaligned.
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Raw bytes, unaligned, kept as a segment of the stub (not copied) when there are at
    /// least [`SHARE_AT_LEAST`] of them; [`into_chain`](Self::into_chain) then hands them on.
    pub fn shared_bytes(&mut self, bytes: &Bytes) {
        if bytes.len() < SHARE_AT_LEAST {
            self.bytes(bytes);
            return;
        }
        self.done.push(Bytes::from(core::mem::take(&mut self.buf)));
        self.done.push(bytes.clone());
    }

    /// An `unsigned small` (`byte`).
    pub fn u8(&mut self, value: u8) {
        self.buf.push(value);
    }

    /// An `unsigned short`, 2-aligned.
    pub fn u16(&mut self, value: u16) {
        self.align(2);
        self.bytes(&self.drep.u16_bytes(value));
    }

    /// An `unsigned long`, 4-aligned.
    pub fn u32(&mut self, value: u32) {
        self.align(4);
        self.bytes(&self.drep.u32_bytes(value));
    }

    /// A `long`, 4-aligned.
    pub fn i32(&mut self, value: i32) {
        self.u32(u32::from_ne_bytes(value.to_ne_bytes()));
    }

    /// An `unsigned hyper`, 8-aligned.
    pub fn u64(&mut self, value: u64) {
        self.align(8);
        self.bytes(&self.drep.u64_bytes(value));
    }

    /// A `hyper`, 8-aligned.
    pub fn i64(&mut self, value: i64) {
        self.u64(u64::from_ne_bytes(value.to_ne_bytes()));
    }

    /// An `enum`, as an `unsigned short`.
    pub fn enum16(&mut self, value: u16) {
        self.u16(value);
    }

    /// A `boolean`: one octet, 1 for true.
    pub fn boolean(&mut self, value: bool) {
        self.u8(u8::from(value));
    }

    /// A referent id: 0 for a null pointer, the next id otherwise.
    pub fn referent(&mut self, present: bool) {
        if present {
            let id = self.next_referent;
            self.next_referent = self.next_referent.wrapping_add(4);
            self.u32(id);
        } else {
            self.u32(0);
        }
    }

    /// A count (conformance, offset or actual count) from a Rust length.
    ///
    /// # Errors
    /// [`EncodeError::TooLong`] when `len` does not fit in 32 bits.
    pub fn count(&mut self, len: usize, what: &'static str) -> Result<(), EncodeError> {
        let value = u32::try_from(len).map_err(|_| EncodeError::TooLong {
            what,
            field: "max_count",
            value: len,
            max: u32::MAX as usize,
        })?;
        self.u32(value);
        Ok(())
    }

    /// `values` as UTF-16 code units (2-aligned).
    pub fn u16_units(&mut self, values: &[u16]) {
        self.align(2);
        self.buf.reserve(values.len().saturating_mul(2));
        for &unit in values {
            self.bytes(&self.drep.u16_bytes(unit));
        }
    }

    /// Elements of `T`: every element's scalars, then every element's deferred pointees.
    ///
    /// # Errors
    /// Whatever an element's encoder returns.
    pub fn elements<T: Ndr>(&mut self, values: &[T]) -> Result<(), EncodeError> {
        for value in values {
            value.encode_scalars(self)?;
        }
        for value in values {
            value.encode_buffers(self)?;
        }
        Ok(())
    }

    /// A whole value of `T` (scalars, then deferred pointees): a top-level parameter.
    ///
    /// # Errors
    /// Whatever `T`'s encoder returns.
    pub fn param<T: Ndr>(&mut self, value: &T) -> Result<(), EncodeError> {
        value.encode_scalars(self)?;
        value.encode_buffers(self)
    }
}
