//! SPNEGO ([RFC 4178]) as DCE/RPC auth type 9 (RPC_C_AUTHN_GSS_NEGOTIATE), around a mechanism
//! of its own: the tokens (NegTokenInit, NegTokenResp) and a provider on each side that wraps
//! the mechanism's tokens in them and hands fragment protection to the mechanism.
//!
//! ```text
//! initiator                                              acceptor
//! bind:   NegTokenInit(mechTypes, mechToken = AP-REQ)  -> picks the first mechanism it has
//!         NegTokenResp(accept-incomplete, supportedMech, responseToken = AP-REP) <- bind_ack
//! alter:  NegTokenResp(responseToken = client AP-REP)  -> the mechanism completes
//!         NegTokenResp(accept-completed)               <- alter_context_resp
//! ```
//!
//! The mechanism list MIC is neither sent nor required: the acceptor takes the initiator's
//! first mechanism with its optimistic token (RFC 4178 §5 lets both sides skip the MIC then),
//! and a mechanism other than the first is refused rather than negotiated, so no downgrade can
//! go unnoticed.
//!
//! [RFC 4178]: https://www.rfc-editor.org/rfc/rfc4178

use core::ops::Range;

use dsbackup_proto::{
    AuthStep, AuthType, PeerIdentity, Protection, SecurityError, SecurityProvider,
};

use crate::der::{self, Reader};
use crate::error::DecodeError;
use crate::gss::KerberosInitiator;

/// The SPNEGO OID, 1.3.6.1.5.5.2 (contents of the DER OBJECT IDENTIFIER).
pub const SPNEGO_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];
/// Kerberos 5, 1.2.840.113554.1.2.2.
pub const KRB5_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];
/// Kerberos 5 as Windows 2000 misencoded it, 1.2.840.48018.1.2.2 (what Windows and impacket
/// offer first).
pub const MS_KRB5_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02];
/// NTLMSSP, 1.3.6.1.4.1.311.2.2.10.
pub const NTLM_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a];

const OID: u8 = 0x06;
const ENUMERATED: u8 = 0x0a;

/// negState of a NegTokenResp.
pub mod neg_state {
    /// The acceptor is done.
    pub const ACCEPT_COMPLETED: u32 = 0;
    /// More legs follow.
    pub const ACCEPT_INCOMPLETE: u32 = 1;
    /// Refused.
    pub const REJECT: u32 = 2;
}

/// Whether `oid` names Kerberos 5 (either encoding).
pub fn is_kerberos(oid: &[u8]) -> bool {
    oid == KRB5_OID || oid == MS_KRB5_OID
}

/// The initiator's first token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NegTokenInit {
    /// The mechanisms offered, preferred first (OID contents).
    pub mech_types: Vec<Vec<u8>>,
    /// The optimistic token of the first mechanism.
    pub mech_token: Option<Vec<u8>>,
}

impl NegTokenInit {
    /// The GSS InitialContextToken: `[APPLICATION 0] { SPNEGO OID, [0] NegTokenInit }`.
    pub fn encode(&self) -> Vec<u8> {
        let types = der::sequence_of(self.mech_types.iter().map(|oid| der::element(OID, oid)));
        let mut f = der::Fields::new().raw(0, &types);
        if let Some(token) = &self.mech_token {
            f = f.octets(2, token);
        }
        let init = der::element(der::context(0), &f.sequence(None));
        let mut inner = der::element(OID, SPNEGO_OID);
        inner.extend_from_slice(&init);
        der::element(der::application(0), &inner)
    }

    /// Decodes the GSS InitialContextToken.
    ///
    /// # Errors
    /// [`DecodeError`] when malformed or not SPNEGO.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, "NegTokenInit");
        let mut app = r.nested(der::application(0))?;
        if app.expect(OID)? != SPNEGO_OID {
            return Err(DecodeError::new("NegTokenInit", "not the SPNEGO mechanism"));
        }
        let mut seq = app.nested(der::context(0))?.nested(der::SEQUENCE)?;
        let mut list = seq.field(0)?.nested(der::SEQUENCE)?;
        let mut mech_types = Vec::new();
        while !list.is_empty() {
            if mech_types.len() >= 16 {
                return Err(DecodeError::new("NegTokenInit", "too many mechanisms"));
            }
            mech_types.push(list.expect(OID)?.to_vec());
        }
        let _req_flags = seq.optional(1)?;
        let mech_token = seq
            .optional(2)?
            .map(|mut f| f.octets().map(<[u8]>::to_vec))
            .transpose()?;
        r.finish()?;
        Ok(Self {
            mech_types,
            mech_token,
        })
    }
}

