//! SPNEGO ([RFC 4178]) as DCE/RPC auth type 9 (RPC_C_AUTHN_GSS_NEGOTIATE), around Kerberos or
//! NTLM: the tokens (NegTokenInit, NegTokenResp) and a provider on each side that wraps the
//! mechanism's tokens in them and hands fragment protection to the mechanism.
//!
//! ```text
//! initiator                                              acceptor
//! bind:   NegTokenInit(mechTypes, mechToken)          -> the first mechanism of the list it has
//!   its first:   NegTokenResp(accept-incomplete, supportedMech, responseToken) <- bind_ack
//!   a later one: NegTokenResp(request-mic, supportedMech)                      <- bind_ack
//!                NegTokenResp(responseToken = the mechanism's first token) -> (alter_context)
//! alter:  NegTokenResp(responseToken, [mechListMIC])  -> the mechanism completes
//!         NegTokenResp(accept-completed, [mechListMIC]) <- alter_context_resp
//! ```
//!
//! The mechanism list MIC ([RFC 4178 §5]) is a MIC of the chosen mechanism over the DER
//! MechTypeList the initiator sent. Both sides exchange it when the context can sign and
//! either the acceptor chose a mechanism other than the initiator's first (the negotiation a
//! man in the middle could have steered), or NTLM's AUTHENTICATE carried a MIC ([MS-SPNG]
//! asks for the mechanism list MIC then, and Samba's `gensec_spnego` does the same), or the
//! peer asked for it (`request-mic`) or sent its own (Samba does, for Kerberos). Once both went,
//! NTLM keys its RC4 handles afresh ([`SpnegoMechanism::mech_list_mic_done`]). A MIC that does
//! not verify, or is missing where it must come, is [`SecurityError::MechListMic`]; an
//! acceptor choosing a mechanism the initiator did not offer (NTLM, to an initiator that
//! requires Kerberos) is [`SecurityError::Downgrade`].
//!
//! A context that cannot sign (NTLM at the connect level negotiates no signing) exchanges no
//! MIC, as with Samba: that level protects nothing after the handshake either.
//!
//! [RFC 4178]: https://www.rfc-editor.org/rfc/rfc4178
//! [RFC 4178 §5]: https://www.rfc-editor.org/rfc/rfc4178#section-5
//! [MS-SPNG]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-spng/

use core::ops::Range;

