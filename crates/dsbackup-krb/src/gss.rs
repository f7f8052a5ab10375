//! Kerberos as a DCE/RPC security provider (auth type 16, RPC_C_AUTHN_GSS_KERBEROS): the
//! DCE-style three-leg handshake of [MS-KILE §3.4.5] and the per-fragment tokens of
//! [RFC 4121 §4.2] (MIC tokens at packet integrity, wrap tokens at privacy).
//!
//! ```text
//! client                                                server
//! step(None)         -> GSS token with AP-REQ (bind)
//!                            AP-REP: subkey, seq <- (bind_ack)
//! step(Some(ap_rep)) -> AP-REP of the client (auth3): Complete
//! ```
//!
//! At integrity a fragment carries a MIC token over the whole PDU (header to sec_trailer,
//! 28 bytes with AES). At privacy the stub is encrypted in place and `auth_value` holds the
//! wrap token's header and the rest of its body rotated into it (76 bytes with AES): the
//! token header, the encrypted header copy, the checksum and the encrypted confounder; the PDU
//! around the stub is signed only.
//!
//! [MS-KILE §3.4.5]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-kile/
//! [RFC 4121 §4.2]: https://www.rfc-editor.org/rfc/rfc4121#section-4.2

use core::ops::Range;

use dsbackup_proto::{
    AuthStep, AuthType, BatchError, ProtectedFragment, Protection, SecurityError, SecurityProvider,
    one_by_one,
};

use zeroize::{Zeroize, Zeroizing};

use crate::crypto::{EncType, HMAC_SHA1_96, Key, SealMessage, TokenKey};
use crate::der::KerberosTime;
use crate::exchange::Credential;
use crate::gss_rc4;
use crate::messages::{
    ApRep, ApReq, Authenticator, Checksum, EncApRepPart, EncryptedData, EncryptionKey, ap_options,
    usage,
};

/// The Kerberos 5 mechanism OID, 1.2.840.113554.1.2.2, DER-encoded.
const KRB5_OID: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02,
];

/// GSS flags of the authenticator checksum ([RFC 4121 §4.1.1.1], [MS-KILE] for DCE style).
///
/// [RFC 4121 §4.1.1.1]: https://www.rfc-editor.org/rfc/rfc4121#section-4.1.1.1
/// [MS-KILE]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-kile/
pub(crate) mod gss_flags {
    pub(super) const MUTUAL: u32 = 0x02;
    pub(super) const REPLAY: u32 = 0x04;
    pub(super) const SEQUENCE: u32 = 0x08;
    pub(super) const CONF: u32 = 0x10;
    pub(super) const INTEG: u32 = 0x20;
    pub(crate) const DCE_STYLE: u32 = 0x1000;
}

/// Token flags ([RFC 4121 §4.2.2]).
///
/// [RFC 4121 §4.2.2]: https://www.rfc-editor.org/rfc/rfc4121#section-4.2.2
pub(crate) const SENT_BY_ACCEPTOR: u8 = 0x01;
const SEALED: u8 = 0x02;
pub(crate) const ACCEPTOR_SUBKEY: u8 = 0x04;

const TOKEN_HEADER: usize = 16;
/// Right rotation of a DCE-style wrap token: the encrypted header copy and the checksum move
/// in front of the encrypted confounder ([MS-KILE §3.4.5.4.1]).
const DCE_RRC: usize = TOKEN_HEADER + HMAC_SHA1_96;
/// Filler bytes of a DCE-style wrap token (one AES block).
const DCE_EC: usize = 16;
/// `auth_value` of a sealed fragment: header, encrypted filler and header copy, checksum,
/// encrypted confounder.
const WRAP_LEN: usize = TOKEN_HEADER + DCE_EC + TOKEN_HEADER + HMAC_SHA1_96 + 16;
/// `auth_value` of a signed fragment: MIC header and checksum.
const MIC_LEN: usize = TOKEN_HEADER + HMAC_SHA1_96;

/// Wraps an AP-REQ in the InitialContextToken framing of [RFC 2743 §3.1].
///
/// [RFC 2743 §3.1]: https://www.rfc-editor.org/rfc/rfc2743#section-3.1
pub fn initial_context_token(tok_id: [u8; 2], message: &[u8]) -> Vec<u8> {
    let mut inner = Vec::with_capacity(KRB5_OID.len() + 2 + message.len());
    inner.extend_from_slice(KRB5_OID);
    inner.extend_from_slice(&tok_id);
    inner.extend_from_slice(message);
    crate::der::element(0x60, &inner)
}

/// The Kerberos message inside a GSS token: unwraps the framing when present (an AP-REP of
/// DCE style comes without it).
pub(crate) fn strip_framing(token: &[u8]) -> Result<&[u8], SecurityError> {
    if token.first() != Some(&0x60) {
        return Ok(token);
    }
    let mut r = crate::der::Reader::new(token, "GSS token");
    let inner = r.expect(0x60).map_err(malformed)?;
    let rest = inner
        .strip_prefix(KRB5_OID)
        .ok_or(SecurityError::Malformed {
            message: "GSS token",
            reason: "not the Kerberos 5 mechanism",
        })?;
    rest.get(2..).ok_or(SecurityError::Malformed {
        message: "GSS token",
        reason: "truncated",
    })
}

fn malformed(e: crate::error::DecodeError) -> SecurityError {
    SecurityError::Malformed {
        message: e.what,
        reason: e.reason,
    }
}

/// Where fresh confounders come from (a CSPRNG, in the driver).
pub type Confounders = Box<dyn FnMut() -> [u8; 16] + Send>;

