//! [MS-RPCE §2.2.2.10] rpc_auth_3: the third leg of a three-leg security handshake.
//!
//! ```text
//!  16        20
//! +---------+------------------------------------------
//! |   pad   | auth verifier (sec_trailer, auth_value)
//! +---------+------------------------------------------
//! ```
//!
//! [MS-RPCE §2.2.2.10]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/

use bytes::{BufMut, BytesMut};

use crate::codec::Reader;
use crate::error::DecodeError;

/// An auth3: four pad bytes; the token is in the PDU's auth verifier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Auth3 {
    /// The four pad bytes, kept as sent (Windows and impacket send spaces, others zeros).
    pub pad: [u8; 4],
}

impl Auth3 {
    /// Encoded length: 4 /* pad */.
    pub const LEN: usize = 4;

    /// Exact number of bytes [`encode`](Self::encode) appends.
    pub fn encoded_len(&self) -> usize {
        Self::LEN
    }

    /// Appends the body.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_slice(&self.pad);
    }

    pub(crate) fn decode(reader: &mut Reader) -> Result<Self, DecodeError> {
        let [a, b, c, d] = [reader.u8()?, reader.u8()?, reader.u8()?, reader.u8()?];
        Ok(Self { pad: [a, b, c, d] })
    }
}
