//! [C706 §12.6.4.10] response.
//!
//! ```text
//!  16                  20          22             23         24
//! +-------------------+-----------+--------------+----------+------------------
//! |    alloc_hint     | p_cont_id | cancel_count | reserved | stub ...
//! +-------------------+-----------+--------------+----------+------------------
//! ```
//!
//! [C706 §12.6.4.10]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::{PutDrep, Reader};
use crate::drep::DataRep;
use crate::error::DecodeError;

/// A response: one fragment of a call's output stub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// `alloc_hint`: the whole stub's length as the sender expects it (a hint only).
    pub alloc_hint: u32,
    /// `p_cont_id`.
    pub p_cont_id: u16,
    /// `cancel_count`.
    pub cancel_count: u8,
    /// `reserved`.
    pub reserved: u8,
    /// The stub fragment (without auth padding), a slice of the received frame.
    pub stub: Bytes,
}

impl Response {
    /// Fixed part: 4 /* alloc_hint */ + 2 /* p_cont_id */ + 1 /* cancel_count */
    /// + 1 /* reserved */.
    pub const FIXED_LEN: usize = 4 + 2 + 1 + 1;

    /// Exact number of bytes [`encode`](Self::encode) appends.
    pub fn encoded_len(&self) -> usize {
        Self::FIXED_LEN + self.stub.len()
    }

    /// Appends the body (without auth padding).
    pub fn encode(&self, drep: DataRep, dst: &mut BytesMut) {
        self.encode_fixed(drep, dst);
        dst.put_slice(&self.stub);
    }

    /// Appends the body up to the stub.
    pub fn encode_fixed(&self, drep: DataRep, dst: &mut BytesMut) {
        dst.put_u32_drep(drep, self.alloc_hint);
        dst.put_u16_drep(drep, self.p_cont_id);
        dst.put_u8(self.cancel_count);
        dst.put_u8(self.reserved);
    }

    pub(crate) fn decode(reader: &mut Reader) -> Result<Self, DecodeError> {
        reader.ensure(Self::FIXED_LEN)?;
        Ok(Self {
            alloc_hint: reader.u32()?,
            p_cont_id: reader.u16()?,
            cancel_count: reader.u8()?,
            reserved: reader.u8()?,
            stub: reader.rest(),
        })
    }
}