/// The caller's inputs of an initiator: time and randomness.
pub struct InitiatorInputs {
    /// Now.
    pub now: KerberosTime,
    /// Microseconds of `now`.
    pub usec: u32,
    /// The initiator's first sequence number (random).
    pub seq: u32,
    /// Subkey material (random; the first bytes make the subkey).
    pub subkey: [u8; 32],
    /// A fresh random confounder per encryption (handshake and sealed fragments).
    pub confounders: Confounders,
}

impl core::fmt::Debug for InitiatorInputs {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("InitiatorInputs")
            .field("now", &self.now)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
enum State {
    Initial,
    SentApReq,
    Established,
    Failed,
}

/// The client side of Kerberos for DCE/RPC.
#[derive(Debug)]
pub struct KerberosInitiator {
    credential: Credential,
    protection: Protection,
    inputs: InitiatorInputs,
    state: State,
    ctime: KerberosTime,
    cusec: u32,
    /// The key of the per-message tokens, and whether it is the acceptor's subkey.
    token_key: Option<(TokenKey, bool)>,
    send_seq: u64,
    recv_seq: u64,
    /// Whether tokens cover the whole fragment (header signing) or the stub alone.
    header_signing: bool,
}

impl KerberosInitiator {
    /// An initiator presenting `credential` (a service ticket for the server's SPN) that will
    /// protect fragments at `protection`.
    pub fn new(credential: Credential, protection: Protection, inputs: InitiatorInputs) -> Self {
        Self {
            ctime: inputs.now,
            cusec: inputs.usec,
            credential,
            protection,
            state: State::Initial,
            token_key: None,
            send_seq: u64::from(inputs.seq),
            recv_seq: 0,
            header_signing: true,
            inputs,
        }
    }

    fn confounder(&mut self) -> [u8; 16] {
        (self.inputs.confounders)()
    }

    fn ap_req(&mut self) -> Vec<u8> {
        let session = self.credential.session_key.clone();
        let etype = session.etype();
        let subkey_len = etype.key_len().unwrap_or(16);
        let subkey = EncryptionKey {
            keytype: etype,
            value: Zeroizing::new(
                self.inputs
                    .subkey
                    .get(..subkey_len)
                    .unwrap_or_default()
                    .to_vec(),
            ),
        };
        // Ask for what the level needs and no more: an acceptor sizes its signatures by the
        // flags (Samba expects a 60-byte wrap token on every fragment once CONF was asked
        // for, even at packet integrity).
        let protection_flags = match self.protection {
            Protection::Privacy => gss_flags::CONF | gss_flags::INTEG,
            Protection::Integrity => gss_flags::INTEG,
            Protection::None => 0,
        };
        let flags = gss_flags::MUTUAL
            | gss_flags::REPLAY
            | gss_flags::SEQUENCE
            | protection_flags
            | gss_flags::DCE_STYLE;
        // Lgth (16), Bnd (no channel bindings: zeros), Flags; little-endian.
        let mut cksum = Vec::with_capacity(24);
        cksum.extend_from_slice(&16u32.to_le_bytes());
        cksum.extend_from_slice(&[0; 16]);
        cksum.extend_from_slice(&flags.to_le_bytes());
        let authenticator = Authenticator {
            crealm: self.credential.crealm.clone(),
            cname: self.credential.client.clone(),
            cksum: Some(Checksum {
                cksumtype: 0x8003,
                value: cksum,
            }),
            cusec: self.cusec,
            ctime: self.ctime,
            subkey: Some(subkey),
            seq_number: u32::try_from(self.send_seq).ok(),
        };
        let confounder = self.confounder();
        let ap_req = ApReq {
            ap_options: ap_options::MUTUAL_REQUIRED,
            ticket: self.credential.ticket.clone(),
            authenticator: EncryptedData {
                etype,
                kvno: None,
                cipher: session.encrypt(
                    usage::AP_REQ_AUTHENTICATOR,
                    &confounder,
                    &authenticator.encode(),
                ),
            },
        };
        initial_context_token([0x01, 0x00], &ap_req.encode())
    }

    fn handle_ap_rep(&mut self, token: &[u8]) -> Result<Vec<u8>, SecurityError> {
        let message = strip_framing(token)?;
        let ap_rep = ApRep::decode(message).map_err(malformed)?;
        let session = self.credential.session_key.clone();
        let plain = session
            .decrypt(usage::AP_REP, &ap_rep.enc_part.cipher)
            .map_err(|_| {
                SecurityError::LogonFailure("the AP-REP does not decrypt with the session key")
            })?;
        let part = EncApRepPart::decode(&plain).map_err(malformed)?;
        if part.ctime != self.ctime || part.cusec != self.cusec {
            return Err(SecurityError::LogonFailure(
                "the AP-REP does not answer our authenticator",
            ));
        }
        let server_seq = part.seq_number.unwrap_or(0);
        self.recv_seq = u64::from(server_seq);
        let (key, acceptor_subkey) = match &part.subkey {
            Some(k) => (
                Key::new(k.keytype, &k.value)
                    .map_err(|_| SecurityError::Unsupported("the acceptor's subkey type"))?,
                true,
            ),
            None => {
                let etype = session.etype();
                let len = etype.key_len().unwrap_or(16);
                (
                    Key::new(etype, self.inputs.subkey.get(..len).unwrap_or_default())
                        .map_err(|_| SecurityError::Unsupported("subkey"))?,
                    false,
                )
            }
        };
        let usages = [usage::INITIATOR_SEAL, usage::ACCEPTOR_SEAL];
        self.token_key = Some((TokenKey::new(key, &usages), acceptor_subkey));
        // DCE style: the client answers with an AP-REP of its own, echoing the time and
        // carrying the acceptor's sequence number ([MS-KILE §3.4.5.1]).
        let reply = EncApRepPart {
            ctime: self.ctime,
            cusec: self.cusec,
            subkey: None,
            seq_number: Some(server_seq),
        };
        let confounder = self.confounder();
        let ap_rep = ApRep {
            enc_part: EncryptedData {
                etype: session.etype(),
                kvno: None,
                cipher: session.encrypt(usage::AP_REP, &confounder, &reply.encode()),
            },
        };
        Ok(ap_rep.encode())
    }

