//! The client side: NEGOTIATE out, CHALLENGE in, AUTHENTICATE out ([MS-NLMP §3.1.5.1]).
//!
//! [MS-NLMP §3.1.5.1]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/c0250a97-2940-40c7-82fb-20d208c71e96

use core::fmt;
use core::ops::Range;

use dsbackup_proto::{
    AuthStep, AuthType, BatchError, ProtectedFragment, Protection, SecurityError, SecurityProvider,
};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::{self, Key, NtHash};
use crate::error::NtlmError;
use crate::flags::NegotiateFlags;
use crate::messages::{
    AuthenticateMessage, AvFlags, AvId, AvPairs, ChallengeMessage, NegotiateMessage, Version,
    encode_string,
};
use crate::session::{
    Role, SIGNATURE_LEN, SessionSecurity, unwrap, unwrap_batch, wrap, wrap_batch,
};

/// Who the initiator authenticates as.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Credentials {
    user: String,
    domain: String,
    #[zeroize(skip)]
    nt_hash: Option<NtHash>,
}

impl Credentials {
    /// A user of a domain, with their password (only its NT hash is kept).
    pub fn from_password(user: &str, domain: &str, password: &str) -> Self {
        Self::from_nt_hash(user, domain, NtHash::from_password(password))
    }

    /// A user of a domain, with their NT hash (pass-the-hash, or a hash kept in a vault).
    pub fn from_nt_hash(user: &str, domain: &str, nt_hash: NtHash) -> Self {
        Self {
            user: user.to_owned(),
            domain: domain.to_owned(),
            nt_hash: Some(nt_hash),
        }
    }

    /// The anonymous identity (empty user, no responses): refused by acceptors unless they
    /// allow it.
    pub fn anonymous() -> Self {
        Self {
            user: String::new(),
            domain: String::new(),
            nt_hash: None,
        }
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The domain name.
    pub fn domain(&self) -> &str {
        &self.domain
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("domain", &self.domain)
            .field("nt_hash", &"<redacted>")
            .finish()
    }
}

/// The values an initiator needs from outside: a fresh random client challenge and session key,
/// and the current time (used when the CHALLENGE carries no MsvAvTimestamp).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ClientInputs {
    /// ChallengeFromClient: 8 random bytes.
    pub client_challenge: [u8; 8],
    /// The ExportedSessionKey sent encrypted under key exchange: 16 random bytes.
    pub random_session_key: [u8; 16],
    /// Current time as a FILETIME (100 ns intervals since 1601-01-01 UTC).
    pub timestamp: u64,
}

impl fmt::Debug for ClientInputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientInputs")
            .field("client_challenge", &self.client_challenge)
            .field("random_session_key", &"<redacted>")
            .field("timestamp", &self.timestamp)
            .finish()
    }
}

/// How the initiator presents itself.
#[derive(Clone, Debug)]
pub struct InitiatorConfig {
    /// Who to authenticate as.
    pub credentials: Credentials,
    /// Workstation name sent in the AUTHENTICATE.
    pub workstation: String,
    /// Flags offered in the NEGOTIATE; those the server does not grant are dropped from the
    /// AUTHENTICATE.
    pub flags: NegotiateFlags,
    /// VERSION sent when NEGOTIATE_VERSION is in the flags.
    pub version: Version,
    /// SPN sent as MsvAvTargetName (`host/server.example`), if any.
    pub target_spn: Option<String>,
    /// Flags the server must grant: without one of them the CHALLENGE fails the handshake
    /// with [`NtlmError::NotNegotiated`] rather than leaving a context that protects less than
    /// asked ([`NegotiateFlags::required_for`] the protection of the auth level).
    pub required: NegotiateFlags,
}

