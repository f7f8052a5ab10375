//! Session security after authentication: signing and sealing with extended session security
//! ([MS-NLMP §3.4]).
//!
//! Each direction has its own signing key, its own RC4 sealing handle (kept across messages) and
//! its own sequence number. A signature is the NTLMSSP_MESSAGE_SIGNATURE of [MS-NLMP §2.2.2.9.1]:
//!
//! ```text
//! 0 Version = 1 (u32)   4 Checksum [8]   12 SeqNum (u32)
//! Checksum = HMAC_MD5(SigningKey, SeqNum || Message)[0..8], then RC4(SealingHandle, Checksum)
//!            when NEGOTIATE_KEY_EXCH was negotiated
//! ```
//!
//! Sealing encrypts the message with the same handle first, then the checksum ([MS-NLMP
//! §3.4.3]); the HMAC always covers the plaintext.
//!
//! [MS-NLMP §3.4]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/d1c86e81-eb66-47fd-8a6f-970050121347
//! [MS-NLMP §2.2.2.9.1]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/2c3b4689-d6f1-4dc6-85c9-0bf01ea34d9f
//! [MS-NLMP §3.4.3]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/115f9c7d-bc30-4262-ae96-254555c14ea6

use core::fmt;
use core::ops::Range;

use dsbackup_proto::{ProtectedFragment, Protection, SecurityError};
use subtle::ConstantTimeEq;

use crate::crypto::{self, Direction, Key, Rc4Stream};
use crate::error::{NtlmError, SignatureError};
use crate::flags::NegotiateFlags;
use crate::md5x::{self, Job, LANES};
use crate::stitch::{self, HmacMd5, Mode};

/// What a batch call answers: on failure, the index of the fragment that failed and the error
/// its single call gives.
pub type BatchResult = Result<(), (usize, NtlmError)>;

/// Batches at privacy of at most this many fragments are sealed and unsealed one fragment at a
/// time, in the stitched pass: with so few lanes the multi-buffer hash after RC4 costs more
/// (sealing n 64 KiB fragments, ns a byte one at a time / as a batch, best of four runs: n = 3
/// 1.82 / 1.99, n = 4 1.79 / 1.91, n = 5 1.86 / 1.65, n = 8 1.85 / 1.47).
const STITCHED_UP_TO: usize = 4;

/// Length of an NTLMSSP_MESSAGE_SIGNATURE.
pub const SIGNATURE_LEN: usize = 16;

/// Which end of the context this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The client: sends with the client-to-server keys.
    Initiator,
    /// The server: sends with the server-to-client keys.
    Acceptor,
}

/// Signing and sealing state of an established context, one half per direction.
pub struct SessionSecurity {
    flags: NegotiateFlags,
    outbound: DirectionState,
    inbound: DirectionState,
}

struct DirectionState {
    /// HMAC-MD5 keyed with the signing key, its inner and outer states computed once (and
    /// zeroized on drop): signing alone, the stitched sealing and unsealing (`crate::stitch`)
    /// and the batch calls (`crate::md5x`) each start from them.
    signing: HmacMd5,
    /// The sealing key, to key the handle afresh after SPNEGO's mechanism list MIC.
    seal_key: Key,
    sealing: Rc4Stream,
    seq_num: u32,
    /// Set after a checksum failed on this direction: its RC4 stream is out of step for good.
    broken: bool,
}

impl SessionSecurity {
    /// Derives the four keys from the ExportedSessionKey and the negotiated flags.
    ///
    /// # Errors
    /// [`NtlmError::Unsupported`] without NEGOTIATE_EXTENDED_SESSIONSECURITY: the NTLM v1
    /// signature (CRC32) is not implemented.
    pub fn new(
        exported_session_key: &Key,
        flags: NegotiateFlags,
        role: Role,
    ) -> Result<Self, NtlmError> {
        if !flags.contains(NegotiateFlags::NEGOTIATE_EXTENDED_SESSIONSECURITY) {
            return Err(NtlmError::Unsupported(
                "session security without NEGOTIATE_EXTENDED_SESSIONSECURITY",
            ));
        }
        let (out_dir, in_dir) = match role {
            Role::Initiator => (Direction::ClientToServer, Direction::ServerToClient),
            Role::Acceptor => (Direction::ServerToClient, Direction::ClientToServer),
        };
        let state = |direction| {
            let seal_key = crypto::seal_key(exported_session_key, flags, direction);
            let sign_key = crypto::sign_key(exported_session_key, direction);
            DirectionState {
                signing: HmacMd5::new(sign_key.as_bytes()),
                sealing: Rc4Stream::new(seal_key.as_bytes()),
                seal_key,
                seq_num: 0,
                broken: false,
            }
        };
        Ok(Self {
            flags,
            outbound: state(out_dir),
            inbound: state(in_dir),
        })
    }

    /// The negotiated flags.
    pub fn flags(&self) -> NegotiateFlags {
        self.flags
    }

    /// The sequence number the next outgoing signature carries.
    pub fn next_send_seq_num(&self) -> u32 {
        self.outbound.seq_num
    }

    /// The sequence number the next incoming signature must carry.
    pub fn next_recv_seq_num(&self) -> u32 {
        self.inbound.seq_num
    }

    /// Signs `message` (GSS_GetMIC): returns its signature and advances the send sequence.
    pub fn sign(&mut self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        let key_exch = self.key_exch();
        let checksum = self.outbound.checksum(message);
        self.outbound.finish(checksum, key_exch)
    }

    /// Checks the signature of an incoming `message` (GSS_VerifyMIC).
    ///
    /// # Errors
    /// [`SignatureError`] for a wrong length, version, sequence number or checksum.
    pub fn verify(&mut self, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        let key_exch = self.key_exch();
        let received = self.inbound.precheck(signature, 0)?;
        self.inbound.compare(message, received, key_exch)
    }