use dsbackup_proto::{
    AuthStep, AuthType, BatchError, PeerIdentity, ProtectedFragment, Protection, SecurityError,
    SecurityProvider, SpnegoMechanism,
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
    /// The acceptor chose a mechanism other than the initiator's first and asks for the
    /// mechanism list MIC.
    pub const REQUEST_MIC: u32 = 3;
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
    /// The mechanism list MIC (see the module documentation).
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

/// The DER MechTypeList of `oids`: what the mechanism list MICs cover.
pub(crate) fn mech_type_list(oids: &[Vec<u8>]) -> Vec<u8> {
    der::sequence_of(oids.iter().map(|oid| der::element(OID, oid)))
}

/// Makes the acceptor of a mechanism (by OID), `None` for one the server does not have.
pub type MechFactory = Box<dyn FnMut(&[u8]) -> Option<Box<dyn SpnegoMechanism>> + Send>;

#[derive(Debug, PartialEq, Eq)]
enum State {
    Initial,
    Negotiating,
    Done,
    Failed,
}

/// Where the mechanism list MICs stand on one side.
#[derive(Debug, Default)]
struct Mics {
    /// The acceptor chose a mechanism other than the initiator's first.
    downgraded: bool,
    /// The peer asked for the MIC (`request-mic`) or sent its own.
    requested: bool,
    sent: bool,
    checked: bool,
}

impl Mics {
    /// Whether the MICs must go both ways with `mechanism`, once established.
    fn needed(&self, mechanism: &dyn SpnegoMechanism) -> bool {
        mechanism.can_sign()
            && (self.downgraded || self.requested || self.sent || mechanism.wants_mech_list_mic())
    }

    fn check(
        &mut self,
        mechanism: &mut dyn SpnegoMechanism,
        list: &[u8],
        mic: &[u8],
    ) -> Result<(), SecurityError> {
        mechanism
            .verify_mic(list, mic)
            .map_err(|_| SecurityError::MechListMic("does not verify"))?;
        self.checked = true;
        Ok(())
    }

    fn sign(
        &mut self,
        mechanism: &mut dyn SpnegoMechanism,
        list: &[u8],
    ) -> Result<Vec<u8>, SecurityError> {
        let mic = mechanism.get_mic(list)?;
        self.sent = true;
        Ok(mic)
    }

    /// SPNEGO is done: the mechanism learns whether MICs went both ways.
    fn finish(&self, mechanism: &mut dyn SpnegoMechanism) {
        if self.sent && self.checked {
            mechanism.mech_list_mic_done();
        }
    }
}

/// The acceptor side of SPNEGO: the first mechanism of the initiator's list the server has,
/// with the initiator's optimistic token when it is the first; a later one is named with
/// `request-mic` and negotiated, protected by the mechanism list MIC.
pub struct SpnegoAcceptor {
    factory: MechFactory,
    inner: Option<Box<dyn SpnegoMechanism>>,
    protection: Protection,
    /// Told to the mechanism once it exists.
    header_signing: bool,
    state: State,
    /// The initiator's MechTypeList, DER.
    list: Vec<u8>,
    mics: Mics,
}

impl core::fmt::Debug for SpnegoAcceptor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SpnegoAcceptor")
            .field("inner", &self.inner)
            .field("state", &self.state)
            .field("mics", &self.mics)
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
            list: Vec::new(),
            mics: Mics::default(),
        }
    }

    /// The mechanism's provider, once chosen.
    pub fn mechanism(&self) -> Option<&dyn SpnegoMechanism> {
        self.inner.as_deref()
    }

    fn first(&mut self, token: &[u8]) -> Result<AuthStep, SecurityError> {
        let init = NegTokenInit::decode(token).map_err(malformed)?;
        self.list = mech_type_list(&init.mech_types);
        let factory = &mut self.factory;
        let Some((index, mut inner)) = init
            .mech_types
            .iter()
            .enumerate()
            .find_map(|(index, oid)| factory(oid).map(|inner| (index, inner)))
        else {
            return Err(SecurityError::NoCommonMechanism);
        };
        let chosen = init.mech_types.get(index).cloned();
        inner.require(self.protection);
        inner.header_signing(self.header_signing);
        let inner = self.inner.insert(inner);
        match init.mech_token {
            Some(mech_token) if index == 0 => {
                let step = inner.step(Some(&mech_token));
                self.answer(step, chosen, None)
            }
            _ => {
                // No token of the chosen mechanism yet: name it and wait for its first. A
                // mechanism other than the initiator's first is a negotiation the MICs protect.
                self.mics.downgraded = index > 0;
                self.state = State::Negotiating;
                Ok(AuthStep::Continue(
                    NegTokenResp {
                        neg_state: Some(if self.mics.downgraded {
                            neg_state::REQUEST_MIC
                        } else {
                            neg_state::ACCEPT_INCOMPLETE
                        }),
                        supported_mech: chosen,
                        ..NegTokenResp::default()
                    }
                    .encode(),
                ))
            }
        }
    }

    fn next(&mut self, token: &[u8]) -> Result<AuthStep, SecurityError> {
        let resp = NegTokenResp::decode(token).map_err(malformed)?;
        if resp.neg_state == Some(neg_state::REJECT) {
            return Err(SecurityError::LogonFailure("the initiator gave up"));
        }
        let inner = self
            .inner
            .as_deref_mut()
            .ok_or(SecurityError::WrongState("has no mechanism yet"))?;
        if !inner.is_established() {
            let Some(mech_token) = resp.response_token else {
                return Err(SecurityError::Malformed {
                    message: "NegTokenResp",
                    reason: "no response token",
                });
            };
            let step = inner.step(Some(&mech_token));
            return self.answer(step, None, resp.mech_list_mic);
        }
        // The mechanism is done and our MIC went: only the initiator's may come.
        if resp.response_token.is_some() {
            return Err(SecurityError::WrongState(
                "got a mechanism token after the mechanism completed",
            ));
        }
        let mic = resp
            .mech_list_mic
            .ok_or(SecurityError::MechListMic("is missing"))?;
        self.mics.check(inner, &self.list, &mic)?;
        self.mics.finish(inner);
        self.state = State::Done;
        Ok(AuthStep::Complete(Some(
            NegTokenResp {
                neg_state: Some(neg_state::ACCEPT_COMPLETED),
                ..NegTokenResp::default()
            }
            .encode(),
        )))
    }

    /// Hands the mechanism's answer on in a NegTokenResp, with the MICs once it completes.
    fn answer(
        &mut self,
        step: Result<AuthStep, SecurityError>,
        supported_mech: Option<Vec<u8>>,
        peer_mic: Option<Vec<u8>>,
    ) -> Result<AuthStep, SecurityError> {
        let inner = self
            .inner
            .as_deref_mut()
            .ok_or(SecurityError::WrongState("has no mechanism yet"))?;
        let token = match step? {
            AuthStep::Continue(token) => {
                self.state = State::Negotiating;
                return Ok(AuthStep::Continue(
                    NegTokenResp {
                        neg_state: Some(neg_state::ACCEPT_INCOMPLETE),
                        supported_mech,
                        response_token: Some(token),
                        mech_list_mic: None,
                    }
                    .encode(),
                ));
            }
            AuthStep::Complete(token) => token,
        };
        self.mics.requested |= peer_mic.is_some();
        if !self.mics.needed(inner) {
            self.state = State::Done;
            return Ok(AuthStep::Complete(Some(
                NegTokenResp {
                    neg_state: Some(neg_state::ACCEPT_COMPLETED),
                    supported_mech,
                    response_token: token,
                    mech_list_mic: None,
                }
                .encode(),
            )));
        }
        if let Some(mic) = &peer_mic {
            self.mics.check(inner, &self.list, mic)?;
        }
        let ours = self.mics.sign(inner, &self.list)?;
        let neg_state = if self.mics.checked {
            // Both went: done.
            self.mics.finish(inner);
            self.state = State::Done;
            neg_state::ACCEPT_COMPLETED
        } else {
            // Ours goes first; the initiator's comes in one more leg.
            self.state = State::Negotiating;
            neg_state::ACCEPT_INCOMPLETE
        };
        let resp = NegTokenResp {
            neg_state: Some(neg_state),
            supported_mech,
            response_token: token,
            mech_list_mic: Some(ours),
        }
        .encode();
        Ok(if self.state == State::Done {
            AuthStep::Complete(Some(resp))
        } else {
            AuthStep::Continue(resp)
        })
    }

    fn inner(&mut self) -> Result<&mut Box<dyn SpnegoMechanism>, SecurityError> {
        self.inner
            .as_mut()
            .ok_or(SecurityError::WrongState("has no mechanism yet"))
    }
}

