//! The server side: NEGOTIATE in, CHALLENGE out, AUTHENTICATE in and verified
//! ([MS-NLMP §3.2.5.1]).
//!
//! The acceptor always recomputes the client's NTProofStr from the stored NT hash, whether or not
//! the AUTHENTICATE carries a MIC, and checks the MIC whenever the client's MsvAvFlags claim one.
//!
//! [MS-NLMP §3.2.5.1]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/2101e7cc-0a4c-4a58-9d24-8dbb0e5a1a35

use core::fmt;
use core::ops::Range;
use std::sync::Arc;

use dsbackup_proto::{
    AuthStep, AuthType, BatchError, DecodeError, PeerIdentity, ProtectedFragment, Protection,
    SecurityError, SecurityProvider,
};
use subtle::ConstantTimeEq;

use crate::crypto::{self, Key, NtHash};
use crate::error::{LogonFailure, NtlmError};
use crate::flags::NegotiateFlags;
use crate::initiator::BLOB_HEADER_LEN;
use crate::messages::{
    AuthenticateMessage, AvFlags, AvId, AvPairs, ChallengeMessage, NegotiateMessage, Version,
    encode_string,
};
use crate::session::{
    Role, SIGNATURE_LEN, SessionSecurity, unwrap, unwrap_batch, wrap, wrap_batch,
};

/// Where the acceptor finds a user's NT hash.
pub trait CredentialStore: Send + Sync {
    /// The NT hash of `user` in `domain`, both matched without regard to case; `None` for an
    /// unknown user.
    fn lookup(&self, user: &str, domain: &str) -> Option<NtHash>;
}

/// A [`CredentialStore`] in memory.
#[derive(Clone, Default)]
pub struct InMemoryCredentials {
    entries: Vec<(String, String, NtHash)>,
}

impl InMemoryCredentials {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a user with their password.
    pub fn insert_password(&mut self, user: &str, domain: &str, password: &str) {
        self.insert(user, domain, NtHash::from_password(password));
    }

    /// Adds (or replaces) a user with their NT hash.
    pub fn insert(&mut self, user: &str, domain: &str, nt_hash: NtHash) {
        let (user, domain) = (crypto::uppercase(user), crypto::uppercase(domain));
        self.entries.retain(|(u, d, _)| (u, d) != (&user, &domain));
        self.entries.push((user, domain, nt_hash));
    }
}

impl CredentialStore for InMemoryCredentials {
    fn lookup(&self, user: &str, domain: &str) -> Option<NtHash> {
        let (user, domain) = (crypto::uppercase(user), crypto::uppercase(domain));
        self.entries
            .iter()
            .find(|(u, d, _)| *u == user && *d == domain)
            .map(|(_, _, hash)| hash.clone())
    }
}

impl fmt::Debug for InMemoryCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|(u, d, _)| format!("{d}\\{u}")))
            .finish()
    }
}

/// How the acceptor presents itself and whom it lets in.
#[derive(Clone)]
pub struct AcceptorConfig {
    /// The users.
    pub store: Arc<dyn CredentialStore>,
    /// MsvAvNbComputerName (`DC1`).
    pub nb_computer_name: String,
    /// MsvAvNbDomainName (`CORP`); also the TargetName and the domain users are looked up in
    /// when the client sends none or the DNS domain name.
    pub nb_domain_name: String,
    /// MsvAvDnsComputerName (`dc1.corp.example`).
    pub dns_computer_name: String,
    /// MsvAvDnsDomainName (`corp.example`).
    pub dns_domain_name: String,
    /// MsvAvDnsTreeName (`corp.example`).
    pub dns_tree_name: String,
    /// VERSION sent in the CHALLENGE.
    pub version: Version,
    /// Lets anonymous AUTHENTICATE messages in (with an all-zero session key). Off by default.
    pub danger_allow_anonymous: bool,
}

impl AcceptorConfig {
    /// A server named `computer` in domain `nb_domain` (DNS names derived from `dns_domain`).
    pub fn new(
        store: Arc<dyn CredentialStore>,
        computer: &str,
        nb_domain: &str,
        dns_domain: &str,
    ) -> Self {
        Self {
            store,
            nb_computer_name: computer.to_owned(),
            nb_domain_name: nb_domain.to_owned(),
            dns_computer_name: format!("{}.{dns_domain}", computer.to_lowercase()),
            dns_domain_name: dns_domain.to_owned(),
            dns_tree_name: dns_domain.to_owned(),
            version: Version::WINDOWS_10,
            danger_allow_anonymous: false,
        }
    }
}

