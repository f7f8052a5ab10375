//! The verification trailer of [MS-RPCE §2.2.2.13]: commands a client appends to a request's
//! stub so that the server can check, under the stub's protection, the parts of the PDU that
//! the security provider does not protect (the header, the presentation context, whether the
//! client asked for header signing).
//!
//! Layout (always little-endian, whatever the request's `packed_drep`, as Samba reads it):
//! the 8-byte magic `8a e3 13 71 02 f4 36 71` at a 4-aligned offset of the stub, then commands,
//! each `command: u16` (`SEC_VT_COMMAND_END` 0x4000 on the last, `SEC_VT_MUST_PROCESS_COMMAND`
//! 0x8000, the command number in the low 14 bits), `length: u16` and `length` bytes:
//!
//! | command | number | body |
//! |---|---|---|
//! | `SEC_VT_COMMAND_BITMASK_1` | 1 | `u32`, bit 0 `CLIENT_SUPPORT_HEADER_SIGNING` |
//! | `SEC_VT_COMMAND_PCONTEXT` | 2 | abstract syntax, transfer syntax (20 bytes each) |
//! | `SEC_VT_COMMAND_HEADER2` | 3 | `PTYPE: u8`, 3 reserved bytes, `drep: [u8; 4]`, `call_id: u32`, `p_cont_id: u16`, `opnum: u16` |
//!
//! Where the trailer is, and what a server does with one that does not parse, follow Samba's
//! server (`ndr_pop_dcerpc_sec_verification_trailer`, `dcerpc_sec_verification_trailer_check`):
//! [`locate`] scans the last 1024 bytes of the stub backwards, 4 bytes at a time, for the magic;
//! what follows must parse as commands up to the END flag, with at most 16 bytes after them,
//! or it is taken for stub data and left alone. A trailer that parses is stripped; then each
//! command may appear once, an unknown command's body must be a multiple of 4 bytes, and
//! [`VerificationTrailer::check`] compares the known commands with the request. Nothing is
//! allocated: the decoder keeps the three known commands and a fixed bitmap of the numbers seen.
//!
//! [MS-RPCE §2.2.2.13]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/

use crate::drep::DataRep;
use crate::syntax::SyntaxId;
use crate::uuid::Uuid;

/// The trailer's signature, `SEC_VT_SIGNATURE` ([MS-RPCE §2.2.2.13.1]).
///
/// [MS-RPCE §2.2.2.13.1]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
pub const MAGIC: [u8; 8] = [0x8a, 0xe3, 0x13, 0x71, 0x02, 0xf4, 0x36, 0x71];

/// How far back from the end of the stub the magic is looked for (Samba's
/// `DCERPC_SEC_VT_MAX_SIZE`).
pub const MAX_SCAN: usize = 1024;

/// Bytes a trailer may leave after its last command and still count as one (Samba's bound:
/// more, and the magic is taken for stub data).
pub const MAX_PADDING: usize = 16;

/// `SEC_VT_COMMAND_END`: set on the last command.
pub const COMMAND_END: u16 = 0x4000;
/// `SEC_VT_MUST_PROCESS_COMMAND`: a server that cannot check the command fails the call.
pub const MUST_PROCESS: u16 = 0x8000;
/// The command number's bits.
const COMMAND_NUMBER: u16 = 0x3fff;

/// `SEC_VT_COMMAND_BITMASK_1`.
pub const BITMASK_1: u16 = 1;
/// `SEC_VT_COMMAND_PCONTEXT`.
pub const PCONTEXT: u16 = 2;
/// `SEC_VT_COMMAND_HEADER2`.
pub const HEADER2: u16 = 3;

/// `CLIENT_SUPPORT_HEADER_SIGNING` in `SEC_VT_COMMAND_BITMASK_1`.
pub const CLIENT_SUPPORT_HEADER_SIGNING: u32 = 1;

