//! A third party's view of an NTLM v2 context: with the user's password (or NT hash) and the
//! CHALLENGE and AUTHENTICATE messages seen on the wire, derive the keys both ends hold, to
//! verify and unseal the traffic of either direction (what `tshark -o ntlmssp.nt_password:PW`
//! does, for `dsbackup inspect`).
//!
//! The computation is the acceptor's ([MS-NLMP §3.2.5.1.2]) without a credential store: the
//! NT hash is the caller's, the user and domain are the AUTHENTICATE's own.
//!
//! ```text
//! ResponseKeyNT   = NTOWFv2(NT hash, UserName, DomainName)
//! NTProofStr      = HMAC_MD5(ResponseKeyNT, ServerChallenge || blob)   must equal the received one
//! SessionBaseKey  = HMAC_MD5(ResponseKeyNT, NTProofStr)
//! ExportedSessionKey = RC4K(SessionBaseKey, EncryptedRandomSessionKey)  with NEGOTIATE_KEY_EXCH
//!                    = SessionBaseKey                                   without
//! ```
//!
//! [MS-NLMP §3.2.5.1.2]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/f9e6fbc4-a953-4f24-b229-ccdcc213b9ec

use core::fmt;
use core::ops::Range;

use dsbackup_proto::observe::{Eavesdropper, HandshakeObserver, ObservedKeys, Sender};
use dsbackup_proto::{
    AuthStep, AuthType, Protection, SecurityError, SecurityProvider, SpnegoMechanism,
};
use subtle::ConstantTimeEq;

use crate::acceptor::{exported_session_key, split_nt_response, text};
use crate::crypto::{self, Key, NtHash};
use crate::error::{LogonFailure, NtlmError};
use crate::flags::NegotiateFlags;
use crate::messages::{AuthenticateMessage, ChallengeMessage, Message};
use crate::session::{self, Role, SIGNATURE_LEN, SessionSecurity};

/// The keys of an observed context, one [`SessionSecurity`] per direction of travel.
pub struct ObservedContext {
    /// The user the AUTHENTICATE names.
    pub user: String,
    /// The domain the AUTHENTICATE names.
    pub domain: String,
    /// The flags both ends use (the AUTHENTICATE's, within the CHALLENGE's).
    pub flags: NegotiateFlags,
    /// The ExportedSessionKey.
    pub exported_session_key: Key,
    /// Reads what the client sends: the session as the acceptor holds it, whose
    /// [`verify`](SessionSecurity::verify) and [`unseal_range`](SessionSecurity::unseal_range)
    /// take client-to-server messages in order.
    pub from_client: SessionSecurity,
    /// Reads what the server sends: the session as the initiator holds it.
    pub from_server: SessionSecurity,
}

impl ObservedContext {
    /// Derives the keys of the context that `challenge` and `authenticate` established, given
    /// the NT hash of the authenticating user.
    ///
    /// An anonymous AUTHENTICATE (empty user and NT response) yields the all-zero session key.
    ///
    /// # Errors
    /// [`NtlmError::Malformed`] when a message does not decode;
    /// [`LogonFailure::BadProof`] when the NTProofStr does not verify with this hash (a wrong
    /// password); [`LogonFailure::NtlmV1Refused`] for an NTLM v1 response;
    /// [`NtlmError::Unsupported`] without extended session security.
    pub fn new(nt_hash: &NtHash, challenge: &[u8], authenticate: &[u8]) -> Result<Self, NtlmError> {
        let challenge = ChallengeMessage::decode(challenge)?;
        let message = AuthenticateMessage::decode(authenticate)?;
        let flags = message.flags & challenge.flags;
        let user = text(message.user(), "UserName")?;
        let domain = text(message.domain(), "DomainName")?;
        let response = message.nt_challenge_response.as_slice();
        let session_base_key = if user.is_empty() && response.is_empty() {
            Key::new([0; 16])
        } else {
            let (proof, blob) = split_nt_response(response)?;
            let key = crypto::ntowfv2(nt_hash, &user, &domain);
            let expected = crypto::nt_proof_str(&key, &challenge.server_challenge, blob);
            if !bool::from(expected.ct_eq(proof)) {
                return Err(LogonFailure::BadProof.into());
            }
            crypto::session_base_key(&key, &expected)
        };
        let exported_session_key = exported_session_key(&message, flags, session_base_key)?;
        Ok(Self {
            user,
            domain,
            flags,
            from_client: SessionSecurity::new(&exported_session_key, flags, Role::Acceptor)?,
            from_server: SessionSecurity::new(&exported_session_key, flags, Role::Initiator)?,
            exported_session_key,
        })
    }
}