/// The tokens after the first, both ways.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NegTokenResp {
    /// See [`neg_state`].
    pub neg_state: Option<u32>,
    /// The mechanism the acceptor chose (its first answer only).
    pub supported_mech: Option<Vec<u8>>,
    /// The mechanism's token.
    pub response_token: Option<Vec<u8>>,
    /// The mechanism list MIC (read, not checked: see the module documentation).
    pub mech_list_mic: Option<Vec<u8>>,
}

impl NegTokenResp {
    /// `[1] NegTokenResp`.
    pub fn encode(&self) -> Vec<u8> {
        let mut f = der::Fields::new();
        if let Some(state) = self.neg_state {
            f = f.raw(
                0,
                &der::element(ENUMERATED, &[u8::try_from(state).unwrap_or(2)]),
            );
        }
        if let Some(mech) = &self.supported_mech {
            f = f.raw(1, &der::element(OID, mech));
        }
        if let Some(token) = &self.response_token {
            f = f.octets(2, token);
        }
        if let Some(mic) = &self.mech_list_mic {
            f = f.octets(3, mic);
        }
        der::element(der::context(1), &f.sequence(None))
    }

    /// Decodes `[1] NegTokenResp`.
    ///
    /// # Errors
    /// [`DecodeError`] when malformed.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, "NegTokenResp");
        let mut seq = r.nested(der::context(1))?.nested(der::SEQUENCE)?;
        let neg_state = seq
            .optional(0)?
            .map(|mut f| {
                let value = f.expect(ENUMERATED)?;
                match value {
                    [v] => Ok(u32::from(*v)),
                    _ => Err(DecodeError::new("NegTokenResp", "negState out of range")),
                }
            })
            .transpose()?;
        let supported_mech = seq
            .optional(1)?
            .map(|mut f| f.expect(OID).map(<[u8]>::to_vec))
            .transpose()?;
        let response_token = seq
            .optional(2)?
            .map(|mut f| f.octets().map(<[u8]>::to_vec))
            .transpose()?;
        let mech_list_mic = seq
            .optional(3)?
            .map(|mut f| f.octets().map(<[u8]>::to_vec))
            .transpose()?;
        r.finish()?;
        Ok(Self {
            neg_state,
            supported_mech,
            response_token,
            mech_list_mic,
        })
    }
}

fn malformed(e: DecodeError) -> SecurityError {
    SecurityError::Malformed {
        message: e.what,
        reason: e.reason,
    }
}

/// Makes the acceptor of a mechanism (by OID), `None` for one the server does not have.
pub type MechFactory = Box<dyn FnMut(&[u8]) -> Option<Box<dyn SecurityProvider>> + Send>;

#[derive(Debug, PartialEq, Eq)]
enum State {
    Initial,
    Negotiating,
    Done,
    Failed,
}

/// Hands the mechanism's answer on in a NegTokenResp.
fn answer(
    step: Result<AuthStep, SecurityError>,
    supported_mech: Option<Vec<u8>>,
    state: &mut State,
) -> Result<AuthStep, SecurityError> {
    match step {
        Ok(AuthStep::Continue(token)) => {
            *state = State::Negotiating;
            Ok(AuthStep::Continue(
                NegTokenResp {
                    neg_state: Some(neg_state::ACCEPT_INCOMPLETE),
                    supported_mech,
                    response_token: Some(token),
                    mech_list_mic: None,
                }
                .encode(),
            ))
        }
        Ok(AuthStep::Complete(token)) => {
            *state = State::Done;
            Ok(AuthStep::Complete(Some(
                NegTokenResp {
                    neg_state: Some(neg_state::ACCEPT_COMPLETED),
                    supported_mech,
                    response_token: token,
                    mech_list_mic: None,
                }
                .encode(),
            )))
        }
        Err(e) => {
            *state = State::Failed;
            Err(e)
        }
    }
}

/// The acceptor side of SPNEGO: the initiator's first mechanism, if the server has it.
pub struct SpnegoAcceptor {
    factory: MechFactory,
    inner: Option<Box<dyn SecurityProvider>>,
    protection: Protection,
    /// Told to the mechanism once it exists.
    header_signing: bool,
    state: State,
}