impl InitiatorConfig {
    /// Flags a Windows client offers: Unicode, NTLM v2 with extended session security, 128-bit
    /// key exchange, signing and sealing, VERSION.
    pub const DEFAULT_FLAGS: NegotiateFlags = NegotiateFlags::NEGOTIATE_UNICODE
        .union(NegotiateFlags::REQUEST_TARGET)
        .union(NegotiateFlags::NEGOTIATE_SIGN)
        .union(NegotiateFlags::NEGOTIATE_SEAL)
        .union(NegotiateFlags::NEGOTIATE_NTLM)
        .union(NegotiateFlags::NEGOTIATE_ALWAYS_SIGN)
        .union(NegotiateFlags::NEGOTIATE_EXTENDED_SESSIONSECURITY)
        .union(NegotiateFlags::NEGOTIATE_TARGET_INFO)
        .union(NegotiateFlags::NEGOTIATE_VERSION)
        .union(NegotiateFlags::NEGOTIATE_128)
        .union(NegotiateFlags::NEGOTIATE_KEY_EXCH)
        .union(NegotiateFlags::NEGOTIATE_56);

    /// The default configuration for these credentials: [`DEFAULT_FLAGS`](Self::DEFAULT_FLAGS),
    /// which ask for signing and sealing (what packet privacy needs).
    pub fn new(credentials: Credentials) -> Self {
        Self {
            credentials,
            workstation: String::new(),
            flags: Self::DEFAULT_FLAGS,
            version: Version::WINDOWS_10,
            target_spn: None,
            required: NegotiateFlags::empty(),
        }
    }

    /// The configuration of a DCE/RPC client whose fragments carry `protection` (the
    /// [`protection`](dsbackup_proto::AuthLevel::protection) of its authentication level).
    ///
    /// The level decides which capabilities the RPC runtime asks of the security provider
    /// ([MS-RPCE §3.3.1.5.2.2]), and NTLM turns them into flags ([MS-NLMP §3.1.1.2]): integrity
    /// into `NEGOTIATE_SIGN`, confidentiality into `NEGOTIATE_SEAL` as well. So:
    ///
    /// | protection | level | `NEGOTIATE_SIGN` | `NEGOTIATE_SEAL` |
    /// | --- | --- | --- | --- |
    /// | [`Protection::None`] | connect | no | no |
    /// | [`Protection::Integrity`] | packet integrity | yes | no |
    /// | [`Protection::Privacy`] | packet privacy | yes | yes |
    ///
    /// The flags the level needs are also [`required`](Self::required): a server that does not
    /// grant them fails the handshake. The other flags are
    /// [`DEFAULT_FLAGS`](Self::DEFAULT_FLAGS)' (`NEGOTIATE_ALWAYS_SIGN` always, as
    /// [MS-NLMP §3.1.5.1.1] asks). At connect, Samba's own client offers neither
    /// flag too, and a Samba server that granted `NEGOTIATE_SIGN` cannot answer a call at that
    /// level (it faults with `nca_s_fault_other`, see docs/PEERS.md).
    ///
    /// [MS-RPCE §3.3.1.5.2.2]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/6b733b95-3fd9-4ad5-ba4f-28e548db1c24
    /// [MS-NLMP §3.1.1.2]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/a4a41f0d-ca27-44bf-ad1d-6f8c3a3796f2
    /// [MS-NLMP §3.1.5.1.1]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/b535636e-49c4-43af-8685-801cc381882f
    pub fn for_protection(credentials: Credentials, protection: Protection) -> Self {
        let mut config = Self::new(credentials);
        let required = NegotiateFlags::required_for(protection);
        let optional = NegotiateFlags::required_for(Protection::Privacy).difference(required);
        config.flags.remove(optional);
        config.required = required;
        config
    }
}

/// An NTLM v2 initiator; also the [`SecurityProvider`] of a DCE/RPC client (auth type 10).
pub struct Initiator {
    config: InitiatorConfig,
    inputs: ClientInputs,
    state: State,
    negotiate: Vec<u8>,
    session: Option<SessionSecurity>,
    exported_session_key: Option<Key>,
    /// Whether the AUTHENTICATE carried a MIC.
    sent_mic: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Start,
    NegotiateSent,
    Established,
    Failed,
}

impl Initiator {
    /// A new context; nothing is sent until [`negotiate`](Self::negotiate).
    pub fn new(config: InitiatorConfig, inputs: ClientInputs) -> Self {
        Self {
            config,
            inputs,
            state: State::Start,
            negotiate: Vec::new(),
            session: None,
            exported_session_key: None,
            sent_mic: false,
        }
    }