    /// Seals `message` in place and returns its signature (GSS_WrapEx over the whole message).
    pub fn seal(&mut self, message: &mut [u8]) -> [u8; SIGNATURE_LEN] {
        let key_exch = self.key_exch();
        let len = message.len();
        let out = &mut self.outbound;
        let checksum = out.sign_and_seal(message, 0..len);
        out.finish(checksum, key_exch)
    }

    /// Unseals `message` in place and checks its signature (GSS_UnwrapEx).
    ///
    /// # Errors
    /// [`SignatureError`] for a wrong length, version, sequence number or checksum.
    pub fn unseal(&mut self, message: &mut [u8], signature: &[u8]) -> Result<(), SignatureError> {
        let key_exch = self.key_exch();
        let inbound = &mut self.inbound;
        let received = inbound.precheck(signature, 0)?;
        let len = message.len();
        let checksum = inbound.unseal_and_sign(message, 0..len);
        inbound.accept(checksum, received, key_exch)
    }

    /// Signs all of `message` (plaintext) and seals `sealed` of it in place, as DCE/RPC does at
    /// packet privacy: the signature covers the PDU from its header to the `sec_trailer`, the
    /// encryption only the stub.
    ///
    /// # Errors
    /// [`NtlmError::WrongState`] when `sealed` is not inside `message`.
    pub fn seal_range(
        &mut self,
        message: &mut [u8],
        sealed: Range<usize>,
    ) -> Result<[u8; SIGNATURE_LEN], NtlmError> {
        let key_exch = self.key_exch();
        check_range(message, &sealed)?;
        let out = &mut self.outbound;
        let checksum = out.sign_and_seal(message, sealed);
        Ok(out.finish(checksum, key_exch))
    }

    /// Unseals `sealed` of `message` in place, then checks the signature over all of it; the
    /// mirror of [`seal_range`](Self::seal_range).
    ///
    /// The version and sequence number are checked before anything is decrypted; after a
    /// checksum failure this direction refuses every later message.
    ///
    /// # Errors
    /// [`NtlmError::BadSignature`] when the signature does not verify;
    /// [`NtlmError::WrongState`] when `sealed` is not inside `message`.
    pub fn unseal_range(
        &mut self,
        message: &mut [u8],
        sealed: Range<usize>,
        signature: &[u8],
    ) -> Result<(), NtlmError> {
        let key_exch = self.key_exch();
        let inbound = &mut self.inbound;
        let received = inbound.precheck(signature, 0)?;
        check_range(message, &sealed)?;
        let checksum = inbound.unseal_and_sign(message, sealed);
        inbound.accept(checksum, received, key_exch)?;
        Ok(())
    }