impl fmt::Debug for AcceptorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcceptorConfig")
            .field("nb_computer_name", &self.nb_computer_name)
            .field("nb_domain_name", &self.nb_domain_name)
            .field("dns_computer_name", &self.dns_computer_name)
            .field("dns_domain_name", &self.dns_domain_name)
            .field("dns_tree_name", &self.dns_tree_name)
            .field("version", &self.version)
            .field("danger_allow_anonymous", &self.danger_allow_anonymous)
            .finish_non_exhaustive()
    }
}

/// The values an acceptor needs from outside: a fresh random server challenge and the current
/// time (sent as MsvAvTimestamp, which makes clients send a MIC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerInputs {
    /// ServerChallenge: 8 random bytes, never reused.
    pub server_challenge: [u8; 8],
    /// Current time as a FILETIME (100 ns intervals since 1601-01-01 UTC).
    pub timestamp: u64,
}

/// Who logged on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The user name as the client sent it.
    pub user: String,
    /// The domain name as the client sent it.
    pub domain: String,
    /// The workstation name as the client sent it.
    pub workstation: String,
    /// An anonymous logon (only with [`AcceptorConfig::danger_allow_anonymous`]).
    pub anonymous: bool,
    /// The account the credential store authenticated, `(user, domain)` as the store was
    /// asked for it: `backup@CORP` with no domain is `("backup", "CORP")`, a client that gave
    /// no domain gets the NetBIOS domain when the store knows the user there. Empty for an
    /// anonymous logon. Authorization looks this up, not the names as sent.
    pub account: (String, String),
}

/// An NTLM v2 acceptor; also the [`SecurityProvider`] of a DCE/RPC server (auth type 10).
pub struct Acceptor {
    config: AcceptorConfig,
    inputs: ServerInputs,
    state: State,
    negotiate: Vec<u8>,
    challenge: Vec<u8>,
    challenge_flags: NegotiateFlags,
    /// Flags the AUTHENTICATE must keep (set by [`require`](Self::require)).
    required: NegotiateFlags,
    session: Option<SessionSecurity>,
    identity: Option<Identity>,
    exported_session_key: Option<Key>,
    /// Whether the AUTHENTICATE carried a MIC (which was checked).
    checked_mic: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Start,
    ChallengeSent,
    Established,
    Failed,
}

impl Acceptor {
    /// A new context waiting for a NEGOTIATE.
    pub fn new(config: AcceptorConfig, inputs: ServerInputs) -> Self {
        Self {
            config,
            inputs,
            state: State::Start,
            negotiate: Vec::new(),
            challenge: Vec::new(),
            challenge_flags: NegotiateFlags::empty(),
            required: NegotiateFlags::empty(),
            session: None,
            identity: None,
            exported_session_key: None,
            checked_mic: false,
        }
    }

    /// Demands the flags `protection` needs ([`NegotiateFlags::required_for`]): an
    /// AUTHENTICATE without one of them (the client did not offer it, or dropped it) fails with
    /// [`NtlmError::NotNegotiated`]. A DCE/RPC server asks for the protection of the bind's
    /// auth level ([`SecurityProvider::require`]).
    pub fn require(&mut self, protection: Protection) {
        self.required |= NegotiateFlags::required_for(protection);
    }

    /// Consumes the NEGOTIATE_MESSAGE and produces the CHALLENGE_MESSAGE.
    ///
    /// # Errors
    /// [`NtlmError::Malformed`] for an undecodable message, [`NtlmError::Unsupported`] when the
    /// client offers no extended session security, [`NtlmError::WrongState`] out of order.
    pub fn challenge(&mut self, negotiate: &[u8]) -> Result<Vec<u8>, NtlmError> {
        if self.state != State::Start {
            return Err(NtlmError::WrongState("has already sent its CHALLENGE"));
        }
        let result = self.build_challenge(negotiate);
        self.state = if result.is_ok() {
            State::ChallengeSent
        } else {
            State::Failed
        };
        result
    }