    /// Produces the NEGOTIATE_MESSAGE.
    ///
    /// # Errors
    /// [`NtlmError::WrongState`] when called twice.
    pub fn negotiate(&mut self) -> Result<Vec<u8>, NtlmError> {
        if self.state != State::Start {
            return Err(NtlmError::WrongState("has already sent its NEGOTIATE"));
        }
        let message = NegotiateMessage {
            flags: self.config.flags,
            domain_name: Vec::new(),
            workstation: Vec::new(),
            version: self
                .config
                .flags
                .contains(NegotiateFlags::NEGOTIATE_VERSION)
                .then_some(self.config.version),
        };
        let bytes = message.encode()?;
        self.negotiate.clone_from(&bytes);
        self.state = State::NegotiateSent;
        Ok(bytes)
    }

    /// Consumes the CHALLENGE_MESSAGE and produces the AUTHENTICATE_MESSAGE; the context is then
    /// established.
    ///
    /// # Errors
    /// [`NtlmError::Malformed`] for an undecodable challenge, [`NtlmError::Unsupported`] when the
    /// server grants no extended session security, [`NtlmError::NotNegotiated`] when it does not
    /// grant a [`required`](InitiatorConfig::required) flag, [`NtlmError::WrongState`] out of
    /// order. The context fails for good on any error.
    pub fn authenticate(&mut self, challenge: &[u8]) -> Result<Vec<u8>, NtlmError> {
        if self.state != State::NegotiateSent {
            return Err(NtlmError::WrongState("is not waiting for a CHALLENGE"));
        }
        match self.build_authenticate(challenge) {
            Ok(bytes) => {
                self.state = State::Established;
                Ok(bytes)
            }
            Err(error) => {
                self.state = State::Failed;
                Err(error)
            }
        }
    }

    /// Whether the AUTHENTICATE has been produced.
    pub fn is_established(&self) -> bool {
        self.state == State::Established
    }

    /// Signing and sealing state, once established.
    pub fn session(&mut self) -> Option<&mut SessionSecurity> {
        self.session.as_mut()
    }

    /// The ExportedSessionKey, once established (for protocols that derive their own keys).
    pub fn exported_session_key(&self) -> Option<&Key> {
        self.exported_session_key.as_ref()
    }

    fn build_authenticate(&mut self, challenge_bytes: &[u8]) -> Result<Vec<u8>, NtlmError> {
        let challenge = ChallengeMessage::decode(challenge_bytes)?;
        let flags = granted_flags(self.config.flags, challenge.flags);
        if !flags.contains(NegotiateFlags::NEGOTIATE_EXTENDED_SESSIONSECURITY) {
            return Err(NtlmError::Unsupported(
                "server did not grant NEGOTIATE_EXTENDED_SESSIONSECURITY",
            ));
        }
        flags.check_required(self.config.required)?;
        let credentials = &self.config.credentials;
        let server_info = challenge.target_info.clone().unwrap_or_default();
        let server_timestamp = server_info.timestamp();
        let with_mic = server_timestamp.is_some() && credentials.nt_hash.is_some();

        let (lm_response, nt_response, session_base_key) = match &credentials.nt_hash {
            // [MS-NLMP §3.1.5.1.2]: anonymous sends an empty NtChallengeResponse and Z(1).
            None => (vec![0u8], Vec::new(), Key::new([0; 16])),
            Some(nt_hash) => self.responses(nt_hash, &challenge, server_info, with_mic)?,
        };

        // For NTLM v2 the KeyExchangeKey is the SessionBaseKey ([MS-NLMP §3.4.5.1]).
        let (exported, encrypted_key) = if flags.contains(NegotiateFlags::NEGOTIATE_KEY_EXCH) {
            let exported = Key::new(self.inputs.random_session_key);
            let encrypted = crypto::rc4_key(&session_base_key, exported.as_bytes());
            (exported, encrypted.as_bytes().to_vec())
        } else {
            (session_base_key, Vec::new())
        };

        let anonymous = credentials.nt_hash.is_none();
        let flags = if anonymous {
            flags | NegotiateFlags::ANONYMOUS
        } else {
            flags
        };
        let message = AuthenticateMessage {
            flags,
            lm_challenge_response: lm_response,
            nt_challenge_response: nt_response,
            domain_name: encode_string(flags, &credentials.domain),
            user_name: encode_string(flags, &credentials.user),
            workstation: encode_string(flags, &self.config.workstation),
            encrypted_random_session_key: encrypted_key,
            version: flags
                .contains(NegotiateFlags::NEGOTIATE_VERSION)
                .then_some(self.config.version),
            mic: with_mic.then_some([0; 16]),
        };
        let mut bytes = message.encode()?;
        if with_mic {
            let mic = crypto::mic(&exported, &self.negotiate, challenge_bytes, &bytes);
            let field = bytes
                .get_mut(AuthenticateMessage::MIC_OFFSET..AuthenticateMessage::MIC_OFFSET + 16)
                .ok_or(NtlmError::WrongState("lost the MIC field"))?;
            field.copy_from_slice(&mic);
        }
        self.session = Some(SessionSecurity::new(&exported, flags, Role::Initiator)?);
        self.exported_session_key = Some(exported);
        self.sent_mic = with_mic;
        Ok(bytes)
    }