/// `SEC_VT_COMMAND_HEADER2`: the request header fields the client vouches for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header2 {
    /// `PTYPE` (0, request).
    pub ptype: u8,
    /// `packed_drep`, all four bytes.
    pub drep: [u8; 4],
    /// `call_id`.
    pub call_id: u32,
    /// `p_cont_id`.
    pub p_cont_id: u16,
    /// `opnum`.
    pub opnum: u16,
}

impl Header2 {
    const LEN: usize = 16;

    /// The fields of a request as the server received it.
    pub fn of_request(drep: DataRep, call_id: u32, p_cont_id: u16, opnum: u16) -> Self {
        Self {
            ptype: 0,
            drep: drep.encode(),
            call_id,
            p_cont_id,
            opnum,
        }
    }
}

/// `SEC_VT_COMMAND_PCONTEXT`: the presentation context the client believes it calls on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PContext {
    /// The interface.
    pub abstract_syntax: SyntaxId,
    /// The transfer syntax.
    pub transfer_syntax: SyntaxId,
}

impl PContext {
    const LEN: usize = 2 * SyntaxId::LEN;
}

/// A decoded verification trailer: the known commands it carries (each at most once).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerificationTrailer {
    /// `SEC_VT_COMMAND_BITMASK_1`'s bits and whether it must be processed.
    pub bitmask1: Option<(u32, bool)>,
    /// `SEC_VT_COMMAND_PCONTEXT` and whether it must be processed.
    pub pcontext: Option<(PContext, bool)>,
    /// `SEC_VT_COMMAND_HEADER2` and whether it must be processed.
    pub header2: Option<(Header2, bool)>,
    /// The first command of another number with `SEC_VT_MUST_PROCESS_COMMAND`, which no
    /// server here can process.
    pub unknown_must_process: Option<u16>,
    /// How many commands there were (known and not).
    pub commands: usize,
}

/// Why bytes starting with the magic are not a trailer ([`TrailerError::is_parse`]: Samba then
/// takes them for stub data), or why a trailer is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrailerError {
    /// The bytes do not start with [`MAGIC`].
    #[error("no verification trailer magic")]
    NoMagic,
    /// A command header or body runs past the end, or no command carries the END flag.
    #[error("verification trailer truncated at offset {offset}")]
    Truncated {
        /// Offset (from the magic) of the command that does not fit.
        offset: usize,
    },
    /// A known command whose body is not its size.
    #[error("verification trailer command {command} has length {length}, not {expected}")]
    WrongLength {
        /// The command number.
        command: u16,
        /// Its `length`.
        length: u16,
        /// The length of its body.
        expected: usize,
    },
    /// More than [`MAX_PADDING`] bytes after the END command.
    #[error("{count} bytes after the verification trailer's last command")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// A command number appears twice.
    #[error("verification trailer command {command} appears twice")]
    Duplicate {
        /// The command number.
        command: u16,
    },
    /// An unknown command whose body is not a multiple of 4 bytes.
    #[error("verification trailer command {command} has an unaligned length {length}")]
    Unaligned {
        /// The command number.
        command: u16,
        /// Its `length`.
        length: u16,
    },
}

impl TrailerError {
    /// Whether the bytes did not parse as a trailer at all (Samba leaves them in the stub),
    /// rather than parse as one the server must refuse.
    pub fn is_parse(self) -> bool {
        matches!(
            self,
            Self::NoMagic
                | Self::Truncated { .. }
                | Self::WrongLength { .. }
                | Self::TrailingBytes { .. }
        )
    }
}

/// A command of the trailer that does not match the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Mismatch {
    /// `SEC_VT_COMMAND_BITMASK_1` says the client supports header signing, and its bind did not.
    #[error("the trailer claims header signing the bind did not ask for")]
    HeaderSigning,
    /// `SEC_VT_COMMAND_PCONTEXT` names another abstract or transfer syntax.
    #[error("the trailer names another presentation context")]
    PContext,
    /// `SEC_VT_COMMAND_HEADER2` differs from the request's header.
    #[error("the trailer's header2 differs from the request header")]
    Header2,
    /// An unknown command marked `SEC_VT_MUST_PROCESS_COMMAND`.
    #[error("the trailer's command {0} must be processed and is unknown")]
    MustProcess(u16),
}