    /// Consumes the AUTHENTICATE_MESSAGE and verifies it; the context is then established.
    ///
    /// # Errors
    /// [`NtlmError::LogonFailure`] for refused credentials, [`NtlmError::NotNegotiated`] when a
    /// [`require`](Self::require)d flag is missing, [`NtlmError::Malformed`] for an
    /// undecodable message, [`NtlmError::WrongState`] out of order (a second AUTHENTICATE is
    /// one). The context fails for good on any error.
    pub fn authenticate(&mut self, authenticate: &[u8]) -> Result<&Identity, NtlmError> {
        match self.state {
            State::ChallengeSent => {}
            State::Established => {
                return Err(NtlmError::WrongState(
                    "is established: AUTHENTICATE replayed",
                ));
            }
            State::Start => return Err(NtlmError::WrongState("has not sent a CHALLENGE")),
            State::Failed => return Err(NtlmError::WrongState("failed")),
        }
        // Whatever happens, this challenge is spent.
        self.state = State::Failed;
        let identity = self.verify(authenticate)?;
        self.state = State::Established;
        Ok(self.identity.insert(identity))
    }

    /// Whether the client has been authenticated.
    pub fn is_established(&self) -> bool {
        self.state == State::Established
    }

    /// Who logged on, once established.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// Signing and sealing state, once established.
    pub fn session(&mut self) -> Option<&mut SessionSecurity> {
        self.session.as_mut()
    }

    /// The ExportedSessionKey, once established.
    pub fn exported_session_key(&self) -> Option<&Key> {
        self.exported_session_key.as_ref()
    }

    fn build_challenge(&mut self, negotiate_bytes: &[u8]) -> Result<Vec<u8>, NtlmError> {
        let negotiate = NegotiateMessage::decode(negotiate_bytes)?;
        let requested = negotiate.flags;
        if !requested.contains(NegotiateFlags::NEGOTIATE_EXTENDED_SESSIONSECURITY) {
            return Err(NtlmError::Unsupported(
                "client did not offer NEGOTIATE_EXTENDED_SESSIONSECURITY",
            ));
        }
        let grantable = NegotiateFlags::NEGOTIATE_SIGN
            | NegotiateFlags::NEGOTIATE_SEAL
            | NegotiateFlags::NEGOTIATE_ALWAYS_SIGN
            | NegotiateFlags::NEGOTIATE_128
            | NegotiateFlags::NEGOTIATE_56
            | NegotiateFlags::NEGOTIATE_KEY_EXCH
            | NegotiateFlags::NEGOTIATE_IDENTIFY
            | NegotiateFlags::REQUEST_TARGET;
        let mut flags = requested.intersection(grantable)
            | NegotiateFlags::NEGOTIATE_NTLM
            | NegotiateFlags::NEGOTIATE_EXTENDED_SESSIONSECURITY
            | NegotiateFlags::NEGOTIATE_TARGET_INFO
            | NegotiateFlags::NEGOTIATE_VERSION
            | NegotiateFlags::TARGET_TYPE_DOMAIN;
        flags |= if requested.contains(NegotiateFlags::NEGOTIATE_UNICODE) {
            NegotiateFlags::NEGOTIATE_UNICODE
        } else {
            NegotiateFlags::NEGOTIATE_OEM
        };
        let config = &self.config;
        let names = [
            (AvId::NB_DOMAIN_NAME, &config.nb_domain_name),
            (AvId::NB_COMPUTER_NAME, &config.nb_computer_name),
            (AvId::DNS_DOMAIN_NAME, &config.dns_domain_name),
            (AvId::DNS_COMPUTER_NAME, &config.dns_computer_name),
            (AvId::DNS_TREE_NAME, &config.dns_tree_name),
        ];
        let mut pairs = AvPairs::default();
        for (id, name) in names {
            if !name.is_empty() {
                pairs.set(id, crypto::utf16le(name));
            }
        }
        pairs.set(
            AvId::TIMESTAMP,
            self.inputs.timestamp.to_le_bytes().to_vec(),
        );
        let message = ChallengeMessage {
            flags,
            target_name: encode_string(flags, &config.nb_domain_name),
            server_challenge: self.inputs.server_challenge,
            reserved: [0; 8],
            target_info: Some(pairs),
            version: Some(config.version),
        };
        let bytes = message.encode()?;
        self.negotiate = negotiate_bytes.to_vec();
        self.challenge.clone_from(&bytes);
        self.challenge_flags = flags;
        Ok(bytes)
    }