impl fmt::Debug for ObservedContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObservedContext")
            .field("user", &self.user)
            .field("domain", &self.domain)
            .field("flags", &self.flags)
            .field("from_client", &self.from_client)
            .field("from_server", &self.from_server)
            .finish_non_exhaustive()
    }
}

/// Follows NTLM handshakes for a [`dsbackup_proto::observe::Observer`], knowing the user's NT
/// hash: the CHALLENGE and AUTHENTICATE of each context give its [`ObservedContext`].
#[derive(Clone)]
pub struct NtlmEavesdropper {
    nt_hash: NtHash,
}

impl NtlmEavesdropper {
    /// An eavesdropper that knows `nt_hash`.
    pub fn new(nt_hash: NtHash) -> Self {
        Self { nt_hash }
    }
}

impl fmt::Debug for NtlmEavesdropper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NtlmEavesdropper").finish_non_exhaustive()
    }
}

impl Eavesdropper for NtlmEavesdropper {
    fn handshake(&self, auth_type: AuthType) -> Option<Box<dyn HandshakeObserver>> {
        (auth_type == AuthType::WINNT).then(|| {
            Box::new(NtlmHandshake {
                nt_hash: self.nt_hash.clone(),
                challenge: None,
            }) as Box<dyn HandshakeObserver>
        })
    }
}

/// One NTLM context being followed: the CHALLENGE, awaiting the AUTHENTICATE.
struct NtlmHandshake {
    nt_hash: NtHash,
    challenge: Option<Vec<u8>>,
}

impl fmt::Debug for NtlmHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NtlmHandshake")
            .field("challenge", &self.challenge.is_some())
            .finish_non_exhaustive()
    }
}

impl HandshakeObserver for NtlmHandshake {
    fn token(
        &mut self,
        _sender: Sender,
        token: &[u8],
    ) -> Result<Option<ObservedKeys>, SecurityError> {
        match Message::decode(token).map_err(NtlmError::from)? {
            Message::Negotiate(_) => Ok(None),
            Message::Challenge(_) => {
                self.challenge = Some(token.to_vec());
                Ok(None)
            }
            Message::Authenticate(_) => {
                let challenge = self.challenge.as_deref().ok_or(SecurityError::WrongState(
                    "AUTHENTICATE without a CHALLENGE before it",
                ))?;
                let context = ObservedContext::new(&self.nt_hash, challenge, token)?;
                Ok(Some(ObservedKeys {
                    from_client: Box::new(OneWay(context.from_client)),
                    from_server: Box::new(OneWay(context.from_server)),
                }))
            }
        }
    }
}

/// One direction of an observed context, as a [`SecurityProvider`] that checks (and unseals)
/// that direction's fragments.
#[derive(Debug)]
struct OneWay(SessionSecurity);

/// Inside SPNEGO: the direction's mechanism list MIC is checked as its first signature, then
/// the RC4 handle is keyed afresh, as both ends do.
impl SpnegoMechanism for OneWay {
    fn can_sign(&self) -> bool {
        session::mech_list::can_sign(Some(&self.0))
    }

    fn verify_mic(&mut self, message: &[u8], mic: &[u8]) -> Result<(), SecurityError> {
        session::mech_list::verify_mic(Some(&mut self.0), message, mic)
    }

    fn mech_list_mic_done(&mut self) {
        session::mech_list::done(Some(&mut self.0));
    }
}

impl SecurityProvider for OneWay {
    fn auth_type(&self) -> AuthType {
        AuthType::WINNT
    }

    fn step(&mut self, _peer_token: Option<&[u8]>) -> Result<AuthStep, SecurityError> {
        Err(SecurityError::WrongState(
            "an observer takes no part in the handshake",
        ))
    }

    fn is_established(&self) -> bool {
        true
    }

    fn signature_len(&self) -> usize {
        SIGNATURE_LEN
    }

    fn wrap(
        &mut self,
        _protection: Protection,
        _pdu: &mut [u8],
        _stub: Range<usize>,
        _signature: &mut [u8],
    ) -> Result<(), SecurityError> {
        Err(SecurityError::Unsupported("an observer sends nothing"))
    }