/// What the server knows of a request, to check a trailer against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expected {
    /// Whether the client's bind or alter_context set `PFC_SUPPORT_HEADER_SIGN`.
    pub client_header_signing: bool,
    /// The call's presentation context.
    pub pcontext: PContext,
    /// The request's header.
    pub header2: Header2,
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn syntax_at(bytes: &[u8], at: usize) -> Option<SyntaxId> {
    let uuid = Uuid::decode(bytes.get(at..)?, DataRep::LITTLE_ENDIAN).ok()?;
    Some(SyntaxId::from_if_version(uuid, u32_at(bytes, at + 16)?))
}

fn header2_at(body: &[u8]) -> Option<Header2> {
    let (&[ptype, _, _, _], rest) = body.split_first_chunk::<4>()?;
    let (&drep, _) = rest.split_first_chunk::<4>()?;
    Some(Header2 {
        ptype,
        drep,
        call_id: u32_at(body, 8)?,
        p_cont_id: u16_at(body, 12)?,
        opnum: u16_at(body, 14)?,
    })
}

impl VerificationTrailer {
    /// Decodes the trailer at the start of `bytes` (which begin with the magic and run to the
    /// end of the stub).
    ///
    /// # Errors
    /// A [`TrailerError`]: parse errors ([`TrailerError::is_parse`]) and refusals.
    pub fn decode(bytes: &[u8]) -> Result<Self, TrailerError> {
        if bytes.get(..MAGIC.len()) != Some(&MAGIC[..]) {
            return Err(TrailerError::NoMagic);
        }
        let mut trailer = Self::default();
        // Parse first (Samba's pull), then judge (its validity check), so that a parse error
        // anywhere wins over a duplicate before it.
        let mut refusal = None;
        let mut seen = [0u64; (COMMAND_NUMBER as usize + 1) / 64];
        let mut at = MAGIC.len();
        loop {
            let (Some(command), Some(length)) = (u16_at(bytes, at), u16_at(bytes, at + 2)) else {
                return Err(TrailerError::Truncated { offset: at });
            };
            let body_at = at + 4;
            let body = bytes
                .get(body_at..body_at + usize::from(length))
                .ok_or(TrailerError::Truncated { offset: at })?;
            let number = command & COMMAND_NUMBER;
            let must = command & MUST_PROCESS != 0;
            let expected = match number {
                BITMASK_1 => Some(4),
                PCONTEXT => Some(PContext::LEN),
                HEADER2 => Some(Header2::LEN),
                _ => None,
            };
            if let Some(expected) = expected
                && body.len() != expected
            {
                return Err(TrailerError::WrongLength {
                    command: number,
                    length,
                    expected,
                });
            }
            let (word, bit) = (usize::from(number) / 64, u64::from(number) % 64);
            if let Some(seen) = seen.get_mut(word) {
                if *seen & (1 << bit) != 0 {
                    refusal.get_or_insert(TrailerError::Duplicate { command: number });
                }
                *seen |= 1 << bit;
            }
            match number {
                BITMASK_1 => trailer.bitmask1 = u32_at(body, 0).map(|bits| (bits, must)),
                PCONTEXT => {
                    trailer.pcontext = syntax_at(body, 0).zip(syntax_at(body, SyntaxId::LEN)).map(
                        |(abstract_syntax, transfer_syntax)| {
                            (
                                PContext {
                                    abstract_syntax,
                                    transfer_syntax,
                                },
                                must,
                            )
                        },
                    );
                }
                HEADER2 => {
                    trailer.header2 = header2_at(body).map(|header2| (header2, must));
                }
                _ => {
                    if length % 4 != 0 {
                        refusal.get_or_insert(TrailerError::Unaligned {
                            command: number,
                            length,
                        });
                    }
                    if must {
                        trailer.unknown_must_process.get_or_insert(number);
                    }
                }
            }
            trailer.commands += 1;
            at = body_at + body.len();
            if command & COMMAND_END != 0 {
                break;
            }
        }
        let count = bytes.len() - at;
        if count > MAX_PADDING {
            return Err(TrailerError::TrailingBytes { count });
        }
        refusal.map_or(Ok(trailer), Err)
    }