impl core::fmt::Debug for SpnegoAcceptor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SpnegoAcceptor")
            .field("inner", &self.inner)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl SpnegoAcceptor {
    /// An acceptor making its mechanism with `factory`.
    pub fn new(factory: MechFactory) -> Self {
        Self {
            factory,
            inner: None,
            protection: Protection::None,
            header_signing: true,
            state: State::Initial,
        }
    }

    /// The mechanism's provider, once chosen.
    pub fn mechanism(&self) -> Option<&dyn SecurityProvider> {
        self.inner.as_deref()
    }

    fn inner(&mut self) -> Result<&mut Box<dyn SecurityProvider>, SecurityError> {
        self.inner
            .as_mut()
            .ok_or(SecurityError::WrongState("has no mechanism yet"))
    }

    fn first(&mut self, token: &[u8]) -> Result<AuthStep, SecurityError> {
        let init = NegTokenInit::decode(token).map_err(malformed)?;
        let (Some(mech), Some(mech_token)) = (init.mech_types.first(), init.mech_token) else {
            return Err(SecurityError::Unsupported(
                "SPNEGO without an optimistic token of the first mechanism",
            ));
        };
        // Only the initiator's first choice: taking a later one would be a negotiation the
        // mechanism list MIC must protect, which this acceptor does not run.
        let mut inner = (self.factory)(mech).ok_or(SecurityError::Unsupported(
            "the initiator's preferred SPNEGO mechanism",
        ))?;
        inner.require(self.protection);
        inner.header_signing(self.header_signing);
        let step = inner.step(Some(&mech_token));
        self.inner = Some(inner);
        answer(step, Some(mech.clone()), &mut self.state)
    }
}

impl SecurityProvider for SpnegoAcceptor {
    fn auth_type(&self) -> AuthType {
        AuthType::GSS_NEGOTIATE
    }

    fn step(&mut self, peer_token: Option<&[u8]>) -> Result<AuthStep, SecurityError> {
        match (&self.state, peer_token) {
            (State::Initial, Some(token)) => self.first(token).inspect_err(|_| {
                self.state = State::Failed;
            }),
            (State::Negotiating, Some(token)) => {
                let resp = NegTokenResp::decode(token).map_err(malformed)?;
                if resp.neg_state == Some(neg_state::REJECT) {
                    self.state = State::Failed;
                    return Err(SecurityError::LogonFailure("the initiator gave up"));
                }
                let step = self.inner()?.step(resp.response_token.as_deref());
                answer(step, None, &mut self.state)
            }
            _ => Err(SecurityError::WrongState("does not expect a token now")),
        }
    }

    fn require(&mut self, protection: Protection) {
        self.protection = protection;
    }

    fn header_signing(&mut self, on: bool) {
        self.header_signing = on;
        if let Some(inner) = &mut self.inner {
            inner.header_signing(on);
        }
    }

    fn is_established(&self) -> bool {
        self.state == State::Done && self.inner.as_ref().is_some_and(|i| i.is_established())
    }

    fn signature_len(&self) -> usize {
        self.inner.as_ref().map_or(16, |i| i.signature_len())
    }

    fn accepts_signature_len(&self, len: usize) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|i| i.accepts_signature_len(len))
    }

    fn wrap(
        &mut self,
        protection: Protection,
        pdu: &mut [u8],
        stub: Range<usize>,
        signature: &mut [u8],
    ) -> Result<(), SecurityError> {
        self.inner()?.wrap(protection, pdu, stub, signature)
    }

    fn unwrap(
        &mut self,
        protection: Protection,
        pdu: &mut [u8],
        stub: Range<usize>,
        signature: &[u8],
    ) -> Result<(), SecurityError> {
        self.inner()?.unwrap(protection, pdu, stub, signature)
    }

    fn peer_identity(&self) -> Option<PeerIdentity> {
        if self.state != State::Done {
            return None;
        }
        self.inner.as_ref()?.peer_identity()
    }
}

/// The initiator side of SPNEGO around Kerberos: offers it first (under both its OIDs, as
/// Windows does) with its optimistic token, and accepts no other mechanism. When the acceptor
/// sends its mechanism list MIC and waits (Samba does, once the context has an acceptor
/// subkey), the MIC is checked and ours sent in one more leg.
#[derive(Debug)]
pub struct SpnegoInitiator {
    inner: KerberosInitiator,
    mech_types: Vec<Vec<u8>>,
    state: State,
    mic_checked: bool,
}

impl SpnegoInitiator {
    /// SPNEGO around a Kerberos initiator.
    pub fn kerberos(inner: KerberosInitiator) -> Self {
        Self {
            inner,
            mech_types: vec![MS_KRB5_OID.to_vec(), KRB5_OID.to_vec()],
            state: State::Initial,
            mic_checked: false,
        }
    }

    /// The DER MechTypeList the mechanism list MICs cover.
    fn mech_type_list(&self) -> Vec<u8> {
        der::sequence_of(self.mech_types.iter().map(|oid| der::element(OID, oid)))
    }

    /// Checks the acceptor's mechanism list MIC, once.
    fn check_mic(&mut self, mic: &[u8]) -> Result<(), SecurityError> {
        if self.mic_checked {
            return Ok(());
        }
        let list = self.mech_type_list();
        self.inner
            .verify_peer_mic(&list, mic)
            .map_err(|_| SecurityError::LogonFailure("the mechanism list MIC does not verify"))?;
        self.mic_checked = true;
        Ok(())
    }