impl SecurityProvider for SpnegoAcceptor {
    fn auth_type(&self) -> AuthType {
        AuthType::GSS_NEGOTIATE
    }

    fn step(&mut self, peer_token: Option<&[u8]>) -> Result<AuthStep, SecurityError> {
        let result = match (&self.state, peer_token) {
            (State::Initial, Some(token)) => self.first(token),
            (State::Negotiating, Some(token)) => self.next(token),
            _ => return Err(SecurityError::WrongState("does not expect a token now")),
        };
        result.inspect_err(|_| self.state = State::Failed)
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

    fn wrap_batch(
        &mut self,
        protection: Protection,
        fragments: &mut [ProtectedFragment<'_>],
    ) -> Result<(), BatchError> {
        self.inner()
            .map_err(|error| BatchError { index: 0, error })?
            .wrap_batch(protection, fragments)
    }

    fn unwrap_batch(
        &mut self,
        protection: Protection,
        fragments: &mut [ProtectedFragment<'_>],
    ) -> Result<(), BatchError> {
        self.inner()
            .map_err(|error| BatchError { index: 0, error })?
            .unwrap_batch(protection, fragments)
    }

    fn peer_identity(&self) -> Option<PeerIdentity> {
        if self.state != State::Done {
            return None;
        }
        self.inner.as_ref()?.peer_identity()
    }
}

/// One mechanism an initiator offers: the OIDs it is listed under and its provider.
#[derive(Debug)]
pub struct Offer {
    oids: Vec<Vec<u8>>,
    mechanism: Box<dyn SpnegoMechanism>,
}

impl Offer {
    /// `mechanism`, listed under `oids` (OID contents, preferred first).
    pub fn new(oids: Vec<Vec<u8>>, mechanism: Box<dyn SpnegoMechanism>) -> Self {
        Self { oids, mechanism }
    }

    /// Kerberos under both its OIDs, the misencoded one first, as Windows offers it.
    pub fn kerberos(initiator: KerberosInitiator) -> Self {
        Self::new(
            vec![MS_KRB5_OID.to_vec(), KRB5_OID.to_vec()],
            Box::new(initiator),
        )
    }

    /// NTLM (an NTLM initiator, which `dsbackup-ntlm` provides).
    pub fn ntlm(initiator: Box<dyn SpnegoMechanism>) -> Self {
        Self::new(vec![NTLM_OID.to_vec()], initiator)
    }

    /// Whether the acceptor's `supportedMech` names this mechanism.
    fn is(&self, oid: &[u8]) -> bool {
        self.oids.iter().any(|ours| ours == oid)
    }
}

/// The initiator side of SPNEGO: offers its mechanisms in order (Kerberos, then NTLM, as
/// Windows' Negotiate), the first with its optimistic token, and follows the acceptor to a
/// later one it offered; a mechanism it did not offer is refused as a downgrade (an initiator
/// offering Kerberos alone thus never ends on NTLM). The mechanism list MICs go as the module
/// documentation says.
#[derive(Debug)]
pub struct SpnegoInitiator {
    offers: Vec<Offer>,
    /// The offer in use.
    current: usize,
    /// Whether the acceptor has answered yet (it may change the mechanism only then).
    answered: bool,
    /// The MechTypeList sent, DER.
    list: Vec<u8>,
    state: State,
    mics: Mics,
}

impl SpnegoInitiator {
    /// SPNEGO offering `offers` in this order.
    pub fn new(offers: Vec<Offer>) -> Self {
        let oids: Vec<Vec<u8>> = offers.iter().flat_map(|o| o.oids.clone()).collect();
        Self {
            list: mech_type_list(&oids),
            offers,
            current: 0,
            answered: false,
            state: State::Initial,
            mics: Mics::default(),
        }
    }

    /// SPNEGO around a Kerberos initiator alone.
    pub fn kerberos(inner: KerberosInitiator) -> Self {
        Self::new(vec![Offer::kerberos(inner)])
    }

    /// The first OID of the mechanism in use (the acceptor's choice, once it answered).
    pub fn mechanism_oid(&self) -> Option<&[u8]> {
        self.offers
            .get(self.current)
            .and_then(|offer| offer.oids.first())
            .map(Vec::as_slice)
    }

    fn mech(&mut self) -> Result<&mut (dyn SpnegoMechanism + 'static), SecurityError> {
        self.offers
            .get_mut(self.current)
            .map(|offer| offer.mechanism.as_mut())
            .ok_or(SecurityError::WrongState("has no mechanism to offer"))
    }

    fn start(&mut self) -> Result<AuthStep, SecurityError> {
        let AuthStep::Continue(token) = self.mech()?.step(None)? else {
            return Err(SecurityError::WrongState("the mechanism sent nothing"));
        };
        self.state = State::Negotiating;
        let mech_types = self
            .offers
            .iter()
            .flat_map(|offer| offer.oids.clone())
            .collect();
        Ok(AuthStep::Continue(
            NegTokenInit {
                mech_types,
                mech_token: Some(token),
            }
            .encode(),
        ))
    }

    /// Follows the acceptor to the mechanism it named, when it is not the one in use.
    fn follow(&mut self, mech: &[u8]) -> Result<bool, SecurityError> {
        if self.offers.get(self.current).is_some_and(|o| o.is(mech)) {
            return Ok(false);
        }
        let Some(index) = self.offers.iter().position(|offer| offer.is(mech)) else {
            return Err(SecurityError::Downgrade(
                "the SPNEGO acceptor chose a mechanism this client does not accept",
            ));
        };
        if self.answered {
            return Err(SecurityError::WrongState(
                "the SPNEGO acceptor changed its mechanism",
            ));
        }
        self.current = index;
        self.mics.downgraded = true;
        Ok(true)
    }

    fn respond(&mut self, token: &[u8]) -> Result<AuthStep, SecurityError> {
        let resp = NegTokenResp::decode(token).map_err(malformed)?;
        match resp.neg_state {
            Some(neg_state::REJECT) => {
                return Err(SecurityError::LogonFailure(
                    "the acceptor rejected the SPNEGO negotiation",
                ));
            }
            Some(neg_state::REQUEST_MIC) => self.mics.requested = true,
            Some(neg_state::ACCEPT_COMPLETED | neg_state::ACCEPT_INCOMPLETE) | None => {}
            Some(_) => {
                return Err(SecurityError::Malformed {
                    message: "NegTokenResp",
                    reason: "unknown negState",
                });
            }
        }
        let switched = match &resp.supported_mech {
            Some(mech) => self.follow(mech)?,
            None => false,
        };
        self.answered = true;
        let completed = resp.neg_state == Some(neg_state::ACCEPT_COMPLETED);
        if switched {
            // The acceptor has seen no token of this mechanism: its first goes now.
            if resp.response_token.is_some() || completed {
                return Err(SecurityError::Malformed {
                    message: "NegTokenResp",
                    reason: "a token of a mechanism not yet started",
                });
            }
            let AuthStep::Continue(first) = self.mech()?.step(None)? else {
                return Err(SecurityError::WrongState("the mechanism sent nothing"));
            };
            return Ok(AuthStep::Continue(
                NegTokenResp {
                    response_token: Some(first),
                    ..NegTokenResp::default()
                }
                .encode(),
            ));
        }
        let list = self.list.clone();
        let established = self.mech()?.is_established();
        if !established {
            let Some(mech_token) = resp.response_token else {
                return Err(SecurityError::Malformed {
                    message: "NegTokenResp",
                    reason: "no response token",
                });
            };
            let last = match self.mech()?.step(Some(&mech_token))? {
                AuthStep::Continue(token) if !completed => {
                    return Ok(AuthStep::Continue(
                        NegTokenResp {
                            response_token: Some(token),
                            ..NegTokenResp::default()
                        }
                        .encode(),
                    ));
                }
                AuthStep::Complete(token) => token,
                AuthStep::Continue(_) => {
                    return Err(SecurityError::WrongState(
                        "the SPNEGO state and the mechanism's disagree",
                    ));
                }
            };
            if !completed {
                // Our last token (an alter_context), with our MIC when it is due: the
                // acceptor answers accept-completed (with its MIC).
                let mut mics = core::mem::take(&mut self.mics);
                let mic = if mics.needed(self.mech()?) {
                    Some(mics.sign(self.mech()?, &list)?)
                } else {
                    None
                };
                self.mics = mics;
                if last.is_none() && mic.is_none() {
                    return Err(SecurityError::WrongState(
                        "the mechanism is done and the acceptor is not",
                    ));
                }
                return Ok(AuthStep::Continue(
                    NegTokenResp {
                        response_token: last,
                        mech_list_mic: mic,
                        ..NegTokenResp::default()
                    }
                    .encode(),
                ));
            }
            if last.is_some() {
                return Err(SecurityError::WrongState(
                    "the acceptor completed before our last token",
                ));
            }
        } else if resp.response_token.is_some() {
            return Err(SecurityError::WrongState(
                "got a mechanism token after the mechanism completed",
            ));
        }
        // The mechanism is done: the MICs.
        let mut mics = core::mem::take(&mut self.mics);
        let result = self.close(&mut mics, &list, resp.mech_list_mic.as_deref(), completed);
        self.mics = mics;
        result
    }

    /// The mechanism is established: checks the acceptor's MIC, sends ours when it waits for
    /// it, and ends when it says accept-completed.
    fn close(
        &mut self,
        mics: &mut Mics,
        list: &[u8],
        peer_mic: Option<&[u8]>,
        completed: bool,
    ) -> Result<AuthStep, SecurityError> {
        let mech = self.mech()?;
        if let Some(mic) = peer_mic {
            mics.requested = true;
            if !mics.checked {
                mics.check(mech, list, mic)?;
            }
        }
        if completed {
            if mics.needed(mech) && !mics.checked {
                return Err(SecurityError::MechListMic("is missing"));
            }
            mics.finish(mech);
            self.state = State::Done;
            return Ok(AuthStep::Complete(None));
        }
        if peer_mic.is_none() || mics.sent {
            return Err(SecurityError::WrongState(
                "the mechanism is done and the acceptor is not",
            ));
        }
        // The acceptor sent its MIC and waits for ours.
        let mic = mics.sign(mech, list)?;
        Ok(AuthStep::Continue(
            NegTokenResp {
                mech_list_mic: Some(mic),
                ..NegTokenResp::default()
            }
            .encode(),
        ))
    }
}

impl SecurityProvider for SpnegoInitiator {
    fn auth_type(&self) -> AuthType {
        AuthType::GSS_NEGOTIATE
    }

    fn step(&mut self, peer_token: Option<&[u8]>) -> Result<AuthStep, SecurityError> {
        let result = match (&self.state, peer_token) {
            (State::Initial, None) => self.start(),
            (State::Negotiating, Some(token)) => self.respond(token),
            _ => return Err(SecurityError::WrongState("does not expect a token now")),
        };
        result.inspect_err(|_| self.state = State::Failed)
    }

    fn is_established(&self) -> bool {
        self.state == State::Done
    }

    fn signature_len(&self) -> usize {
        self.offers
            .get(self.current)
            .map_or(16, |offer| offer.mechanism.signature_len())
    }

    fn accepts_signature_len(&self, len: usize) -> bool {
        self.offers
            .get(self.current)
            .is_some_and(|offer| offer.mechanism.accepts_signature_len(len))
    }

    fn header_signing(&mut self, on: bool) {
        // Told before the acceptor has chosen: every mechanism that may be chosen hears it.
        for offer in &mut self.offers {
            offer.mechanism.header_signing(on);
        }
    }

    fn wrap(
        &mut self,
        protection: Protection,
        pdu: &mut [u8],
        stub: Range<usize>,
        signature: &mut [u8],
    ) -> Result<(), SecurityError> {
        self.mech()?.wrap(protection, pdu, stub, signature)
    }

    fn unwrap(
        &mut self,
        protection: Protection,
        pdu: &mut [u8],
        stub: Range<usize>,
        signature: &[u8],
    ) -> Result<(), SecurityError> {
        self.mech()?.unwrap(protection, pdu, stub, signature)
    }

    fn wrap_batch(
        &mut self,
        protection: Protection,
        fragments: &mut [ProtectedFragment<'_>],
    ) -> Result<(), BatchError> {
        self.mech()
            .map_err(|error| BatchError { index: 0, error })?
            .wrap_batch(protection, fragments)
    }

    fn unwrap_batch(
        &mut self,
        protection: Protection,
        fragments: &mut [ProtectedFragment<'_>],
    ) -> Result<(), BatchError> {
        self.mech()
            .map_err(|error| BatchError { index: 0, error })?
            .unwrap_batch(protection, fragments)
    }
}

/// Kerberos inside SPNEGO: the mechanism list MIC is a MIC token ([RFC 4121 §4.2.6.1]) under
/// the context's key.
///
/// [RFC 4121 §4.2.6.1]: https://www.rfc-editor.org/rfc/rfc4121#section-4.2.6.1
impl SpnegoMechanism for KerberosInitiator {
    fn can_sign(&self) -> bool {
        self.is_established()
    }

    fn get_mic(&mut self, message: &[u8]) -> Result<Vec<u8>, SecurityError> {
        Self::get_mic(self, message)
    }

    fn verify_mic(&mut self, message: &[u8], mic: &[u8]) -> Result<(), SecurityError> {
        self.verify_peer_mic(message, mic)
    }
}

/// The Kerberos acceptor makes no mechanism list MIC: SPNEGO takes Kerberos from it only as
/// the initiator's first mechanism, where none is needed.
impl SpnegoMechanism for crate::acceptor::KerberosAcceptor {}