    /// A MIC token over `data` (GSS_GetMIC), taking the next sequence number of our
    /// direction: what SPNEGO's mechanism list MIC is.
    pub(crate) fn get_mic(&mut self, data: &[u8]) -> Result<Vec<u8>, SecurityError> {
        let seq = self.send_seq;
        let (key, flags) = self.key()?;
        let mic = make_mic(key.key(), usage::INITIATOR_SIGN, flags, seq, &[data]);
        self.send_seq = self.send_seq.wrapping_add(1) & 0xffff_ffff;
        Ok(mic)
    }

    /// Checks the acceptor's MIC token over `data` (GSS_VerifyMIC), which takes the next
    /// sequence number of its direction.
    pub(crate) fn verify_peer_mic(
        &mut self,
        data: &[u8],
        token: &[u8],
    ) -> Result<(), SecurityError> {
        let (key, flags) = self.key()?;
        let seq = verify_mic(
            key.key(),
            usage::ACCEPTOR_SIGN,
            flags | SENT_BY_ACCEPTOR,
            token,
            &[data],
        )?;
        if seq != self.recv_seq {
            return Err(SecurityError::BadSignature);
        }
        self.recv_seq = self.recv_seq.wrapping_add(1) & 0xffff_ffff;
        Ok(())
    }

    fn token_etype(&self) -> Option<EncType> {
        self.token_key.as_ref().map(|(key, _)| key.key().etype())
    }