    fn unwrap(
        &mut self,
        protection: Protection,
        pdu: &mut [u8],
        stub: Range<usize>,
        signature: &[u8],
    ) -> Result<(), SecurityError> {
        session::unwrap(Some(&mut self.0), protection, pdu, stub, signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::hex;
    use crate::{
        Acceptor, AcceptorConfig, ClientInputs, Credentials, InMemoryCredentials, Initiator,
        InitiatorConfig, ServerInputs,
    };
    use dsbackup_proto::{AuthStep, Protection, SecurityProvider};

    const CHALLENGE: &[u8] = include_bytes!("../../../fixtures/ntlm/impacket-plain-challenge.bin");
    const RIGHT: &[u8] =
        include_bytes!("../../../fixtures/ntlm/impacket-plain-authenticate-right-password.bin");
    const WRONG: &[u8] =
        include_bytes!("../../../fixtures/ntlm/impacket-plain-authenticate-wrong-password.bin");

    #[test]
    fn impacket_handshake_gives_the_exported_key_impacket_recorded() {
        // impacket-vectors.json: handshakes.plain.right-password.
        let hash = NtHash::from_password("Passw0rd!123");
        let observed = ObservedContext::new(&hash, CHALLENGE, RIGHT).unwrap();
        assert_eq!(observed.user, "Administrator");
        assert_eq!(
            observed.exported_session_key.as_bytes().to_vec(),
            hex("4e544c4d766563746f72733031323334")
        );
        assert!(observed.flags.contains(NegotiateFlags::NEGOTIATE_KEY_EXCH));
    }

    #[test]
    fn a_wrong_password_is_a_bad_proof() {
        let right = NtHash::from_password("Passw0rd!123");
        let wrong = NtHash::from_password("Passw0rd!124");
        // The client typed the wrong password; the observer knows the right one.
        assert_eq!(
            ObservedContext::new(&right, CHALLENGE, WRONG).unwrap_err(),
            NtlmError::LogonFailure(LogonFailure::BadProof)
        );
        // The client typed the right one; the observer was given a wrong one.
        assert_eq!(
            ObservedContext::new(&wrong, CHALLENGE, RIGHT).unwrap_err(),
            NtlmError::LogonFailure(LogonFailure::BadProof)
        );
        assert!(matches!(
            ObservedContext::new(&right, RIGHT, CHALLENGE),
            Err(NtlmError::Malformed(_))
        ));
        assert!(matches!(
            ObservedContext::new(&right, CHALLENGE, &RIGHT[..40]),
            Err(NtlmError::Malformed(_))
        ));
    }

    #[test]
    fn observer_unseals_both_directions_of_our_own_pair() {
        let mut users = InMemoryCredentials::new();
        users.insert_password("svc-backup", "CORP", "s3cret!");
        let config = AcceptorConfig::new(std::sync::Arc::new(users), "DC1", "CORP", "corp.example");
        let mut server = Acceptor::new(
            config,
            ServerInputs {
                server_challenge: [7; 8],
                timestamp: 0,
            },
        );
        let credentials = Credentials::from_password("svc-backup", "CORP", "s3cret!");
        let inputs = ClientInputs {
            client_challenge: [1; 8],
            random_session_key: [2; 16],
            timestamp: 0,
        };
        let mut client = Initiator::new(InitiatorConfig::new(credentials), inputs);
        let AuthStep::Continue(negotiate) = client.step(None).unwrap() else {
            panic!("no NEGOTIATE")
        };
        let AuthStep::Continue(challenge) = server.step(Some(&negotiate)).unwrap() else {
            panic!("no CHALLENGE")
        };
        let AuthStep::Complete(Some(authenticate)) = client.step(Some(&challenge)).unwrap() else {
            panic!("no AUTHENTICATE")
        };
        server.step(Some(&authenticate)).unwrap();

        let hash = NtHash::from_password("s3cret!");
        let mut observed = ObservedContext::new(&hash, &challenge, &authenticate).unwrap();
        assert_eq!(
            Some(&observed.exported_session_key),
            server.exported_session_key()
        );
        for round in 0..3u8 {
            let plain = [b"request ", &[round][..], b" stub..."].concat();
            let mut pdu = plain.clone();
            let mut signature = [0u8; 16];
            client
                .wrap(Protection::Privacy, &mut pdu, 0..8, &mut signature)
                .unwrap();
            assert_ne!(pdu, plain);
            let mut seen = pdu.clone();
            observed
                .from_client
                .unseal_range(&mut seen, 0..8, &signature)
                .unwrap();
            assert_eq!(seen, plain);
            server
                .unwrap(Protection::Privacy, &mut pdu, 0..8, &signature)
                .unwrap();

            let mut answer = b"response stub".to_vec();
            server
                .wrap(Protection::Privacy, &mut answer, 0..13, &mut signature)
                .unwrap();
            observed
                .from_server
                .unseal_range(&mut answer, 0..13, &signature)
                .unwrap();
            assert_eq!(answer, b"response stub");
        }
    }
}