    fn respond(&mut self, token: &[u8]) -> Result<AuthStep, SecurityError> {
        let resp = NegTokenResp::decode(token).map_err(malformed)?;
        match resp.neg_state {
            Some(neg_state::REJECT) => {
                return Err(SecurityError::LogonFailure(
                    "the acceptor rejected the SPNEGO negotiation",
                ));
            }
            Some(neg_state::ACCEPT_COMPLETED | neg_state::ACCEPT_INCOMPLETE) | None => {}
            Some(_) => {
                return Err(SecurityError::Malformed {
                    message: "NegTokenResp",
                    reason: "unknown negState",
                });
            }
        }
        if let Some(mech) = &resp.supported_mech {
            let ours = self
                .mech_types
                .first()
                .map(Vec::as_slice)
                .unwrap_or_default();
            // Kerberos under either OID is the same mechanism.
            let same = mech == ours || (is_kerberos(mech) && is_kerberos(ours));
            if !same {
                return Err(SecurityError::LogonFailure(
                    "the acceptor chose another SPNEGO mechanism (a downgrade)",
                ));
            }
        }
        let completed = resp.neg_state == Some(neg_state::ACCEPT_COMPLETED);
        if self.inner.is_established() {
            if let Some(mic) = &resp.mech_list_mic {
                self.check_mic(mic)?;
            }
            if completed {
                self.state = State::Done;
                return Ok(AuthStep::Complete(None));
            }
            let Some(_) = resp.mech_list_mic else {
                return Err(SecurityError::WrongState(
                    "the mechanism is done and the acceptor is not",
                ));
            };
            // The acceptor sent its MIC and waits for ours.
            let mic = self.inner.get_mic(&self.mech_type_list())?;
            return Ok(AuthStep::Continue(
                NegTokenResp {
                    mech_list_mic: Some(mic),
                    ..NegTokenResp::default()
                }
                .encode(),
            ));
        }
        let Some(mech_token) = resp.response_token else {
            return Err(SecurityError::Malformed {
                message: "NegTokenResp",
                reason: "no response token",
            });
        };
        match self.inner.step(Some(&mech_token))? {
            AuthStep::Continue(token) | AuthStep::Complete(Some(token)) if !completed => {
                // One more leg (an alter_context): the acceptor answers accept-completed.
                self.state = State::Negotiating;
                Ok(AuthStep::Continue(
                    NegTokenResp {
                        response_token: Some(token),
                        ..NegTokenResp::default()
                    }
                    .encode(),
                ))
            }
            AuthStep::Complete(None) if completed => {
                self.state = State::Done;
                Ok(AuthStep::Complete(None))
            }
            _ => Err(SecurityError::WrongState(
                "the SPNEGO state and the mechanism's disagree",
            )),
        }
    }
}

impl SecurityProvider for SpnegoInitiator {
    fn auth_type(&self) -> AuthType {
        AuthType::GSS_NEGOTIATE
    }

    fn step(&mut self, peer_token: Option<&[u8]>) -> Result<AuthStep, SecurityError> {
        match (&self.state, peer_token) {
            (State::Initial, None) => {
                let AuthStep::Continue(token) = self.inner.step(None)? else {
                    return Err(SecurityError::WrongState("the mechanism sent nothing"));
                };
                self.state = State::Negotiating;
                Ok(AuthStep::Continue(
                    NegTokenInit {
                        mech_types: self.mech_types.clone(),
                        mech_token: Some(token),
                    }
                    .encode(),
                ))
            }
            (State::Negotiating, Some(token)) => self.respond(token).inspect_err(|_| {
                self.state = State::Failed;
            }),
            _ => Err(SecurityError::WrongState("does not expect a token now")),
        }
    }

    fn is_established(&self) -> bool {
        self.state == State::Done
    }

    fn signature_len(&self) -> usize {
        self.inner.signature_len()
    }

    fn accepts_signature_len(&self, len: usize) -> bool {
        self.inner.accepts_signature_len(len)
    }

    fn header_signing(&mut self, on: bool) {
        self.inner.header_signing(on);
    }

    fn wrap(
        &mut self,
        protection: Protection,
        pdu: &mut [u8],
        stub: Range<usize>,
        signature: &mut [u8],
    ) -> Result<(), SecurityError> {
        self.inner.wrap(protection, pdu, stub, signature)
    }

    fn unwrap(
        &mut self,
        protection: Protection,
        pdu: &mut [u8],
        stub: Range<usize>,
        signature: &[u8],
    ) -> Result<(), SecurityError> {
        self.inner.unwrap(protection, pdu, stub, signature)
    }
}