    /// The LMv2 and NTLMv2 responses and the SessionBaseKey ([MS-NLMP §3.3.2]).
    ///
    /// The blob carries the server's AV pairs, plus MsvAvFlags (MIC bit) and a zero
    /// MsvAvChannelBindings when a MIC is sent, plus MsvAvTargetName when an SPN is configured.
    fn responses(
        &self,
        nt_hash: &NtHash,
        challenge: &ChallengeMessage,
        mut pairs: AvPairs,
        with_mic: bool,
    ) -> Result<(Vec<u8>, Vec<u8>, Key), NtlmError> {
        let server_timestamp = pairs.timestamp();
        if with_mic {
            let av_flags = pairs.flags().unwrap_or(AvFlags::empty()) | AvFlags::MIC_PRESENT;
            pairs.set(AvId::FLAGS, av_flags.bits().to_le_bytes().to_vec());
            if pairs.get(AvId::CHANNEL_BINDINGS).is_none() {
                pairs.set(AvId::CHANNEL_BINDINGS, vec![0; 16]);
            }
        }
        if let Some(spn) = &self.config.target_spn {
            pairs.set(AvId::TARGET_NAME, crypto::utf16le(spn));
        }
        let timestamp = server_timestamp.unwrap_or(self.inputs.timestamp);
        let client_challenge = &self.inputs.client_challenge;
        let blob = client_blob(timestamp, client_challenge, &pairs)?;
        let credentials = &self.config.credentials;
        let key = crypto::ntowfv2(nt_hash, &credentials.user, &credentials.domain);
        let proof = crypto::nt_proof_str(&key, &challenge.server_challenge, &blob);
        // [MS-NLMP §3.1.5.1.2]: with a MsvAvTimestamp, the client "MUST NOT send the
        // LmChallengeResponse and SHOULD send Z(24) instead".
        let lm = match server_timestamp {
            Some(_) => vec![0u8; 24],
            None => {
                crypto::lmv2_response(&key, &challenge.server_challenge, client_challenge).to_vec()
            }
        };
        let mut nt = proof.to_vec();
        nt.extend_from_slice(&blob);
        Ok((lm, nt, crypto::session_base_key(&key, &proof)))
    }
}