    fn verify(&mut self, bytes: &[u8]) -> Result<Identity, NtlmError> {
        let message = AuthenticateMessage::decode(bytes)?;
        let flags = message.flags & self.challenge_flags;
        if !flags.contains(NegotiateFlags::NEGOTIATE_EXTENDED_SESSIONSECURITY) {
            return Err(NtlmError::Unsupported(
                "AUTHENTICATE without NEGOTIATE_EXTENDED_SESSIONSECURITY",
            ));
        }
        flags.check_required(self.required)?;
        let user = text(message.user(), "UserName")?;
        let domain = text(message.domain(), "DomainName")?;
        let workstation = text(message.workstation_name(), "Workstation")?;

        let anonymous = user.is_empty()
            && message.nt_challenge_response.is_empty()
            && matches!(message.lm_challenge_response.as_slice(), [] | [0]);
        let (session_base_key, mic_expected, account) = if anonymous {
            if !self.config.danger_allow_anonymous {
                return Err(LogonFailure::AnonymousRefused.into());
            }
            (Key::new([0; 16]), false, (String::new(), String::new()))
        } else {
            self.verify_response(&message, &user, &domain)?
        };

        let exported = exported_session_key(&message, flags, session_base_key)?;

        if mic_expected {
            let Some(mic) = message.mic else {
                return Err(LogonFailure::BadMic.into());
            };
            let mut zeroed = bytes.to_vec();
            if let Some(field) = zeroed
                .get_mut(AuthenticateMessage::MIC_OFFSET..AuthenticateMessage::MIC_OFFSET + 16)
            {
                field.fill(0);
            }
            let expected = crypto::mic(&exported, &self.negotiate, &self.challenge, &zeroed);
            if !bool::from(expected.ct_eq(&mic)) {
                return Err(LogonFailure::BadMic.into());
            }
        }

        self.session = Some(SessionSecurity::new(&exported, flags, Role::Acceptor)?);
        self.exported_session_key = Some(exported);
        self.checked_mic = mic_expected;
        Ok(Identity {
            user,
            domain,
            workstation,
            anonymous,
            account,
        })
    }

    /// Checks the NTLMv2 response; returns the SessionBaseKey, whether the client's
    /// MsvAvFlags announce a MIC, and the account the store authenticated.
    fn verify_response(
        &self,
        message: &AuthenticateMessage,
        user: &str,
        domain: &str,
    ) -> Result<(Key, bool, (String, String)), NtlmError> {
        let (proof, blob) = split_nt_response(&message.nt_challenge_response)?;
        if blob.len() < BLOB_HEADER_LEN + 4 {
            return Err(malformed_response());
        }
        let stored = self.lookup(user, domain);
        // An unknown user costs the same computation as a wrong password, so that the time of
        // the answer does not tell which users exist.
        let known = stored.is_some();
        let (nt_hash, account) =
            stored.unwrap_or_else(|| (NtHash::from_bytes([0; 16]), (String::new(), String::new())));
        // NTOWFv2 over the user and domain exactly as the client sent them.
        let key = crypto::ntowfv2(&nt_hash, user, domain);
        let expected = crypto::nt_proof_str(&key, &self.inputs.server_challenge, blob);
        let matches = bool::from(expected.ct_eq(proof));
        if !known {
            return Err(LogonFailure::UnknownUser.into());
        }
        if !matches {
            return Err(LogonFailure::BadProof.into());
        }
        // Only now, with the blob known to come from the holder of the key, look inside it.
        let pairs_bytes = blob.get(BLOB_HEADER_LEN..).unwrap_or_default();
        let (pairs, _) = AvPairs::decode(pairs_bytes)?;
        let mic = pairs
            .flags()
            .is_some_and(|flags| flags.contains(AvFlags::MIC_PRESENT));
        Ok((crypto::session_base_key(&key, &expected), mic, account))
    }