    fn key(&self) -> Result<(&TokenKey, u8), SecurityError> {
        let (key, acceptor_subkey) = self
            .token_key
            .as_ref()
            .ok_or(SecurityError::WrongState("is not established"))?;
        Ok((key, if *acceptor_subkey { ACCEPTOR_SUBKEY } else { 0 }))
    }
}

/// The 16-byte token header of [RFC 4121 §4.2.6].
///
/// [RFC 4121 §4.2.6]: https://www.rfc-editor.org/rfc/rfc4121#section-4.2.6
fn token_header(tok_id: [u8; 2], flags: u8, ec: u16, rrc: u16, seq: u64) -> [u8; TOKEN_HEADER] {
    let [a, b] = tok_id;
    let [ec0, ec1] = ec.to_be_bytes();
    let [r0, r1] = rrc.to_be_bytes();
    let [s0, s1, s2, s3, s4, s5, s6, s7] = seq.to_be_bytes();
    [
        a, b, flags, 0xff, ec0, ec1, r0, r1, s0, s1, s2, s3, s4, s5, s6, s7,
    ]
}

/// A MIC token over `parts`.
pub(crate) fn make_mic(key: &Key, key_usage: u32, flags: u8, seq: u64, parts: &[&[u8]]) -> Vec<u8> {
    let header = token_header([0x04, 0x04], flags, 0xffff, 0xffff, seq);
    let mut all: Vec<&[u8]> = parts.to_vec();
    all.push(&header);
    let mut out = header.to_vec();
    out.extend_from_slice(&key.checksum(key_usage, &all));
    out
}

/// Checks a MIC token; returns its sequence number.
pub(crate) fn verify_mic(
    key: &Key,
    key_usage: u32,
    flags: u8,
    token: &[u8],
    parts: &[&[u8]],
) -> Result<u64, SecurityError> {
    let (header, checksum) = token
        .split_at_checked(TOKEN_HEADER)
        .ok_or(SecurityError::BadSignature)?;
    let seq = check_header(header, [0x04, 0x04], flags)?;
    if header.get(4..8) != Some(&[0xff; 4][..]) {
        return Err(SecurityError::BadSignature);
    }
    let mut all: Vec<&[u8]> = parts.to_vec();
    all.push(header);
    key.verify_checksum(key_usage, &all, checksum)
        .map_err(|_| SecurityError::BadSignature)?;
    Ok(seq)
}

/// Checks TOK_ID and flags of a received token header; returns its sequence number.
fn check_header(header: &[u8], tok_id: [u8; 2], flags: u8) -> Result<u64, SecurityError> {
    if header.get(..2) != Some(&tok_id[..])
        || header.get(2) != Some(&flags)
        || header.get(3) != Some(&0xff)
    {
        return Err(SecurityError::BadSignature);
    }
    let seq: [u8; 8] = header
        .get(8..16)
        .and_then(|s| s.try_into().ok())
        .ok_or(SecurityError::BadSignature)?;
    Ok(u64::from_be_bytes(seq))
}

/// Seals `pdu[stub]` in place and writes the DCE-style wrap token into `signature`:
/// `header | E(filler | header copy) | checksum | E(confounder)`, with EC = 16 filler bytes
/// (0xff) and RRC = 28, the layout Windows and Samba (Heimdal) use.
pub(crate) fn seal_dce(
    key: &TokenKey,
    (key_usage, flags, seq): (u32, u8, u64),
    confounder: &[u8; 16],
    pdu: &mut [u8],
    stub: Range<usize>,
    signature: &mut [u8],
) -> Result<(), SecurityError> {
    let (message, mac) = dce_message((flags, seq), confounder, pdu, stub, signature)?;
    let ([conf, data, tail], signed) = message;
    let checksum = key
        .aes_seal(key_usage, [conf, data, tail], signed)
        .map_err(|_| SecurityError::WrongState("the token key is not an AES key"))?;
    mac.copy_from_slice(&checksum);
    Ok(())
}

/// [`seal_dce`] of several fragments, `(pdu, stub, signature)` each, with sequence numbers
/// from `first_seq` up and `confounders[i]` for the i-th: the same bytes, the encryptions side
/// by side ([`TokenKey::aes_seal_many`]). Each fragment is checked before any is sealed: on
/// an error, none is, and the error names the first fragment that cannot be.
pub(crate) fn seal_dce_many(
    key: &TokenKey,
    (key_usage, flags, first_seq): (u32, u8, u64),
    confounders: &[[u8; 16]],
    fragments: Vec<(&mut [u8], Range<usize>, &mut [u8])>,
) -> Result<(), (usize, SecurityError)> {
    let mut messages = Vec::with_capacity(fragments.len());
    let mut macs = Vec::with_capacity(fragments.len());
    for (index, ((pdu, stub, signature), confounder)) in
        fragments.into_iter().zip(confounders).enumerate()
    {
        let seq = first_seq.wrapping_add(u64::try_from(index).unwrap_or(0)) & 0xffff_ffff;
        let (message, mac) = dce_message((flags, seq), confounder, pdu, stub, signature)
            .map_err(|error| (index, error))?;
        messages.push(message);
        macs.push(mac);
    }
    let checksums = key.aes_seal_many(key_usage, &mut messages).map_err(|_| {
        (
            0,
            SecurityError::WrongState("the token key is not an AES key"),
        )
    })?;
    for (mac, checksum) in macs.into_iter().zip(checksums) {
        mac.copy_from_slice(&checksum);
    }
    Ok(())
}

/// A batch of a context at privacy with an AES key: [`seal_dce_many`] over `fragments`
/// (each token covering what `header_signing` says), `confounders[i]` and sequence number
/// `first_seq + i` for the i-th. Returns how many were sealed: all of them, or, on an error,
/// those before the fragment it names.
pub(crate) fn seal_batch(
    key: &TokenKey,
    (seal_usage, flags, first_seq): (u32, u8, u64),
    confounders: &[[u8; 16]],
    header_signing: bool,
    fragments: &mut [ProtectedFragment<'_>],
) -> (usize, Result<(), BatchError>) {
    fn attempt(
        key: &TokenKey,
        params: (u32, u8, u64),
        confounders: &[[u8; 16]],
        header_signing: bool,
        fragments: &mut [ProtectedFragment<'_>],
    ) -> Result<(), (usize, SecurityError)> {
        let mut parts = Vec::with_capacity(fragments.len());
        for (index, fragment) in fragments.iter_mut().enumerate() {
            let (pdu, stub) = covered(&mut *fragment.pdu, fragment.stub.clone(), header_signing)
                .map_err(|error| (index, error))?;
            parts.push((pdu, stub, &mut *fragment.signature));
        }
        seal_dce_many(key, params, confounders, parts)
    }
    let params = (seal_usage, flags, first_seq);
    match attempt(key, params, confounders, header_signing, fragments) {
        Ok(()) => (fragments.len(), Ok(())),
        Err((index, error)) => {
            // The fragments before it pass the same checks: sealed now, as the batch promises.
            let before = fragments.get_mut(..index).unwrap_or_default();
            let done =
                attempt(key, params, confounders, header_signing, before).map_or(0, |()| index);
            (done, Err(BatchError { index: done, error }))
        }
    }
}

/// What [`seal_dce`] hands the cipher for one fragment: the token's header written into
/// `signature`, and the pieces of the message, `([confounder, stub, filler | header copy],
/// [bytes before the stub, bytes after it])`, with the checksum's place in the token.
fn dce_message<'a>(
    (flags, seq): (u8, u64),
    confounder: &[u8; 16],
    pdu: &'a mut [u8],
    stub: Range<usize>,
    signature: &'a mut [u8],
) -> Result<(SealMessage<'a>, &'a mut [u8]), SecurityError> {
    let flags = flags | SEALED;
    let ec = u16::try_from(DCE_EC).unwrap_or(0);
    let rrc = u16::try_from(DCE_RRC).unwrap_or(0);
    let header = token_header([0x05, 0x04], flags, ec, rrc, seq);
    let (before, rest) = pdu
        .split_at_mut_checked(stub.start)
        .ok_or(SecurityError::WrongState("stub range outside the fragment"))?;
    let (data, after) = rest
        .split_at_mut_checked(stub.len())
        .ok_or(SecurityError::WrongState("stub range outside the fragment"))?;
    let sig = signature
        .get_mut(..WRAP_LEN)
        .ok_or(SecurityError::WrongState("signature buffer too short"))?;
    let (h, rest) = sig.split_at_mut(TOKEN_HEADER);
    h.copy_from_slice(&header);
    // The filler and the header copy are sealed where they go, after the confounder
    // (RRC = 28 rotates the checksum and the confounder in front of them on the wire).
    let (tail, rest) = rest.split_at_mut(DCE_EC + TOKEN_HEADER);
    let (filler, copy) = tail.split_at_mut(DCE_EC);
    filler.fill(0xff);
    copy.copy_from_slice(&token_header([0x05, 0x04], flags, ec, 0, seq));
    let (mac, conf) = rest.split_at_mut(HMAC_SHA1_96);
    conf.copy_from_slice(confounder);
    // The stub is sealed in place: E(confounder) | E(stub) | E(filler | header copy) is one
    // CTS stream, which keeps each part's length.
    Ok((([conf, data, tail], [&*before, &*after]), mac))
}

/// Checks a DCE-style wrap token and decrypts `pdu[stub]` in place; returns its sequence
/// number. Any EC is accepted when the token's length agrees with it.
pub(crate) fn unseal_dce(
    key: &TokenKey,
    key_usage: u32,
    flags: u8,
    pdu: &mut [u8],
    stub: Range<usize>,
    signature: &[u8],
) -> Result<u64, SecurityError> {
    let (header, rest) = signature
        .split_at_checked(TOKEN_HEADER)
        .ok_or(SecurityError::BadSignature)?;
    let seq = check_header(header, [0x05, 0x04], flags | SEALED)?;
    let field = |i: usize| -> usize {
        usize::from(u16::from_be_bytes([
            header.get(i).copied().unwrap_or(0),
            header.get(i + 1).copied().unwrap_or(0),
        ]))
    };
    let (ec, rrc) = (field(4), field(6));
    if rrc != DCE_RRC || rest.len() != ec + TOKEN_HEADER + HMAC_SHA1_96 + 16 {
        return Err(SecurityError::BadSignature);
    }
    let (enc_tail, rest) = rest.split_at(ec + TOKEN_HEADER);
    let (mac, conf) = rest.split_at(HMAC_SHA1_96);
    let (before, rest) = pdu.split_at_mut(stub.start);
    let (data, after) = rest
        .split_at_mut_checked(stub.len())
        .ok_or(SecurityError::BadSignature)?;
    let mut conf = <[u8; 16]>::try_from(conf).map_err(|_| SecurityError::BadSignature)?;
    let mut tail = Zeroizing::new(enc_tail.to_vec());
    key.aes_open(
        key_usage,
        [&mut conf, data, &mut tail],
        [before, after],
        mac,
    )
    .map_err(|_| SecurityError::BadSignature)?;
    conf.zeroize();
    // The header copy must repeat the header; its RRC is not compared (RFC 4121 has it 0,
    // implementations differ).
    let copy = tail.get(ec..).unwrap_or_default();
    let same = copy.len() == TOKEN_HEADER
        && copy.get(..6) == header.get(..6)
        && copy.get(8..) == header.get(8..);
    if !same {
        data.zeroize();
        return Err(SecurityError::BadSignature);
    }
    Ok(seq)
}

impl SecurityProvider for KerberosInitiator {
    fn auth_type(&self) -> AuthType {
        AuthType::GSS_KERBEROS
    }

    fn step(&mut self, peer_token: Option<&[u8]>) -> Result<AuthStep, SecurityError> {
        match (&self.state, peer_token) {
            (State::Initial, None) => {
                self.state = State::SentApReq;
                Ok(AuthStep::Continue(self.ap_req()))
            }
            (State::SentApReq, Some(token)) => match self.handle_ap_rep(token) {
                Ok(reply) => {
                    self.state = State::Established;
                    Ok(AuthStep::Complete(Some(reply)))
                }
                Err(e) => {
                    self.state = State::Failed;
                    Err(e)
                }
            },
            _ => Err(SecurityError::WrongState("does not expect a token now")),
        }
    }

    fn is_established(&self) -> bool {
        matches!(self.state, State::Established)
    }

    fn signature_len(&self) -> usize {
        signature_len(self.protection, self.token_etype())
    }

    fn header_signing(&mut self, on: bool) {
        self.header_signing = on;
    }

    fn accepts_signature_len(&self, len: usize) -> bool {
        accepts_signature_len(self.protection, self.token_etype(), len)
    }

    fn wrap(
        &mut self,
        protection: Protection,
        pdu: &mut [u8],
        stub: Range<usize>,
        signature: &mut [u8],
    ) -> Result<(), SecurityError> {
        let seq = self.send_seq;
        let confounder = self.confounder();
        let (key, flags) = self.key()?;
        let params = (usage::INITIATOR_SEAL, usage::INITIATOR_SIGN, flags, seq);
        protect(
            key,
            params,
            &confounder,
            (protection, self.header_signing),
            pdu,
            stub,
            signature,
        )?;
        self.send_seq = self.send_seq.wrapping_add(1) & 0xffff_ffff;
        Ok(())
    }

    /// At privacy with an AES key, the fragments' encryptions side by side
    /// (`seal_batch`); otherwise one [`wrap`](Self::wrap) at a time.
    fn wrap_batch(
        &mut self,
        protection: Protection,
        fragments: &mut [ProtectedFragment<'_>],
    ) -> Result<(), BatchError> {
        if protection != Protection::Privacy
            || fragments.len() < 2
            || self.token_etype() == Some(EncType::RC4_HMAC)
        {
            return one_by_one(fragments, |f| {
                self.wrap(protection, f.pdu, f.stub.clone(), f.signature)
            });
        }
        let confounders: Vec<[u8; 16]> = fragments.iter().map(|_| self.confounder()).collect();
        let (key, flags) = self.key().map_err(|error| BatchError { index: 0, error })?;
        let params = (usage::INITIATOR_SEAL, flags, self.send_seq);
        let (sealed, result) =
            seal_batch(key, params, &confounders, self.header_signing, fragments);
        self.send_seq = self
            .send_seq
            .wrapping_add(u64::try_from(sealed).unwrap_or(0))
            & 0xffff_ffff;
        result
    }

    fn unwrap(
        &mut self,
        protection: Protection,
        pdu: &mut [u8],
        stub: Range<usize>,
        signature: &[u8],
    ) -> Result<(), SecurityError> {
        let (key, flags) = self.key()?;
        let params = (
            usage::ACCEPTOR_SEAL,
            usage::ACCEPTOR_SIGN,
            flags | SENT_BY_ACCEPTOR,
        );
        let seq = check(
            key,
            params,
            (protection, self.header_signing),
            pdu,
            stub,
            signature,
        )?;
        if seq != self.recv_seq {
            return Err(SecurityError::BadSignature);
        }
        self.recv_seq = self.recv_seq.wrapping_add(1) & 0xffff_ffff;
        Ok(())
    }
}

/// Length of `auth_value` in a fragment protected at `protection` with a key of `etype`
/// (RC4-HMAC's tokens are RFC 4757's; the others RFC 4121's).
pub(crate) fn signature_len(protection: Protection, etype: Option<EncType>) -> usize {
    match (protection, etype == Some(EncType::RC4_HMAC)) {
        (Protection::Privacy, false) => WRAP_LEN,
        (_, false) => MIC_LEN,
        (Protection::Privacy, true) => gss_rc4::WRAP_LEN,
        (_, true) => gss_rc4::MIC_LEN,
    }
}

/// Whether a received `auth_value` of `len` bytes can be a token at `protection`: a MIC token,
/// or a wrap token with 0 to 16 filler bytes (Windows and Samba send 16; impacket fills the
/// stub up to 16 bytes and sends what that took, 0 to 15); RC4-HMAC's have one length each.
pub(crate) fn accepts_signature_len(
    protection: Protection,
    etype: Option<EncType>,
    len: usize,
) -> bool {
    match (protection, etype == Some(EncType::RC4_HMAC)) {
        (Protection::Privacy, false) => (WRAP_LEN - DCE_EC..=WRAP_LEN).contains(&len),
        _ => len == signature_len(protection, etype),
    }
}

/// The part of a fragment its token covers: the whole fragment when header signing is in force
/// ([MS-RPCE §3.3.1.5.2.2]: both sides set `PFC_SUPPORT_HEADER_SIGN`), the stub and its
/// padding alone otherwise (as impacket, which never asks for header signing, and Samba
/// without it protect).
///
/// [MS-RPCE §3.3.1.5.2.2]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
fn covered(
    pdu: &mut [u8],
    stub: Range<usize>,
    header_signing: bool,
) -> Result<(&mut [u8], Range<usize>), SecurityError> {
    if header_signing {
        return Ok((pdu, stub));
    }
    let len = stub.len();
    let stub = pdu
        .get_mut(stub)
        .ok_or(SecurityError::WrongState("stub range outside the fragment"))?;
    Ok((stub, 0..len))
}

/// Protects one outgoing fragment: a wrap token at privacy (the stub sealed in place), a MIC
/// token otherwise. `params`: seal usage, sign usage, token flags, sequence number.
/// `(protection, header_signing)`: the level, and whether the token covers the whole fragment.
pub(crate) fn protect(
    token_key: &TokenKey,
    (seal_usage, sign_usage, flags, seq): (u32, u32, u8, u64),
    confounder: &[u8; 16],
    (protection, header_signing): (Protection, bool),
    pdu: &mut [u8],
    stub: Range<usize>,
    signature: &mut [u8],
) -> Result<(), SecurityError> {
    let key = token_key.key();
    let (pdu, stub) = covered(pdu, stub, header_signing)?;
    if key.etype() == EncType::RC4_HMAC {
        let mut short = [0u8; 8];
        short.copy_from_slice(&confounder[..8]);
        let sender = (
            flags & SENT_BY_ACCEPTOR != 0,
            u32::try_from(seq & 0xffff_ffff).unwrap_or(0),
        );
        let privacy = protection == Protection::Privacy;
        return gss_rc4::protect(key.as_bytes(), sender, short, privacy, pdu, stub, signature);
    }
    if protection == Protection::Privacy {
        return seal_dce(
            token_key,
            (seal_usage, flags, seq),
            confounder,
            pdu,
            stub,
            signature,
        );
    }
    let mic = make_mic(key, sign_usage, flags, seq, &[pdu]);
    signature
        .get_mut(..mic.len())
        .ok_or(SecurityError::WrongState("signature buffer too short"))?
        .copy_from_slice(&mic);
    Ok(())
}

/// Checks one incoming fragment (the mirror of [`protect`]); returns the token's sequence
/// number. `params`: seal usage, sign usage, expected token flags.
pub(crate) fn check(
    token_key: &TokenKey,
    (seal_usage, sign_usage, flags): (u32, u32, u8),
    (protection, header_signing): (Protection, bool),
    pdu: &mut [u8],
    stub: Range<usize>,
    signature: &[u8],
) -> Result<u64, SecurityError> {
    let key = token_key.key();
    let (pdu, stub) =
        covered(pdu, stub, header_signing).map_err(|_| SecurityError::BadSignature)?;
    if key.etype() == EncType::RC4_HMAC {
        let privacy = protection == Protection::Privacy;
        let acceptor = flags & SENT_BY_ACCEPTOR != 0;
        return gss_rc4::check(key.as_bytes(), acceptor, privacy, pdu, stub, signature);
    }
    match protection {
        Protection::Privacy => unseal_dce(token_key, seal_usage, flags, pdu, stub, signature),
        _ => verify_mic(key, sign_usage, flags, signature, &[pdu]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        Key::new(EncType::AES256_CTS_HMAC_SHA1_96, &[0x42; 32]).unwrap()
    }

    /// A fragment: 16-byte header, stub, 8-byte sec_trailer.
    fn fragment(stub_len: usize) -> (Vec<u8>, Range<usize>) {
        let pdu: Vec<u8> = (0..16 + stub_len + 8)
            .map(|i| u8::try_from(i % 251).unwrap())
            .collect();
        (pdu, 16..16 + stub_len)
    }

    /// Without header signing the tokens cover the stub alone (impacket's fragments): the
    /// header and sec_trailer may change, the stub may not; with it, nothing may.
    #[test]
    fn without_header_signing_tokens_cover_the_stub_alone() {
        let key = key();
        let params = (
            usage::INITIATOR_SEAL,
            usage::INITIATOR_SIGN,
            ACCEPTOR_SUBKEY,
            3,
        );
        let expect = (
            usage::INITIATOR_SEAL,
            usage::INITIATOR_SIGN,
            ACCEPTOR_SUBKEY,
        );
        for protection in [Protection::Integrity, Protection::Privacy] {
            for header_signing in [false, true] {
                let coverage = (protection, header_signing);
                let (clear, stub) = fragment(40);
                let mut pdu = clear.clone();
                let mut sig = vec![0u8; signature_len(protection, None)];
                protect(
                    &TokenKey::from(key.clone()),
                    params,
                    &[9; 16],
                    coverage,
                    &mut pdu,
                    stub.clone(),
                    &mut sig,
                )
                .unwrap();
                for (at, covered) in [(3, header_signing), (20, true), (60, header_signing)] {
                    let mut changed = pdu.clone();
                    changed[at] ^= 1;
                    let verdict = check(
                        &TokenKey::from(key.clone()),
                        expect,
                        coverage,
                        &mut changed,
                        stub.clone(),
                        &sig,
                    );
                    assert_eq!(
                        verdict.is_err(),
                        covered,
                        "{protection:?}, header signing {header_signing}, byte {at}"
                    );
                }
                let mut opened = pdu.clone();
                check(
                    &TokenKey::from(key.clone()),
                    expect,
                    coverage,
                    &mut opened,
                    stub.clone(),
                    &sig,
                )
                .unwrap();
                assert_eq!(opened, clear);
            }
        }
        let aes = Some(EncType::AES256_CTS_HMAC_SHA1_96);
        let rc4 = Some(EncType::RC4_HMAC);
        assert!(accepts_signature_len(
            Protection::Privacy,
            aes,
            WRAP_LEN - 16
        ));
        assert!(accepts_signature_len(Protection::Privacy, aes, WRAP_LEN));
        assert!(!accepts_signature_len(
            Protection::Privacy,
            aes,
            WRAP_LEN + 1
        ));
        assert!(!accepts_signature_len(Protection::Integrity, aes, WRAP_LEN));
        assert!(accepts_signature_len(Protection::Privacy, rc4, 45));
        assert!(!accepts_signature_len(Protection::Privacy, rc4, WRAP_LEN));
        assert!(accepts_signature_len(Protection::Integrity, rc4, 37));
    }

    /// Tokens impacket 0.13.1's `gssapi.py` made (fixtures/PROVENANCE.md): a wrap token with
    /// EC 8 (impacket fills the stub up to 16 bytes) and RRC 28, and a MIC token, each over a
    /// 40-byte stub with sequence number 5, under the keys 00 01 02 ...: we open and verify
    /// them, and refuse them with any byte changed.
    #[test]
    fn impacket_tokens_open_and_verify() {
        let stub: Vec<u8> = (0u8..40)
            .map(|i| i.wrapping_mul(7).wrapping_add(3))
            .collect();
        /// Encryption type, key length, wrap token, sealed stub, MIC token.
        type Case = (EncType, usize, &'static [u8], &'static [u8], &'static [u8]);
        let cases: [Case; 2] = [
            (
                EncType::AES256_CTS_HMAC_SHA1_96,
                32,
                include_bytes!("../../../fixtures/krb/impacket-wrap-aes256.token"),
                include_bytes!("../../../fixtures/krb/impacket-wrap-aes256.stub"),
                include_bytes!("../../../fixtures/krb/impacket-mic-aes256.token"),
            ),
            (
                EncType::AES128_CTS_HMAC_SHA1_96,
                16,
                include_bytes!("../../../fixtures/krb/impacket-wrap-aes128.token"),
                include_bytes!("../../../fixtures/krb/impacket-wrap-aes128.stub"),
                include_bytes!("../../../fixtures/krb/impacket-mic-aes128.token"),
            ),
        ];
        for (etype, len, wrap, sealed, mic) in cases {
            let bytes: Vec<u8> = (0..len).map(|i| u8::try_from(i).unwrap()).collect();
            let key = Key::new(etype, &bytes).unwrap();
            // TOK_ID 05 04, flags sealed | acceptor subkey, filler, EC 8, RRC 28, seq 5.
            assert_eq!(&wrap[..8], &[0x05, 0x04, 0x06, 0xff, 0, 8, 0, 28]);
            assert_eq!(&wrap[8..16], &5u64.to_be_bytes());
            let open = |token: &[u8], sealed: &[u8]| {
                let mut data = sealed.to_vec();
                let range = 0..data.len();
                unseal_dce(
                    &TokenKey::from(key.clone()),
                    usage::INITIATOR_SEAL,
                    ACCEPTOR_SUBKEY,
                    &mut data,
                    range,
                    token,
                )
                .map(|seq| (seq, data))
            };
            assert_eq!(open(wrap, sealed).unwrap(), (5, stub.clone()), "{etype:?}");
            for at in 0..wrap.len() {
                let mut changed = wrap.to_vec();
                changed[at] ^= 0x10;
                assert!(
                    open(&changed, sealed).is_err(),
                    "{etype:?}: token byte {at}"
                );
            }
            let mut changed = sealed.to_vec();
            changed[17] ^= 1;
            assert!(open(wrap, &changed).is_err(), "{etype:?}: a stub byte");

            let verify = |data: &[u8]| {
                verify_mic(&key, usage::INITIATOR_SIGN, ACCEPTOR_SUBKEY, mic, &[data])
            };
            assert_eq!(verify(&stub).unwrap(), 5, "{etype:?}");
            let mut changed = stub.clone();
            changed[0] ^= 1;
            assert!(verify(&changed).is_err(), "{etype:?}: a changed stub");
            // Our own MIC over the same stub and sequence number is byte for byte impacket's.
            let ours = make_mic(&key, usage::INITIATOR_SIGN, ACCEPTOR_SUBKEY, 5, &[&stub]);
            assert_eq!(ours, mic, "{etype:?}");
        }
    }

    #[test]
    fn sealed_fragments_round_trip_and_refuse_any_change() {
        let key = key();
        for stub_len in [0usize, 1, 16, 17, 100, 4096] {
            let (clear, stub) = fragment(stub_len);
            let mut pdu = clear.clone();
            let mut sig = [0u8; WRAP_LEN];
            let params = (usage::INITIATOR_SEAL, ACCEPTOR_SUBKEY, 7);
            seal_dce(
                &TokenKey::from(key.clone()),
                params,
                &[3; 16],
                &mut pdu,
                stub.clone(),
                &mut sig,
            )
            .unwrap();
            assert_eq!(&sig[..8], &[0x05, 0x04, 0x06, 0xff, 0, 16, 0, 28]);
            if stub_len >= 16 {
                assert_ne!(
                    pdu[stub.clone()],
                    clear[stub.clone()],
                    "the stub is encrypted"
                );
            }
            assert_eq!(pdu[..16], clear[..16], "the header stays clear");

            let mut opened = pdu.clone();
            let seq = unseal_dce(
                &TokenKey::from(key.clone()),
                usage::INITIATOR_SEAL,
                ACCEPTOR_SUBKEY,
                &mut opened,
                stub.clone(),
                &sig,
            )
            .unwrap();
            assert_eq!((seq, &opened), (7, &clear));

            // Every byte of the token, of the sealed stub and of the signed-only header matters.
            for i in 0..sig.len() {
                let mut bad = sig;
                bad[i] ^= 0x01;
                let mut copy = pdu.clone();
                assert!(
                    unseal_dce(
                        &TokenKey::from(key.clone()),
                        usage::INITIATOR_SEAL,
                        ACCEPTOR_SUBKEY,
                        &mut copy,
                        stub.clone(),
                        &bad
                    )
                    .is_err(),
                    "token byte {i}"
                );
            }
            for i in [
                0,
                3,
                stub.start,
                stub.end.saturating_sub(1).max(stub.start),
                pdu.len() - 1,
            ] {
                let mut bad = pdu.clone();
                bad[i] ^= 0x80;
                assert!(
                    unseal_dce(
                        &TokenKey::from(key.clone()),
                        usage::INITIATOR_SEAL,
                        ACCEPTOR_SUBKEY,
                        &mut bad,
                        stub.clone(),
                        &sig
                    )
                    .is_err(),
                    "pdu byte {i}"
                );
            }
            // The other direction's usage, or a token claiming the acceptor sent it.
            let mut copy = pdu.clone();
            assert!(
                unseal_dce(
                    &TokenKey::from(key.clone()),
                    usage::ACCEPTOR_SEAL,
                    ACCEPTOR_SUBKEY,
                    &mut copy,
                    stub.clone(),
                    &sig
                )
                .is_err()
            );
            assert!(
                unseal_dce(
                    &TokenKey::from(key.clone()),
                    usage::INITIATOR_SEAL,
                    ACCEPTOR_SUBKEY | SENT_BY_ACCEPTOR,
                    &mut copy,
                    stub.clone(),
                    &sig
                )
                .is_err()
            );
        }
    }

    #[test]
    fn mic_tokens_verify_and_refuse_changes() {
        let key = key();
        let pdu = b"a whole fragment, header to sec_trailer".to_vec();
        let mic = make_mic(&key, usage::ACCEPTOR_SIGN, SENT_BY_ACCEPTOR, 9, &[&pdu]);
        assert_eq!(mic.len(), MIC_LEN);
        assert_eq!(&mic[..8], &[0x04, 0x04, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(
            verify_mic(&key, usage::ACCEPTOR_SIGN, SENT_BY_ACCEPTOR, &mic, &[&pdu]),
            Ok(9)
        );
        let mut other = pdu.clone();
        other[0] ^= 1;
        assert_eq!(
            verify_mic(
                &key,
                usage::ACCEPTOR_SIGN,
                SENT_BY_ACCEPTOR,
                &mic,
                &[&other]
            ),
            Err(SecurityError::BadSignature)
        );
        assert!(verify_mic(&key, usage::INITIATOR_SIGN, SENT_BY_ACCEPTOR, &mic, &[&pdu]).is_err());
        assert!(verify_mic(&key, usage::ACCEPTOR_SIGN, 0, &mic, &[&pdu]).is_err());
    }

    #[test]
    fn gss_framing_round_trips() {
        let token = initial_context_token([1, 0], b"\x6e\x00");
        assert_eq!(&token[..2], &[0x60, 13 + 2]);
        assert_eq!(strip_framing(&token).unwrap(), b"\x6e\x00");
        assert_eq!(strip_framing(b"\x6f\x00").unwrap(), b"\x6f\x00");
        assert!(strip_framing(&[0x60, 0x02, 0x06, 0x01]).is_err());
    }
}
