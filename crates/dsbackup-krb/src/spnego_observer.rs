//! SPNEGO (auth type 9) followed by a third party, for `dsbackup inspect`: the tokens are
//! unwrapped and the mechanism's own handed to an eavesdropper of NTLM (which knows the
//! password); each direction's mechanism list MIC is checked as that direction's first
//! signature before the RC4 handles start afresh, as both ends do. Kerberos inside SPNEGO is
//! not followed (the observer would need the service's keytab).

use dsbackup_proto::observe::{Eavesdropper, HandshakeObserver, ObservedKeys, Sender};
use dsbackup_proto::{AuthType, SecurityError};

use crate::spnego::{NTLM_OID, NegTokenInit, NegTokenResp, mech_type_list};

/// Follows SPNEGO around NTLM with `ntlm` (an eavesdropper of auth type 10, such as
/// `dsbackup_ntlm::NtlmEavesdropper`), and every other auth type as `ntlm` does.
#[derive(Debug)]
pub struct SpnegoEavesdropper {
    ntlm: Box<dyn Eavesdropper>,
}

impl SpnegoEavesdropper {
    /// SPNEGO around what `ntlm` follows.
    pub fn new(ntlm: Box<dyn Eavesdropper>) -> Self {
        Self { ntlm }
    }
}

impl Eavesdropper for SpnegoEavesdropper {
    fn handshake(&self, auth_type: AuthType) -> Option<Box<dyn HandshakeObserver>> {
        if auth_type != AuthType::GSS_NEGOTIATE {
            return self.ntlm.handshake(auth_type);
        }
        let inner = self.ntlm.handshake(AuthType::WINNT)?;
        Some(Box::new(SpnegoHandshake {
            inner,
            list: None,
            ntlm: false,
            keys: None,
            mics: [false; 2],
        }))
    }
}

/// One SPNEGO context being followed.
#[derive(Debug)]
struct SpnegoHandshake {
    inner: Box<dyn HandshakeObserver>,
    /// The initiator's MechTypeList, DER, once its NegTokenInit went by.
    list: Option<Vec<u8>>,
    /// Whether the mechanism in use is NTLM.
    ntlm: bool,
    /// NTLM's keys, held until the mechanism list MICs went both ways.
    keys: Option<ObservedKeys>,
    /// The client's and the server's MIC checked.
    mics: [bool; 2],
}

impl SpnegoHandshake {
    /// Checks `sender`'s mechanism list MIC; the keys, once both are checked.
    fn mic(&mut self, sender: Sender, mic: &[u8]) -> Result<Option<ObservedKeys>, SecurityError> {
        let (Some(keys), Some(list)) = (self.keys.as_mut(), self.list.as_deref()) else {
            return Err(SecurityError::WrongState(
                "a mechanism list MIC before the mechanism completed",
            ));
        };
        let (direction, index) = match sender {
            Sender::Client => (&mut keys.from_client, 0),
            Sender::Server => (&mut keys.from_server, 1),
        };
        direction
            .verify_mic(list, mic)
            .map_err(|_| SecurityError::MechListMic("does not verify"))?;
        if let Some(checked) = self.mics.get_mut(index) {
            *checked = true;
        }
        if self.mics != [true; 2] {
            return Ok(None);
        }
        Ok(self.keys.take().map(|mut keys| {
            keys.from_client.mech_list_mic_done();
            keys.from_server.mech_list_mic_done();
            keys
        }))
    }
}

impl HandshakeObserver for SpnegoHandshake {
    fn token(
        &mut self,
        sender: Sender,
        token: &[u8],
    ) -> Result<Option<ObservedKeys>, SecurityError> {
        let malformed = |e: crate::error::DecodeError| SecurityError::Malformed {
            message: e.what,
            reason: e.reason,
        };
        if self.list.is_none() {
            let init = NegTokenInit::decode(token).map_err(malformed)?;
            self.list = Some(mech_type_list(&init.mech_types));
            self.ntlm = init.mech_types.first().is_some_and(|oid| oid == NTLM_OID);
            return match init.mech_token {
                Some(first) if self.ntlm => self.inner.token(sender, &first),
                _ => Ok(None),
            };
        }
        let resp = NegTokenResp::decode(token).map_err(malformed)?;
        if let Some(mech) = &resp.supported_mech {
            self.ntlm = mech == NTLM_OID;
        }
        if !self.ntlm && sender == Sender::Server {
            return Err(SecurityError::Unsupported(
                "Kerberos inside SPNEGO is not followed",
            ));
        }
        if let Some(mech_token) = resp.response_token.as_deref().filter(|_| self.ntlm)
            && let Some(keys) = self.inner.token(sender, mech_token)?
        {
            match resp.mech_list_mic.as_deref() {
                // The MICs follow: the keys are handed over once both are checked.
                Some(mic) => {
                    self.keys = Some(keys);
                    return self.mic(sender, mic);
                }
                None => return Ok(Some(keys)),
            }
        }
        match resp.mech_list_mic.as_deref() {
            Some(mic) if self.keys.is_some() => self.mic(sender, mic),
            _ => Ok(None),
        }
    }
}