    /// The stored hash for a user as the client named them: the domain as given, then the
    /// NetBIOS domain when the client gave none or the DNS domain; `user@domain` is split when
    /// no domain is given. With the hash comes the `(user, domain)` the store knew it under.
    fn lookup(&self, user: &str, domain: &str) -> Option<(NtHash, (String, String))> {
        let store = &self.config.store;
        let nb = &self.config.nb_domain_name;
        let alias = |d: &str| d.is_empty() || d.eq_ignore_ascii_case(&self.config.dns_domain_name);
        let found = |name: &str, realm: &str| {
            store
                .lookup(name, realm)
                .map(|hash| (hash, (name.to_owned(), realm.to_owned())))
        };
        if let Some(hit) = found(user, domain) {
            return Some(hit);
        }
        if alias(domain)
            && let Some(hit) = found(user, nb)
        {
            return Some(hit);
        }
        let (name, realm) = user.rsplit_once('@').filter(|_| domain.is_empty())?;
        found(name, realm).or_else(|| alias(realm).then(|| found(name, nb)).flatten())
    }
}

/// A name field of an AUTHENTICATE as text; `name` is the field's, for the error when it is not
/// valid UTF-16LE.
pub(crate) fn text(field: Option<String>, name: &'static str) -> Result<String, NtlmError> {
    field.ok_or(NtlmError::Malformed(DecodeError::InvalidField {
        what: "AUTHENTICATE_MESSAGE",
        field: name,
        reason: "not valid UTF-16LE",
    }))
}

/// The ExportedSessionKey of an AUTHENTICATE under `flags`: the client's
/// EncryptedRandomSessionKey decrypted with the SessionBaseKey under NEGOTIATE_KEY_EXCH, else
/// the SessionBaseKey itself ([MS-NLMP §3.2.5.1.2]).
///
/// [MS-NLMP §3.2.5.1.2]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/f9e6fbc4-a953-4f24-b229-ccdcc213b9ec
pub(crate) fn exported_session_key(
    message: &AuthenticateMessage,
    flags: NegotiateFlags,
    session_base_key: Key,
) -> Result<Key, DecodeError> {
    if !flags.contains(NegotiateFlags::NEGOTIATE_KEY_EXCH) {
        return Ok(session_base_key);
    }
    let encrypted: [u8; 16] = message
        .encrypted_random_session_key
        .as_slice()
        .try_into()
        .map_err(|_| DecodeError::InvalidField {
            what: "AUTHENTICATE_MESSAGE",
            field: "EncryptedRandomSessionKey",
            reason: "not 16 bytes with NEGOTIATE_KEY_EXCH",
        })?;
    Ok(crypto::rc4_key(&session_base_key, &encrypted))
}

/// The NTProofStr and the client's blob of an NTLMv2 NtChallengeResponse.
///
/// # Errors
/// [`LogonFailure::NtlmV1Refused`] for a 24-byte (NTLM v1) response; [`NtlmError::Malformed`]
/// for one too short to hold an NTProofStr.
pub(crate) fn split_nt_response(response: &[u8]) -> Result<(&[u8; 16], &[u8]), NtlmError> {
    if response.len() == 24 {
        return Err(LogonFailure::NtlmV1Refused.into());
    }
    response
        .split_first_chunk::<16>()
        .ok_or_else(malformed_response)
}

/// The error for an NtChallengeResponse too short to hold an NTProofStr and a blob.
fn malformed_response() -> NtlmError {
    NtlmError::Malformed(DecodeError::InvalidField {
        what: "AUTHENTICATE_MESSAGE",
        field: "NtChallengeResponse",
        reason: "too short for an NTLMv2 response",
    })
}

impl fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acceptor")
            .field("config", &self.config)
            .field("state", &self.state)
            .field("identity", &self.identity)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl SecurityProvider for Acceptor {
    fn auth_type(&self) -> AuthType {
        AuthType::WINNT
    }

    fn step(&mut self, peer_token: Option<&[u8]>) -> Result<AuthStep, SecurityError> {
        let Some(token) = peer_token else {
            return Err(SecurityError::WrongState(
                "an acceptor needs the client's token",
            ));
        };
        match self.state {
            State::Start => Ok(AuthStep::Continue(self.challenge(token)?)),
            _ => {
                self.authenticate(token)?;
                Ok(AuthStep::Complete(None))
            }
        }
    }

    fn require(&mut self, protection: Protection) {
        Self::require(self, protection);
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

    fn peer_identity(&self) -> Option<PeerIdentity> {
        self.identity
            .as_ref()
            .filter(|identity| !identity.anonymous)
            .map(|identity| PeerIdentity {
                user: identity.account.0.clone(),
                domain: identity.account.1.clone(),
            })
    }
}

crate::session::spnego_mechanism!(Acceptor, checked_mic);