    /// Signs each of `fragments` (their `pdu`, whole) into its `signature`, in order: the
    /// signatures and sequence numbers of one [`sign`](Self::sign) call per fragment, with the
    /// checksums of up to eight fragments computed side by side. `stub` is not used.
    ///
    /// # Errors
    /// The index of the first fragment whose `signature` is not 16 bytes long, with
    /// [`NtlmError::WrongState`]; the fragments before it are signed.
    pub fn sign_batch(&mut self, fragments: &mut [ProtectedFragment<'_>]) -> BatchResult {
        self.protect_batch(fragments, false)
    }

    /// Signs and seals each of `fragments` in order: the bytes, signatures and sequence
    /// numbers of one [`seal_range`](Self::seal_range) call per fragment (over its `pdu` and
    /// `stub`), with the checksums of up to eight plaintext fragments computed side by side
    /// before RC4 runs over them in order.
    ///
    /// # Errors
    /// The index of the first fragment whose `signature` is not 16 bytes long or whose `stub`
    /// is not inside its `pdu`, with [`NtlmError::WrongState`]; the fragments before it are
    /// sealed, it and those after it are untouched.
    pub fn seal_batch(&mut self, fragments: &mut [ProtectedFragment<'_>]) -> BatchResult {
        if fragments.len() <= STITCHED_UP_TO {
            return self.seal_each(fragments);
        }
        self.protect_batch(fragments, true)
    }

    /// Checks the signature of each of `fragments` in order: one [`verify`](Self::verify) call
    /// per fragment, with the checksums of up to eight fragments computed side by side.
    ///
    /// # Errors
    /// The index of the first fragment that does not verify and the error of its single call
    /// ([`NtlmError::BadSignature`]); the fragments before it are accepted.
    pub fn verify_batch(&mut self, fragments: &mut [ProtectedFragment<'_>]) -> BatchResult {
        self.check_batch(fragments, false)
    }

    /// Unseals and checks each of `fragments` in order: one
    /// [`unseal_range`](Self::unseal_range) call per fragment, RC4 running over each stub and
    /// then its checksum in order, then the checksums of up to eight fragments computed side by
    /// side.
    ///
    /// # Errors
    /// The index of the first fragment that fails and the error of its single call; the
    /// fragments before it are unsealed and accepted. After a checksum failure the contents of
    /// the fragments after the failing one are unspecified (some may be decrypted) and, as
    /// after a single failure, this direction refuses every later message.
    pub fn unseal_batch(&mut self, fragments: &mut [ProtectedFragment<'_>]) -> BatchResult {
        if fragments.len() <= STITCHED_UP_TO {
            return self.unseal_each(fragments);
        }
        self.check_batch(fragments, true)
    }

    /// [`seal_batch`](Self::seal_batch) one [`seal_range`](Self::seal_range) at a time.
    fn seal_each(&mut self, fragments: &mut [ProtectedFragment<'_>]) -> BatchResult {
        for (index, fragment) in fragments.iter_mut().enumerate() {
            let signature: &mut [u8; SIGNATURE_LEN] = (&mut *fragment.signature)
                .try_into()
                .map_err(|_| (index, NtlmError::WrongState(SIGNATURE_BUFFER)))?;
            *signature = self
                .seal_range(fragment.pdu, fragment.stub.clone())
                .map_err(|error| (index, error))?;
        }
        Ok(())
    }

    /// [`unseal_batch`](Self::unseal_batch) one [`unseal_range`](Self::unseal_range) at a time.
    fn unseal_each(&mut self, fragments: &mut [ProtectedFragment<'_>]) -> BatchResult {
        for (index, fragment) in fragments.iter_mut().enumerate() {
            self.unseal_range(fragment.pdu, fragment.stub.clone(), fragment.signature)
                .map_err(|error| (index, error))?;
        }
        Ok(())
    }

    /// [`sign_batch`](Self::sign_batch) or, with `seal`, [`seal_batch`](Self::seal_batch).
    fn protect_batch(
        &mut self,
        fragments: &mut [ProtectedFragment<'_>],
        seal: bool,
    ) -> BatchResult {
        let key_exch = self.key_exch();
        let out = &mut self.outbound;
        let refused = fragments.iter().enumerate().find_map(|(index, fragment)| {
            let usable = if fragment.signature.len() != SIGNATURE_LEN {
                Err(NtlmError::WrongState(SIGNATURE_BUFFER))
            } else if seal {
                check_range(fragment.pdu, &fragment.stub)
            } else {
                Ok(())
            };
            usable.err().map(|error| (index, error))
        });
        let usable = refused
            .as_ref()
            .map_or(fragments.len(), |(index, _)| *index);
        let (usable, _) = fragments.split_at_mut(usable);
        for group in usable.chunks_mut(LANES) {
            let sums = out.checksums(group.iter().map(|fragment| &*fragment.pdu));
            for (fragment, checksum) in group.iter_mut().zip(sums) {
                if seal && let Some(stub) = fragment.pdu.get_mut(fragment.stub.clone()) {
                    out.sealing.apply(stub);
                }
                let signature = out.finish(checksum, key_exch);
                fragment.signature.copy_from_slice(&signature);
            }
        }
        refused.map_or(Ok(()), Err)
    }

    /// [`verify_batch`](Self::verify_batch) or, with `seal`, [`unseal_batch`](Self::unseal_batch).
    fn check_batch(&mut self, fragments: &mut [ProtectedFragment<'_>], seal: bool) -> BatchResult {
        let key_exch = self.key_exch();
        let inbound = &mut self.inbound;
        let mut first = 0;
        for group in fragments.chunks_mut(LANES) {
            // The signatures as the single calls check them before decrypting anything, each
            // at the sequence number it comes at; the group stops at the first refused one.
            let mut received = [[0u8; 8]; LANES];
            let mut refused = None;
            let mut ready = 0;
            for ((ahead, fragment), received) in (0u32..).zip(&*group).zip(&mut received) {
                let checked = inbound
                    .precheck(fragment.signature, ahead)
                    .map_err(NtlmError::from)
                    .and_then(|sum| {
                        if seal {
                            check_range(fragment.pdu, &fragment.stub).map(|()| sum)
                        } else {
                            Ok(sum)
                        }
                    });
                match checked {
                    Ok(sum) => *received = sum,
                    Err(error) => {
                        refused = Some(error);
                        break;
                    }
                }
                ready += 1;
            }
            let (ready, _) = group.split_at_mut(ready);
            // RC4 in order: each stub, then its checksum.
            for (fragment, received) in ready.iter_mut().zip(&mut received) {
                if seal && let Some(stub) = fragment.pdu.get_mut(fragment.stub.clone()) {
                    inbound.sealing.apply(stub);
                }
                if key_exch {
                    inbound.sealing.apply(received);
                }
            }
            let expected = inbound.checksums(ready.iter().map(|fragment| &*fragment.pdu));
            for (index, (expected, received)) in
                expected.iter().zip(&received).take(ready.len()).enumerate()
            {
                inbound
                    .check(expected, received)
                    .map_err(|error| (first + index, error.into()))?;
            }
            if let Some(error) = refused {
                return Err((first + ready.len(), error));
            }
            first += group.len();
        }
        Ok(())
    }

    /// Keys both RC4 sealing handles afresh from their sealing keys, keeping the sequence
    /// numbers: what SPNEGO does once the mechanism list MICs went both ways, so the first
    /// protected message uses the handle state the MIC used ([MS-SPNG §3.1.5.1]; Samba's
    /// `gensec_spnego` resets the RC4 state and keeps the sequence numbers after a MIC check).
    ///
    /// [MS-SPNG §3.1.5.1]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-spng/
    pub fn reset_sealing_handles(&mut self) {
        for direction in [&mut self.outbound, &mut self.inbound] {
            direction.sealing = Rc4Stream::new(direction.seal_key.as_bytes());
        }
    }

    fn key_exch(&self) -> bool {
        self.flags.contains(NegotiateFlags::NEGOTIATE_KEY_EXCH)
    }
}

/// NTLM inside SPNEGO, for a side with a `session` field and a `$mic` field telling whether
/// the AUTHENTICATE carried a MIC: the mechanism list MIC is an NTLM signature over the DER
/// list, asked for whenever the AUTHENTICATE carried a MIC ([MS-SPNG]).
///
/// [MS-SPNG]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-spng/
macro_rules! spnego_mechanism {
    ($side:ty, $mic:ident) => {
        impl dsbackup_proto::SpnegoMechanism for $side {
            fn can_sign(&self) -> bool {
                $crate::session::mech_list::can_sign(self.session.as_ref())
            }

            fn wants_mech_list_mic(&self) -> bool {
                self.$mic && self.is_established()
            }

            fn get_mic(
                &mut self,
                message: &[u8],
            ) -> Result<Vec<u8>, dsbackup_proto::SecurityError> {
                $crate::session::mech_list::get_mic(self.session.as_mut(), message)
            }

            fn verify_mic(
                &mut self,
                message: &[u8],
                mic: &[u8],
            ) -> Result<(), dsbackup_proto::SecurityError> {
                $crate::session::mech_list::verify_mic(self.session.as_mut(), message, mic)
            }

            fn mech_list_mic_done(&mut self) {
                $crate::session::mech_list::done(self.session.as_mut());
            }
        }
    };
}
pub(crate) use spnego_mechanism;

/// The [`SpnegoMechanism`](dsbackup_proto::SpnegoMechanism) half of a context, shared by both
/// sides and the observer.
pub(crate) mod mech_list {
    use dsbackup_proto::SecurityError;

    use super::SessionSecurity;
    use crate::error::NtlmError;
    use crate::flags::NegotiateFlags;

    /// Whether signing was negotiated (Samba refuses to sign without `NEGOTIATE_SIGN`).
    pub(crate) fn can_sign(session: Option<&SessionSecurity>) -> bool {
        session.is_some_and(|s| s.flags().contains(NegotiateFlags::NEGOTIATE_SIGN))
    }

    fn signing(
        session: Option<&mut SessionSecurity>,
    ) -> Result<&mut SessionSecurity, SecurityError> {
        let session = session.ok_or(SecurityError::WrongState("not established"))?;
        if session.flags().contains(NegotiateFlags::NEGOTIATE_SIGN) {
            Ok(session)
        } else {
            Err(SecurityError::CapabilityNotNegotiated("NEGOTIATE_SIGN"))
        }
    }

    pub(crate) fn get_mic(
        session: Option<&mut SessionSecurity>,
        message: &[u8],
    ) -> Result<Vec<u8>, SecurityError> {
        Ok(signing(session)?.sign(message).to_vec())
    }

    pub(crate) fn verify_mic(
        session: Option<&mut SessionSecurity>,
        message: &[u8],
        mic: &[u8],
    ) -> Result<(), SecurityError> {
        signing(session)?
            .verify(message, mic)
            .map_err(|error| NtlmError::from(error).into())
    }

    pub(crate) fn done(session: Option<&mut SessionSecurity>) {
        if let Some(session) = session {
            session.reset_sealing_handles();
        }
    }
}

impl fmt::Debug for SessionSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionSecurity")
            .field("flags", &self.flags)
            .field("send_seq_num", &self.outbound.seq_num)
            .field("recv_seq_num", &self.inbound.seq_num)
            .field("keys", &"<redacted>")
            .finish()
    }
}

/// Refuses a sealed range that is not inside the message.
fn check_range(message: &[u8], sealed: &Range<usize>) -> Result<(), NtlmError> {
    if sealed.start <= sealed.end && sealed.end <= message.len() {
        Ok(())
    } else {
        Err(NtlmError::WrongState(
            "given a sealed range outside the message",
        ))
    }
}

/// The chunk the tests' messages are counted in (what sealing once went by).
#[cfg(test)]
const CHUNK: usize = 4096;

impl DirectionState {
    /// `HMAC_MD5(SigningKey, SeqNum || message)[0..8]` at the current sequence number.
    fn checksum(&self, message: &[u8]) -> [u8; 8] {
        self.signing.sign(self.seq_num, message)
    }

    /// The checksum of the plaintext `message`, sealing its `sealed` range in place in the same
    /// pass (RC4 and HMAC-MD5 stitched, `crate::stitch`). `sealed` is inside `message`.
    fn sign_and_seal(&mut self, message: &mut [u8], sealed: Range<usize>) -> [u8; 8] {
        let rc4 = self.sealing.rc4();
        self.signing
            .checksum(self.seq_num, rc4, message, sealed, Mode::Seal)
    }

    /// Unseals the `sealed` range of `message` in place and returns the checksum of the
    /// plaintext, in one pass (`crate::stitch`). `sealed` is inside `message`.
    fn unseal_and_sign(&mut self, message: &mut [u8], sealed: Range<usize>) -> [u8; 8] {
        let rc4 = self.sealing.rc4();
        self.signing
            .checksum(self.seq_num, rc4, message, sealed, Mode::Unseal)
    }

    /// The checksums of up to [`LANES`] `messages` (the first ones, if more), side by side:
    /// the first at the current sequence number, the next at the one after, and so on.
    fn checksums<'m>(&self, messages: impl Iterator<Item = &'m [u8]>) -> [[u8; 8]; LANES] {
        let mut seq_nums = [[0u8; 4]; LANES];
        for (ahead, seq_num) in (0u32..).zip(&mut seq_nums) {
            *seq_num = self.seq_num.wrapping_add(ahead).to_le_bytes();
        }
        let idle = Job {
            key: &self.signing,
            prefix: &[],
            body: &[],
        };
        let mut jobs = [idle; LANES];
        let mut count = 0;
        for ((job, message), seq_num) in jobs.iter_mut().zip(messages).zip(&seq_nums) {
            *job = Job {
                key: &self.signing,
                prefix: seq_num,
                body: message,
            };
            count += 1;
        }
        let mut macs = [[0u8; 16]; LANES];
        md5x::hmac_md5_many(jobs.get(..count).unwrap_or_default(), &mut macs);
        macs.map(stitch::truncated)
    }

    /// The signature carrying `checksum`, which the sealing handle encrypts first with
    /// NEGOTIATE_KEY_EXCH (after the message, when sealing); advances the sequence number.
    fn finish(&mut self, mut checksum: [u8; 8], key_exch: bool) -> [u8; SIGNATURE_LEN] {
        if key_exch {
            self.sealing.apply(&mut checksum);
        }
        let mut signature = [0u8; SIGNATURE_LEN];
        let (version, rest) = signature.split_at_mut(4);
        let (sum, seq) = rest.split_at_mut(8);
        version.copy_from_slice(&SIGNATURE_VERSION.to_le_bytes());
        sum.copy_from_slice(&checksum);
        seq.copy_from_slice(&self.seq_num.to_le_bytes());
        self.seq_num = self.seq_num.wrapping_add(1);
        signature
    }

    /// Checks length, version and sequence number, which is `ahead` past the current one;
    /// returns the (still encrypted) checksum.
    fn precheck(&self, signature: &[u8], ahead: u32) -> Result<[u8; 8], SignatureError> {
        let Some(
            &[
                v0,
                v1,
                v2,
                v3,
                c0,
                c1,
                c2,
                c3,
                c4,
                c5,
                c6,
                c7,
                s0,
                s1,
                s2,
                s3,
            ],
        ) = signature
            .first_chunk::<SIGNATURE_LEN>()
            .filter(|_| signature.len() == SIGNATURE_LEN)
        else {
            return Err(SignatureError::BadLength(signature.len()));
        };
        if self.broken {
            return Err(SignatureError::BadChecksum);
        }
        let version = u32::from_le_bytes([v0, v1, v2, v3]);
        if version != SIGNATURE_VERSION {
            return Err(SignatureError::BadVersion(version));
        }
        let seq_num = u32::from_le_bytes([s0, s1, s2, s3]);
        let expected = self.seq_num.wrapping_add(ahead);
        if seq_num != expected {
            return Err(SignatureError::OutOfSequence {
                expected,
                got: seq_num,
            });
        }
        Ok([c0, c1, c2, c3, c4, c5, c6, c7])
    }

    /// Checks the signature of the plaintext `message`; see [`accept`](Self::accept).
    fn compare(
        &mut self,
        message: &[u8],
        received: [u8; 8],
        key_exch: bool,
    ) -> Result<(), SignatureError> {
        let expected = self.checksum(message);
        self.accept(expected, received, key_exch)
    }

    /// Decrypts the received checksum with NEGOTIATE_KEY_EXCH (after the message, when
    /// unsealing) and compares it with `expected` in constant time; advances on success.
    fn accept(
        &mut self,
        expected: [u8; 8],
        mut received: [u8; 8],
        key_exch: bool,
    ) -> Result<(), SignatureError> {
        if key_exch {
            self.sealing.apply(&mut received);
        }
        self.check(&expected, &received)
    }

    /// Compares the decrypted received checksum with `expected` in constant time; advances on
    /// success, breaks this direction on failure.
    fn check(&mut self, expected: &[u8; 8], received: &[u8; 8]) -> Result<(), SignatureError> {
        if bool::from(expected.ct_eq(received)) {
            self.seq_num = self.seq_num.wrapping_add(1);
            Ok(())
        } else {
            self.broken = true;
            Err(SignatureError::BadChecksum)
        }
    }
}

/// `Version` of NTLMSSP_MESSAGE_SIGNATURE.
const SIGNATURE_VERSION: u32 = 1;

/// Why a signature buffer was refused.
const SIGNATURE_BUFFER: &str = "signature buffer is not 16 bytes";

/// [`SecurityProvider::wrap`](dsbackup_proto::SecurityProvider::wrap) over a session, shared by
/// both sides.
pub(crate) fn wrap(
    session: Option<&mut SessionSecurity>,
    protection: Protection,
    pdu: &mut [u8],
    stub: Range<usize>,
    signature: &mut [u8],
) -> Result<(), SecurityError> {
    let session = session.ok_or(SecurityError::WrongState("not established"))?;
    let out: &mut [u8; SIGNATURE_LEN] = signature
        .try_into()
        .map_err(|_| SecurityError::Unsupported(SIGNATURE_BUFFER))?;
    match protection {
        Protection::None => {}
        Protection::Integrity => *out = session.sign(pdu),
        Protection::Privacy => *out = session.seal_range(pdu, stub)?,
    }
    Ok(())
}

/// [`SecurityProvider::unwrap`](dsbackup_proto::SecurityProvider::unwrap) over a session, shared by
/// both sides.
pub(crate) fn unwrap(
    session: Option<&mut SessionSecurity>,
    protection: Protection,
    pdu: &mut [u8],
    stub: Range<usize>,
    signature: &[u8],
) -> Result<(), SecurityError> {
    let session = session.ok_or(SecurityError::WrongState("not established"))?;
    match protection {
        Protection::None => Ok(()),
        Protection::Integrity => session
            .verify(pdu, signature)
            .map_err(|error| NtlmError::from(error).into()),
        Protection::Privacy => Ok(session.unseal_range(pdu, stub, signature)?),
    }
}

/// [`wrap`] over each of `fragments` in order, the checksums of several computed side by side.
///
/// # Errors
/// The index of the first fragment whose [`wrap`] fails and its error; the fragments before it
/// are protected, it and those after it are untouched.
pub(crate) fn wrap_batch(
    session: Option<&mut SessionSecurity>,
    protection: Protection,
    fragments: &mut [ProtectedFragment<'_>],
) -> Result<(), (usize, SecurityError)> {
    if fragments.is_empty() {
        return Ok(());
    }
    let session = established(session)?;
    let sized = fragments
        .iter()
        .position(|fragment| fragment.signature.len() != SIGNATURE_LEN)
        .unwrap_or(fragments.len());
    let (usable, _) = fragments.split_at_mut(sized);
    let calls = [SessionSecurity::sign_batch, SessionSecurity::seal_batch];
    run_batch(session, protection, usable, calls)?;
    if sized < fragments.len() {
        Err((sized, SecurityError::Unsupported(SIGNATURE_BUFFER)))
    } else {
        Ok(())
    }
}

/// [`unwrap`] over each of `fragments` in order, the checksums of several computed side by
/// side.
///
/// # Errors
/// The index of the first fragment whose [`unwrap`] fails and its error; the fragments before it
/// are accepted (see [`SessionSecurity::unseal_batch`] for those after it).
pub(crate) fn unwrap_batch(
    session: Option<&mut SessionSecurity>,
    protection: Protection,
    fragments: &mut [ProtectedFragment<'_>],
) -> Result<(), (usize, SecurityError)> {
    if fragments.is_empty() {
        return Ok(());
    }
    let calls = [SessionSecurity::verify_batch, SessionSecurity::unseal_batch];
    run_batch(established(session)?, protection, fragments, calls)
}

/// The session of a batch, which fails at its first fragment without one.
fn established(
    session: Option<&mut SessionSecurity>,
) -> Result<&mut SessionSecurity, (usize, SecurityError)> {
    session.ok_or((0, SecurityError::WrongState("not established")))
}

/// A batch call of [`SessionSecurity`].
type BatchCall = fn(&mut SessionSecurity, &mut [ProtectedFragment<'_>]) -> BatchResult;

/// The batch call of `protection`: the first of `calls` at integrity, the second at privacy.
fn run_batch(
    session: &mut SessionSecurity,
    protection: Protection,
    fragments: &mut [ProtectedFragment<'_>],
    [integrity, privacy]: [BatchCall; 2],
) -> Result<(), (usize, SecurityError)> {
    match protection {
        Protection::None => Ok(()),
        Protection::Integrity => integrity(session, fragments),
        Protection::Privacy => privacy(session, fragments),
    }
    .map_err(|(index, error)| (index, error.into()))
}

#[cfg(test)]
mod tests {
    use hmac::{Hmac, KeyInit as _, Mac as _};
    use md5::Md5;
    use proptest::prelude::*;
    use rc4::{Rc4, StreamCipher as _};

    use super::*;
    use crate::fuzzing::protected;

    fn flags() -> NegotiateFlags {
        NegotiateFlags::NEGOTIATE_EXTENDED_SESSIONSECURITY
            | NegotiateFlags::NEGOTIATE_128
            | NegotiateFlags::NEGOTIATE_KEY_EXCH
            | NegotiateFlags::NEGOTIATE_SIGN
            | NegotiateFlags::NEGOTIATE_SEAL
    }

    /// [MS-NLMP §3.4.3] written out with the crates directly, two passes over each message:
    /// HMAC-MD5 of the whole plaintext, then RC4 over the sealed range, then RC4 over the
    /// checksum.
    struct Reference {
        signing_key: Key,
        sealing: Rc4,
        seq_num: u32,
    }

    impl Reference {
        fn new(session_key: &Key, direction: Direction) -> Self {
            let seal = crypto::seal_key(session_key, flags(), direction);
            Self {
                signing_key: crypto::sign_key(session_key, direction),
                sealing: Rc4::new_from_slice(seal.as_bytes()).unwrap(),
                seq_num: 0,
            }
        }

        fn seal_range(&mut self, message: &mut [u8], sealed: Range<usize>) -> [u8; 16] {
            let mut mac = Hmac::<Md5>::new_from_slice(self.signing_key.as_bytes()).unwrap();
            mac.update(&self.seq_num.to_le_bytes());
            mac.update(message);
            let mac = mac.finalize().into_bytes();
            self.sealing.apply_keystream(&mut message[sealed]);
            let mut checksum = [0u8; 8];
            checksum.copy_from_slice(&mac[..8]);
            self.sealing.apply_keystream(&mut checksum);
            let mut signature = [0u8; 16];
            signature[..4].copy_from_slice(&1u32.to_le_bytes());
            signature[4..12].copy_from_slice(&checksum);
            signature[12..].copy_from_slice(&self.seq_num.to_le_bytes());
            self.seq_num += 1;
            signature
        }
    }

    /// A message up to a few chunks long with a sealed range inside it.
    fn message() -> impl Strategy<Value = (Vec<u8>, Range<usize>)> {
        (0..3 * CHUNK + 100).prop_flat_map(|len| {
            (
                proptest::collection::vec(any::<u8>(), len),
                0..=len,
                0..=len,
            )
                .prop_map(|(bytes, a, b)| (bytes, a.min(b)..a.max(b)))
        })
    }

    /// A few messages.
    fn messages() -> impl Strategy<Value = Vec<(Vec<u8>, Range<usize>)>> {
        proptest::collection::vec(message(), 1..6)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Sealing in one pass over chunks gives the bytes and signatures of the two-pass
        /// reference, and the other side unseals them back to the plaintext.
        #[test]
        fn one_pass_sealing_matches_the_reference(
            key in any::<[u8; 16]>(),
            messages in messages(),
        ) {
            let key = Key::new(key);
            let mut client = SessionSecurity::new(&key, flags(), Role::Initiator).unwrap();
            let mut server = SessionSecurity::new(&key, flags(), Role::Acceptor).unwrap();
            let mut reference = Reference::new(&key, Direction::ClientToServer);
            for (plain, sealed) in messages {
                let mut ours = plain.clone();
                let mut theirs = plain.clone();
                let signature = client.seal_range(&mut ours, sealed.clone()).unwrap();
                prop_assert_eq!(signature, reference.seal_range(&mut theirs, sealed.clone()));
                prop_assert_eq!(&ours, &theirs);
                server.unseal_range(&mut ours, sealed, &signature).unwrap();
                prop_assert_eq!(&ours, &plain);
            }
        }

        /// Whole-message sealing and signing agree with the reference as well, and a flipped
        /// byte fails the check.
        #[test]
        fn seal_and_sign_match_the_reference(
            key in any::<[u8; 16]>(),
            messages in messages(),
        ) {
            let key = Key::new(key);
            let mut client = SessionSecurity::new(&key, flags(), Role::Initiator).unwrap();
            let mut server = SessionSecurity::new(&key, flags(), Role::Acceptor).unwrap();
            let mut reference = Reference::new(&key, Direction::ClientToServer);
            for (index, (plain, _)) in messages.into_iter().enumerate() {
                let mut ours = plain.clone();
                let mut theirs = plain.clone();
                let len = plain.len();
                if index % 2 == 0 {
                    let signature = client.seal(&mut ours);
                    prop_assert_eq!(signature, reference.seal_range(&mut theirs, 0..len));
                    prop_assert_eq!(&ours, &theirs);
                    server.unseal(&mut ours, &signature).unwrap();
                    prop_assert_eq!(&ours, &plain);
                } else {
                    let signature = client.sign(&ours);
                    prop_assert_eq!(signature, reference.seal_range(&mut theirs, 0..0));
                    server.verify(&ours, &signature).unwrap();
                }
            }
        }
    }

    #[test]
    fn a_flipped_byte_fails_the_one_pass_check() {
        let key = Key::new([3; 16]);
        let mut client = SessionSecurity::new(&key, flags(), Role::Initiator).unwrap();
        let mut server = SessionSecurity::new(&key, flags(), Role::Acceptor).unwrap();
        let mut message = vec![0x42; 3 * CHUNK + 17];
        let signature = client.seal_range(&mut message, 24..3 * CHUNK).unwrap();
        message[CHUNK + 5] ^= 1;
        assert!(matches!(
            server.unseal_range(&mut message, 24..3 * CHUNK, &signature),
            Err(NtlmError::BadSignature(SignatureError::BadChecksum))
        ));
    }

    #[test]
    fn a_sealed_range_outside_the_message_is_refused() {
        let key = Key::new([3; 16]);
        let mut client = SessionSecurity::new(&key, flags(), Role::Initiator).unwrap();
        let mut message = vec![0; 10];
        for range in [0..11, Range { start: 8, end: 4 }] {
            assert!(matches!(
                client.seal_range(&mut message, range),
                Err(NtlmError::WrongState(_))
            ));
        }
        // Nothing was consumed: the sequence number did not move.
        assert_eq!(client.next_send_seq_num(), 0);
    }

    fn batch_flags(key_exch: bool) -> NegotiateFlags {
        if key_exch {
            flags()
        } else {
            flags() - NegotiateFlags::NEGOTIATE_KEY_EXCH
        }
    }

    fn level() -> impl Strategy<Value = Protection> {
        prop_oneof![Just(Protection::Integrity), Just(Protection::Privacy)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// A batch gives the bytes, signatures and sequence numbers of one call per fragment,
        /// at both levels, with and without KEY_EXCH, in batches of any size; both ends stay
        /// in step with single calls afterwards.
        #[test]
        fn batches_match_single_calls(
            key in any::<[u8; 16]>(),
            key_exch in any::<bool>(),
            protection in level(),
            messages in proptest::collection::vec(
                proptest::collection::vec(message(), 1..2 * LANES + 3),
                1..4,
            ),
        ) {
            let key = Key::new(key);
            let flags = batch_flags(key_exch);
            let mut single = SessionSecurity::new(&key, flags, Role::Initiator).unwrap();
            let mut batched = SessionSecurity::new(&key, flags, Role::Initiator).unwrap();
            let mut single_peer = SessionSecurity::new(&key, flags, Role::Acceptor).unwrap();
            let mut batched_peer = SessionSecurity::new(&key, flags, Role::Acceptor).unwrap();
            for batch in messages {
                let plain: Vec<_> = batch.into_iter().map(|(pdu, stub)| (pdu, stub, [0u8; 16])).collect();
                let mut ones = plain.clone();
                for (pdu, stub, signature) in &mut ones {
                    wrap(Some(&mut single), protection, pdu, stub.clone(), signature).unwrap();
                }
                let mut many = plain.clone();
                wrap_batch(Some(&mut batched), protection, &mut protected(&mut many)).unwrap();
                prop_assert!(many == ones, "the batch differs from the single calls");
                prop_assert_eq!(batched.next_send_seq_num(), single.next_send_seq_num());

                for (pdu, stub, signature) in &mut ones {
                    unwrap(Some(&mut single_peer), protection, pdu, stub.clone(), signature).unwrap();
                }
                unwrap_batch(Some(&mut batched_peer), protection, &mut protected(&mut many)).unwrap();
                let pdus = |fragments: &[(Vec<u8>, Range<usize>, [u8; 16])]| {
                    fragments.iter().map(|(pdu, _, _)| pdu.clone()).collect::<Vec<_>>()
                };
                prop_assert!(pdus(&many) == pdus(&plain), "the batch did not unseal");
                prop_assert!(pdus(&ones) == pdus(&plain), "the single calls did not unseal");
                prop_assert_eq!(batched_peer.next_recv_seq_num(), single_peer.next_recv_seq_num());
            }
            // The RC4 handles went the same way: a single message after the batches agrees.
            let mut a = b"after the batches".to_vec();
            let mut b = a.clone();
            let signature = single.seal(&mut a);
            prop_assert_eq!(signature, batched.seal(&mut b));
            prop_assert_eq!(&a, &b);
            single_peer.unseal(&mut a, &signature).unwrap();
            batched_peer.unseal(&mut b, &signature).unwrap();
            prop_assert_eq!(&a, &b);
        }

        /// A fragment altered on the way fails the batch at its index: the ones before it are
        /// accepted, the direction is broken afterwards as after a single failure.
        #[test]
        fn a_tampered_fragment_fails_at_its_index(
            key_exch in any::<bool>(),
            protection in level(),
            count in 2..20u8,
            tampered in any::<prop::sample::Index>(),
            len in 1..3000usize,
        ) {
            let key = Key::new([9; 16]);
            let flags = batch_flags(key_exch);
            let mut client = SessionSecurity::new(&key, flags, Role::Initiator).unwrap();
            let mut server = SessionSecurity::new(&key, flags, Role::Acceptor).unwrap();
            let stub = len / 3..len;
            let mut fragments: Vec<_> = (0..count)
                .map(|n| (vec![n; len], stub.clone(), [0u8; 16]))
                .collect();
            wrap_batch(Some(&mut client), protection, &mut protected(&mut fragments)).unwrap();
            let k = tampered.index(count.into());
            fragments[k].0[len - 1] ^= 0x20;
            prop_assert_eq!(
                unwrap_batch(Some(&mut server), protection, &mut protected(&mut fragments)),
                Err((k, SecurityError::BadSignature))
            );
            prop_assert_eq!(server.next_recv_seq_num() as usize, k);
            for ((pdu, _, _), n) in fragments.iter().zip(0u8..).take(k) {
                prop_assert_eq!(pdu, &vec![n; len]);
            }
            // Broken: not even the next genuine fragment passes.
            let mut pdu = vec![0; 8];
            let signature = client.seal(&mut pdu);
            prop_assert!(server.unseal(&mut pdu, &signature).is_err());
        }
    }

    #[test]
    fn an_out_of_sequence_fragment_fails_at_its_index_and_breaks_nothing() {
        let key = Key::new([4; 16]);
        let mut client = SessionSecurity::new(&key, flags(), Role::Initiator).unwrap();
        let mut server = SessionSecurity::new(&key, flags(), Role::Acceptor).unwrap();
        let mut fragments: Vec<_> = (0..12u8)
            .map(|n| (vec![n; 100], 16..100, [0u8; 16]))
            .collect();
        client.seal_batch(&mut protected(&mut fragments)).unwrap();
        // Fragment 10 is lost: 11 comes where 10 should.
        fragments.remove(10);
        let error = server.unseal_batch(&mut protected(&mut fragments));
        assert!(
            matches!(
                error,
                Err((
                    10,
                    NtlmError::BadSignature(SignatureError::OutOfSequence {
                        expected: 10,
                        got: 11
                    })
                ))
            ),
            "{error:?}"
        );
        assert_eq!(server.next_recv_seq_num(), 10);
        assert!(
            fragments
                .iter()
                .take(10)
                .zip(0u8..)
                .all(|((pdu, _, _), n)| *pdu == vec![n; 100])
        );
        // As after a single call, the direction is not broken: fragment 11 is still out of
        // sequence, fragment 10 would pass.
        let (pdu, stub, signature) = &mut fragments[10];
        assert!(matches!(
            server.unseal_range(pdu, stub.clone(), signature),
            Err(NtlmError::BadSignature(
                SignatureError::OutOfSequence { .. }
            ))
        ));
    }

    #[test]
    fn a_bad_buffer_stops_a_batch_where_the_single_call_would() {
        let key = Key::new([5; 16]);
        let mut client = SessionSecurity::new(&key, flags(), Role::Initiator).unwrap();
        let mut reference = SessionSecurity::new(&key, flags(), Role::Initiator).unwrap();
        let mut pdus: Vec<Vec<u8>> = (0..4u8).map(|n| vec![n; 50]).collect();
        let plain = pdus.clone();
        let mut signatures = [[0u8; 16]; 4];
        let mut short = [0u8; 15];
        let mut fragments: Vec<ProtectedFragment<'_>> = pdus
            .iter_mut()
            .zip(&mut signatures)
            .map(|(pdu, signature)| ProtectedFragment {
                pdu,
                stub: 10..40,
                signature,
            })
            .collect();
        fragments[2].signature = &mut short;
        assert_eq!(
            wrap_batch(Some(&mut client), Protection::Privacy, &mut fragments),
            Err((2, SecurityError::Unsupported(SIGNATURE_BUFFER)))
        );
        fragments[2].stub = 10..60;
        assert!(matches!(
            client.seal_batch(&mut fragments[2..]),
            Err((0, NtlmError::WrongState(_)))
        ));
        assert_eq!(client.next_send_seq_num(), 2);
        drop(fragments);
        for (n, pdu) in pdus.iter().enumerate() {
            let mut expected = plain[n].clone();
            if n < 2 {
                assert_eq!(
                    signatures[n],
                    reference.seal_range(&mut expected, 10..40).unwrap()
                );
            }
            assert_eq!(*pdu, expected, "fragment {n}");
        }
        assert_eq!(wrap_batch(None, Protection::Integrity, &mut []), Ok(()));
        assert_eq!(
            unwrap_batch(
                None,
                Protection::Integrity,
                &mut protected(&mut [(vec![], 0..0, [0; 16])])
            ),
            Err((0, SecurityError::WrongState("not established")))
        );
    }
}