    /// Checks the commands against the request, as Samba's server does: a known command must
    /// match; an unknown one marked must-process fails.
    ///
    /// # Errors
    /// The first [`Mismatch`].
    pub fn check(&self, expected: &Expected) -> Result<(), Mismatch> {
        if let Some((bits, _)) = self.bitmask1
            && bits & CLIENT_SUPPORT_HEADER_SIGNING != 0
            && !expected.client_header_signing
        {
            return Err(Mismatch::HeaderSigning);
        }
        if let Some((pcontext, _)) = self.pcontext
            && pcontext != expected.pcontext
        {
            return Err(Mismatch::PContext);
        }
        if let Some((header2, _)) = self.header2
            && header2 != expected.header2
        {
            return Err(Mismatch::Header2);
        }
        if let Some(number) = self.unknown_must_process {
            return Err(Mismatch::MustProcess(number));
        }
        Ok(())
    }

    /// Encodes the trailer (magic, then the known commands in command order, the last with
    /// END), as a client appends it after its stub padded to 4 bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        let mut commands: Vec<(u16, bool, Vec<u8>)> = Vec::new();
        if let Some((bits, must)) = self.bitmask1 {
            commands.push((BITMASK_1, must, bits.to_le_bytes().to_vec()));
        }
        if let Some((pcontext, must)) = self.pcontext {
            let mut body = Vec::with_capacity(PContext::LEN);
            for syntax in [pcontext.abstract_syntax, pcontext.transfer_syntax] {
                body.extend_from_slice(&syntax.uuid.to_wire(DataRep::LITTLE_ENDIAN));
                body.extend_from_slice(&syntax.if_version().to_le_bytes());
            }
            commands.push((PCONTEXT, must, body));
        }
        if let Some((header2, must)) = self.header2 {
            let mut body = vec![header2.ptype, 0, 0, 0];
            body.extend_from_slice(&header2.drep);
            body.extend_from_slice(&header2.call_id.to_le_bytes());
            body.extend_from_slice(&header2.p_cont_id.to_le_bytes());
            body.extend_from_slice(&header2.opnum.to_le_bytes());
            commands.push((HEADER2, must, body));
        }
        let last = commands.len().saturating_sub(1);
        for (index, (number, must, body)) in commands.into_iter().enumerate() {
            let mut command = number;
            if must {
                command |= MUST_PROCESS;
            }
            if index == last {
                command |= COMMAND_END;
            }
            out.extend_from_slice(&command.to_le_bytes());
            // The known bodies are 4, 40 and 16 bytes.
            out.extend_from_slice(&u16::try_from(body.len()).unwrap_or(u16::MAX).to_le_bytes());
            out.extend_from_slice(&body);
        }
        out
    }
}

/// A trailer found at the end of a stub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Located {
    /// Where the trailer starts: the stub the interface decodes is `stub[..stub_len]`.
    pub stub_len: usize,
    /// The trailer, or why the server refuses it.
    pub trailer: Result<VerificationTrailer, TrailerError>,
}

/// Finds the verification trailer of a whole request stub as Samba's server does: the last
/// 4-aligned occurrence of the magic within the last [`MAX_SCAN`] bytes, which must parse as a
/// trailer (else there is none, and the stub is left whole).
pub fn locate(stub: &[u8]) -> Option<Located> {
    let last = stub.len().checked_sub(MAGIC.len())? & !3;
    let first = last.saturating_sub(MAX_SCAN);
    let (at, tail) = (first..=last)
        .rev()
        .step_by(4)
        .filter_map(|at| Some((at, stub.get(at..)?)))
        .find(|(_, tail)| tail.starts_with(&MAGIC))?;
    match VerificationTrailer::decode(tail) {
        Err(error) if error.is_parse() => None,
        trailer => Some(Located {
            stub_len: at,
            trailer,
        }),
    }
}

#[cfg(test)]
mod tests;