impl fmt::Debug for Initiator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Initiator")
            .field("config", &self.config)
            .field("state", &self.state)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl SecurityProvider for Initiator {
    fn auth_type(&self) -> AuthType {
        AuthType::WINNT
    }

    fn step(&mut self, peer_token: Option<&[u8]>) -> Result<AuthStep, SecurityError> {
        match (self.state, peer_token) {
            (State::Start, None) => Ok(AuthStep::Continue(self.negotiate()?)),
            (State::NegotiateSent, Some(challenge)) => {
                Ok(AuthStep::Complete(Some(self.authenticate(challenge)?)))
            }
            (State::Established, _) => Err(SecurityError::WrongState("already established")),
            (State::Failed, _) => Err(SecurityError::WrongState("failed")),
            (State::Start, Some(_)) => Err(SecurityError::WrongState(
                "got a token before sending its NEGOTIATE",
            )),
            (State::NegotiateSent, None) => {
                Err(SecurityError::WrongState("needs the server's CHALLENGE"))
            }
        }
    }

    fn require(&mut self, protection: Protection) {
        self.config.required |= NegotiateFlags::required_for(protection);
    }

    fn is_established(&self) -> bool {
        Self::is_established(self)
    }

    fn signature_len(&self) -> usize {
        SIGNATURE_LEN
    }

    fn wrap(
        &mut self,
        protection: Protection,
        pdu: &mut [u8],
        stub: Range<usize>,
        signature: &mut [u8],
    ) -> Result<(), SecurityError> {
        wrap(self.session.as_mut(), protection, pdu, stub, signature)
    }

    fn unwrap(
        &mut self,
        protection: Protection,
        pdu: &mut [u8],
        stub: Range<usize>,
        signature: &[u8],
    ) -> Result<(), SecurityError> {
        unwrap(self.session.as_mut(), protection, pdu, stub, signature)
    }

    fn wrap_batch(
        &mut self,
        protection: Protection,
        fragments: &mut [ProtectedFragment<'_>],
    ) -> Result<(), BatchError> {
        wrap_batch(self.session.as_mut(), protection, fragments)
            .map_err(|(index, error)| BatchError { index, error })
    }

    fn unwrap_batch(
        &mut self,
        protection: Protection,
        fragments: &mut [ProtectedFragment<'_>],
    ) -> Result<(), BatchError> {
        unwrap_batch(self.session.as_mut(), protection, fragments)
            .map_err(|(index, error)| BatchError { index, error })
    }
}

crate::session::spnego_mechanism!(Initiator, sent_mic);

/// The flags of the AUTHENTICATE: ours, less the negotiable ones the server did not grant.
fn granted_flags(offered: NegotiateFlags, granted: NegotiateFlags) -> NegotiateFlags {
    let negotiable = NegotiateFlags::NEGOTIATE_UNICODE
        | NegotiateFlags::NEGOTIATE_OEM
        | NegotiateFlags::NEGOTIATE_SIGN
        | NegotiateFlags::NEGOTIATE_SEAL
        | NegotiateFlags::NEGOTIATE_ALWAYS_SIGN
        | NegotiateFlags::NEGOTIATE_EXTENDED_SESSIONSECURITY
        | NegotiateFlags::NEGOTIATE_TARGET_INFO
        | NegotiateFlags::NEGOTIATE_VERSION
        | NegotiateFlags::NEGOTIATE_128
        | NegotiateFlags::NEGOTIATE_56
        | NegotiateFlags::NEGOTIATE_KEY_EXCH
        | NegotiateFlags::NEGOTIATE_IDENTIFY;
    let mut flags = offered.difference(negotiable.difference(granted));
    // A server that answers in OEM only gets OEM strings.
    if !granted.contains(NegotiateFlags::NEGOTIATE_UNICODE)
        && granted.contains(NegotiateFlags::NEGOTIATE_OEM)
    {
        flags.insert(NegotiateFlags::NEGOTIATE_OEM);
    }
    flags
}

/// The client's blob (`temp` of [MS-NLMP §3.3.2]):
///
/// ```text
/// RespType 1 | HiRespType 1 | Reserved1 Z(2) | Reserved2 Z(4) | TimeStamp u64 |
/// ChallengeFromClient [8] | Reserved3 Z(4) | AvPairs ... MsvAvEOL | Z(4)
/// ```
///
/// [MS-NLMP §3.3.2]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/5e550938-91d4-459f-b67d-75d70009e3f3
pub(crate) fn client_blob(
    timestamp: u64,
    client_challenge: &[u8; 8],
    pairs: &AvPairs,
) -> Result<Vec<u8>, NtlmError> {
    let mut blob = Vec::with_capacity(BLOB_HEADER_LEN + pairs.encoded_len() + 4);
    blob.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 0]);
    blob.extend_from_slice(&timestamp.to_le_bytes());
    blob.extend_from_slice(client_challenge);
    blob.extend_from_slice(&[0; 4]);
    pairs.encode(&mut blob)?;
    blob.extend_from_slice(&[0; 4]);
    Ok(blob)
}

/// Bytes of the blob before its AV pairs.
pub(crate) const BLOB_HEADER_LEN: usize = 1 /* RespType */ + 1 /* HiRespType */
    + 2 /* Reserved1 */ + 4 /* Reserved2 */ + 8 /* TimeStamp */ + 8 /* ChallengeFromClient */
    + 4 /* Reserved3 */;
