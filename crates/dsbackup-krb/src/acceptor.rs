//! The acceptor (server) side of Kerberos for DCE/RPC: the AP-REQ checked against the
//! service's long-term keys, the acceptor's AP-REP (mutual authentication), the client's
//! answering AP-REP of DCE style, then the per-fragment tokens of [RFC 4121].
//!
//! ```text
//! client                                             acceptor
//! bind: GSS token with AP-REQ       -> verify_ap_req: ticket, authenticator, skew, replay
//!                                   <- AP-REP: acceptor subkey, sequence number (bind_ack)
//! auth3: the client's AP-REP        -> under the session key, our sequence number: Complete
//! ```
//!
//! What [`verify_ap_req`] refuses, each with its own [`KrbError`]:
//! - a ticket for a principal the keys do not hold, or that does not decrypt with them
//!   ([`KrbError::NoKey`], [`KrbError::Crypto`]): a ticket for another service;
//! - a ticket outside its validity period, allowing the skew ([`KrbError::TicketExpired`]);
//! - an authenticator that does not decrypt with the ticket's session key, or names another
//!   client than the ticket ([`KrbError::Mismatch`]);
//! - an authenticator whose time is more than [`MAX_SKEW`] from ours ([`KrbError::ClockSkew`]);
//! - an authenticator already seen ([`KrbError::Replay`], from the shared [`ReplayCache`]).
//!
//! Nothing here reads a clock or draws a random number: the time, the acceptor's subkey, its
//! sequence number and the confounders come in through [`AcceptorInputs`].
//!
//! [RFC 4121]: https://www.rfc-editor.org/rfc/rfc4121

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use dsbackup_proto::{
    AuthStep, AuthType, BatchError, PeerIdentity, ProtectedFragment, Protection, SecurityError,
    SecurityProvider, one_by_one,
};

use crate::crypto::{EncType, Key, TokenKey};
use crate::der::KerberosTime;
use crate::error::{CryptoError, KrbError};
use crate::files::KeytabEntry;
use crate::gss::{self, Confounders, gss_flags};
use crate::messages::{
    ApRep, ApReq, Authenticator, EncApRepPart, EncTicketPart, EncryptedData, EncryptionKey,
    PrincipalName, ap_options, usage,
};

/// The largest difference allowed between the client's clock and ours, and past a ticket's
/// end (5 minutes, the default of MIT, Heimdal and Windows).
pub const MAX_SKEW: i64 = 300;

/// Authenticators remembered at most; past it, a new one is refused as if replayed until
/// older ones leave the window (a flood cannot make the cache grow without bound).
const MAX_REMEMBERED: usize = 65_536;

/// The long-term keys of the services an acceptor answers for (the entries of a keytab).
///
/// A ticket is decrypted with the key of its service principal; failing that, with the key of
/// an account principal (one component: `mockdc`, `DC1$`) of the ticket's realm, since an
/// account's keys serve every SPN registered on it (what `samba-tool domain exportkeytab
/// --principal=ACCOUNT` exports, with every encryption type).
#[derive(Clone, Debug, Default)]
pub struct ServiceKeys {
    entries: Vec<KeytabEntry>,
    /// The only service principal accepted, with its realm if given.
    spn: Option<(PrincipalName, Option<String>)>,
}

impl ServiceKeys {
    /// The keys of `entries`; with `spn` (`host/dc1.corp.example`, or `host/dc1@REALM`), only
    /// tickets for that principal are accepted (as `mock-dc --spn` names it).
    pub fn new(entries: Vec<KeytabEntry>, spn: Option<&str>) -> Self {
        let spn = spn.map(|spn| match spn.split_once('@') {
            Some((name, realm)) => (PrincipalName::service(name), Some(realm.to_owned())),
            None => (PrincipalName::service(spn), None),
        });
        let entries = match &spn {
            None => entries,
            Some((name, realm)) => entries
                .into_iter()
                .filter(|e| {
                    (same_principal(&e.principal, name) || e.principal.components.len() == 1)
                        && realm
                            .as_deref()
                            .is_none_or(|r| r.eq_ignore_ascii_case(&e.realm))
                })
                .collect(),
        };
        Self { entries, spn }
    }

    /// Whether there is no key at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The principals the keys are for, as `name@REALM`.
    pub fn principals(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .entries
            .iter()
            .map(|e| format!("{}@{}", e.principal.to_text(), e.realm))
            .collect();
        out.dedup();
        out
    }

    /// The key of `sname@realm` for `etype` (of version `kvno` when the ticket names one,
    /// the newest otherwise): the service principal's own, else its account's.
    fn key_for(
        &self,
        realm: &str,
        sname: &PrincipalName,
        etype: EncType,
        kvno: Option<u32>,
    ) -> Option<&Key> {
        if let Some((name, spn_realm)) = &self.spn
            && (!same_principal(name, sname)
                || spn_realm
                    .as_deref()
                    .is_some_and(|r| !r.eq_ignore_ascii_case(realm)))
        {
            return None;
        }
        let usable = |e: &&KeytabEntry| {
            e.realm.eq_ignore_ascii_case(realm)
                && e.key.etype() == etype
                && kvno.is_none_or(|v| v == e.kvno)
        };
        let own = self
            .entries
            .iter()
            .filter(usable)
            .filter(|e| same_principal(&e.principal, sname))
            .max_by_key(|e| e.kvno);
        own.or_else(|| {
            self.entries
                .iter()
                .filter(usable)
                .filter(|e| e.principal.components.len() == 1)
                .max_by_key(|e| e.kvno)
        })
        .map(|e| &e.key)
    }
}

/// Service principals compare case-insensitively on the host part, as Windows and Samba
/// accept `HOST/DC1.corp.example` for `host/dc1.corp.example`.
fn same_principal(a: &PrincipalName, b: &PrincipalName) -> bool {
    a.components.len() == b.components.len()
        && a.components
            .iter()
            .zip(&b.components)
            .all(|(x, y)| x.eq_ignore_ascii_case(y))
}

/// The authenticators seen within the skew window, shared by every acceptor of a server
/// ([RFC 4120 §3.2.3]): the same authenticator twice is a replay.
///
/// [RFC 4120 §3.2.3]: https://www.rfc-editor.org/rfc/rfc4120#section-3.2.3
#[derive(Debug, Default)]
pub struct ReplayCache {
    /// (client@realm, ctime, cusec) -> the time it may be forgotten.
    seen: HashMap<(String, i64, u32), i64>,
}

impl ReplayCache {
    /// Records an authenticator at `now`; a [`KrbError::Replay`] if it was seen.
    ///
    /// # Errors
    /// [`KrbError::Replay`] for an authenticator already recorded (or a full cache).
    pub fn check(
        &mut self,
        client: &str,
        ctime: KerberosTime,
        cusec: u32,
        now: KerberosTime,
    ) -> Result<(), KrbError> {
        self.seen.retain(|_, forget| *forget > now.0);
        let key = (client.to_owned(), ctime.0, cusec);
        if self.seen.contains_key(&key) || self.seen.len() >= MAX_REMEMBERED {
            return Err(KrbError::Replay);
        }
        // Past ctime + skew the authenticator is refused as skewed anyway.
        self.seen
            .insert(key, ctime.0.max(now.0).saturating_add(MAX_SKEW + 1));
        Ok(())
    }
}

/// What an acceptor needs beyond its per-bind inputs; cheap to clone (one per server).
#[derive(Clone, Debug)]
pub struct AcceptorConfig {
    /// The service keys.
    pub keys: Arc<ServiceKeys>,
    /// The replay cache every acceptor of the server shares.
    pub replay: Arc<Mutex<ReplayCache>>,
    /// The domain a client of the service's own realm is reported in (the NetBIOS domain, as
    /// a Windows DC's PAC gives it); a client of another realm is reported in its realm.
    pub domain: Option<String>,
}

impl AcceptorConfig {
    /// An acceptor configuration with `keys`, a fresh replay cache, clients reported in
    /// their realm.
    pub fn new(keys: ServiceKeys) -> Self {
        Self {
            keys: Arc::new(keys),
            replay: Arc::default(),
            domain: None,
        }
    }
}

/// The caller's inputs of one acceptor: time and randomness.
pub struct AcceptorInputs {
    /// Now.
    pub now: KerberosTime,
    /// The acceptor's first sequence number (random).
    pub seq: u32,
    /// Acceptor subkey material (random; the first bytes make the subkey).
    pub subkey: [u8; 32],
    /// A fresh random confounder per encryption.
    pub confounders: Confounders,
}

impl core::fmt::Debug for AcceptorInputs {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AcceptorInputs")
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// An AP-REQ that passed every check.
#[derive(Clone, Debug)]
pub struct Accepted {
    /// The client's realm.
    pub crealm: String,
    /// The client.
    pub client: PrincipalName,
    /// The service the ticket was for.
    pub service: PrincipalName,
    /// The ticket's session key.
    pub session_key: Key,
    /// The initiator's subkey, if it sent one.
    pub subkey: Option<Key>,
    /// The authenticator's time.
    pub ctime: KerberosTime,
    /// Its microseconds.
    pub cusec: u32,
    /// The initiator's first sequence number.
    pub seq_number: u32,
    /// The GSS flags of the authenticator checksum (0 without one).
    pub gss_flags: u32,
    /// Whether the client asked for mutual authentication.
    pub mutual: bool,
}

/// Checks an AP-REQ (the Kerberos message, GSS framing removed) at `now`; records its
/// authenticator in `replay`.
///
/// # Errors
/// The [`KrbError`] of the first check that fails (see the module documentation).
pub fn verify_ap_req(
    keys: &ServiceKeys,
    replay: &Mutex<ReplayCache>,
    message: &[u8],
    now: KerberosTime,
) -> Result<Accepted, KrbError> {
    let ap_req = ApReq::decode(message)?;
    if ap_req.ap_options & ap_options::USE_SESSION_KEY != 0 {
        return Err(KrbError::Mismatch("user-to-user tickets are not accepted"));
    }
    let ticket = &ap_req.ticket;
    let key = keys
        .key_for(
            &ticket.realm,
            &ticket.sname,
            ticket.enc_part.etype,
            ticket.enc_part.kvno,
        )
        .ok_or_else(|| {
            KrbError::NoKey(format!(
                "{}@{} ({})",
                ticket.sname.to_text(),
                ticket.realm,
                ticket.enc_part.etype
            ))
        })?;
    let part = EncTicketPart::decode(&key.decrypt(usage::TICKET, &ticket.enc_part.cipher)?)?;
    let start = part.starttime.unwrap_or(part.authtime);
    if now.0.saturating_add(MAX_SKEW) < start.0 || now.0.saturating_sub(MAX_SKEW) > part.endtime.0 {
        return Err(KrbError::TicketExpired);
    }
    let session_key = Key::new(part.key.keytype, &part.key.value)?;
    let authenticator = Authenticator::decode(
        &session_key
            .decrypt(usage::AP_REQ_AUTHENTICATOR, &ap_req.authenticator.cipher)
            .map_err(|_| KrbError::Mismatch("the authenticator is not under the ticket's key"))?,
    )?;
    if !authenticator.cname.same_as(&part.cname) || authenticator.crealm != part.crealm {
        return Err(KrbError::Mismatch(
            "the authenticator names another client than the ticket",
        ));
    }
    let skew = authenticator.ctime.0.saturating_sub(now.0);
    if skew.unsigned_abs() > MAX_SKEW.unsigned_abs() {
        return Err(KrbError::ClockSkew(skew));
    }
    let client_text = format!("{}@{}", part.cname.to_text(), part.crealm);
    replay
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .check(&client_text, authenticator.ctime, authenticator.cusec, now)?;
    let flags = match &authenticator.cksum {
        // The GSS checksum ([RFC 4121 §4.1.1]): Lgth, Bnd, Flags (little-endian).
        Some(ck) if ck.cksumtype == 0x8003 => ck
            .value
            .get(20..24)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or(KrbError::Mismatch("the GSS checksum is too short"))?,
        _ => 0,
    };
    let subkey = authenticator
        .subkey
        .as_ref()
        .map(|k| Key::new(k.keytype, &k.value))
        .transpose()?;
    Ok(Accepted {
        crealm: part.crealm,
        client: part.cname,
        service: ticket.sname.clone(),
        session_key,
        subkey,
        ctime: authenticator.ctime,
        cusec: authenticator.cusec,
        seq_number: authenticator.seq_number.unwrap_or(0),
        gss_flags: flags,
        mutual: ap_req.ap_options & ap_options::MUTUAL_REQUIRED != 0,
    })
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    Initial,
    SentApRep,
    Established,
    Failed,
}

/// The server side of Kerberos for DCE/RPC (auth type 16).
#[derive(Debug)]
pub struct KerberosAcceptor {
    config: AcceptorConfig,
    inputs: AcceptorInputs,
    state: State,
    protection: Protection,
    accepted: Option<Accepted>,
    /// The acceptor subkey: the key of every per-message token.
    token_key: Option<TokenKey>,
    send_seq: u64,
    recv_seq: u64,
    /// Whether tokens cover the whole fragment (header signing) or the stub alone.
    header_signing: bool,
    error: Option<KrbError>,
}

impl KerberosAcceptor {
    /// An acceptor for one association.
    pub fn new(config: AcceptorConfig, inputs: AcceptorInputs) -> Self {
        Self {
            send_seq: u64::from(inputs.seq),
            config,
            inputs,
            state: State::Initial,
            protection: Protection::None,
            accepted: None,
            token_key: None,
            recv_seq: 0,
            header_signing: true,
            error: None,
        }
    }

    /// Why the handshake failed, as Kerberos names it (the [`SecurityError`] the association
    /// sees says it in words only).
    pub fn error(&self) -> Option<&KrbError> {
        self.error.as_ref()
    }

    /// The verified AP-REQ, once the first leg passed.
    pub fn accepted(&self) -> Option<&Accepted> {
        self.accepted.as_ref()
    }

    fn fail(&mut self, error: KrbError) -> SecurityError {
        self.state = State::Failed;
        let words = match &error {
            KrbError::ClockSkew(_) => "clock skew too great (KRB_AP_ERR_SKEW)",
            KrbError::TicketExpired => "ticket expired (KRB_AP_ERR_TKT_EXPIRED)",
            KrbError::Replay => "replayed authenticator (KRB_AP_ERR_REPEAT)",
            KrbError::NoKey(_) => "a ticket for another service (KRB_AP_ERR_NOT_US)",
            KrbError::Crypto(_) => "the ticket does not decrypt (KRB_AP_ERR_BAD_INTEGRITY)",
            KrbError::Decode(_) => "malformed AP-REQ",
            KrbError::Mismatch(reason) => reason,
            _ => "Kerberos authentication failed",
        };
        self.error = Some(error);
        SecurityError::LogonFailure(words)
    }

    /// The first leg: the AP-REQ in, our AP-REP out.
    fn accept(&mut self, token: &[u8]) -> Result<Vec<u8>, KrbError> {
        let message = gss::strip_framing(token)
            .map_err(|_| KrbError::Mismatch("not a Kerberos 5 GSS token"))?;
        let accepted = verify_ap_req(
            &self.config.keys,
            &self.config.replay,
            message,
            self.inputs.now,
        )?;
        if accepted.gss_flags & gss_flags::DCE_STYLE == 0 || !accepted.mutual {
            return Err(KrbError::Mismatch(
                "DCE/RPC needs mutual authentication in DCE style",
            ));
        }
        let etype = accepted
            .subkey
            .as_ref()
            .map_or_else(|| accepted.session_key.etype(), Key::etype);
        if !EncType::SUPPORTED.contains(&etype) {
            return Err(KrbError::Crypto(CryptoError::UnsupportedEncType(etype.0)));
        }
        let len = etype.key_len().unwrap_or(16);
        let subkey = Key::new(etype, self.inputs.subkey.get(..len).unwrap_or_default())?;
        let seq = u32::try_from(self.send_seq).unwrap_or(0);
        let part = EncApRepPart {
            ctime: accepted.ctime,
            cusec: accepted.cusec,
            subkey: Some(EncryptionKey {
                keytype: etype,
                value: zeroize::Zeroizing::new(subkey.as_bytes().to_vec()),
            }),
            seq_number: Some(seq),
        };
        let confounder = (self.inputs.confounders)();
        let ap_rep = ApRep {
            enc_part: EncryptedData {
                etype: accepted.session_key.etype(),
                kvno: None,
                cipher: accepted
                    .session_key
                    .encrypt(usage::AP_REP, &confounder, &part.encode()),
            },
        };
        self.recv_seq = u64::from(accepted.seq_number);
        let usages = [usage::ACCEPTOR_SEAL, usage::INITIATOR_SEAL];
        self.token_key = Some(TokenKey::new(subkey, &usages));
        self.accepted = Some(accepted);
        // DCE style: the AP-REP travels without the GSS framing ([MS-KILE §3.4.5.1]).
        Ok(ap_rep.encode())
    }

    /// The last leg: the client's AP-REP must carry our sequence number, under the session
    /// key.
    fn finish(&mut self, token: &[u8]) -> Result<(), KrbError> {
        let accepted = self
            .accepted
            .as_ref()
            .ok_or(KrbError::Misuse("no AP-REQ accepted"))?;
        let message = gss::strip_framing(token)
            .map_err(|_| KrbError::Mismatch("not a Kerberos 5 GSS token"))?;
        let ap_rep = ApRep::decode(message)?;
        let part = EncApRepPart::decode(
            &accepted
                .session_key
                .decrypt(usage::AP_REP, &ap_rep.enc_part.cipher)?,
        )?;
        // Its time is not compared with the authenticator's: impacket sends the time of the
        // moment, and Windows and Samba accept it; the key and our sequence number prove it.
        if part.seq_number.map(u64::from) != Some(self.send_seq) {
            return Err(KrbError::Mismatch(
                "the client's AP-REP does not answer ours",
            ));
        }
        Ok(())
    }

    fn key(&self) -> Result<&TokenKey, SecurityError> {
        match (&self.state, &self.token_key) {
            (State::Established, Some(key)) => Ok(key),
            _ => Err(SecurityError::WrongState("is not established")),
        }
    }
}

impl SecurityProvider for KerberosAcceptor {
    fn auth_type(&self) -> AuthType {
        AuthType::GSS_KERBEROS
    }

    fn step(&mut self, peer_token: Option<&[u8]>) -> Result<AuthStep, SecurityError> {
        match (&self.state, peer_token) {
            (State::Initial, Some(token)) => match self.accept(token) {
                Ok(ap_rep) => {
                    self.state = State::SentApRep;
                    Ok(AuthStep::Continue(ap_rep))
                }
                Err(e) => Err(self.fail(e)),
            },
            (State::SentApRep, Some(token)) => match self.finish(token) {
                Ok(()) => {
                    self.state = State::Established;
                    Ok(AuthStep::Complete(None))
                }
                Err(e) => Err(self.fail(e)),
            },
            _ => Err(SecurityError::WrongState("does not expect a token now")),
        }
    }

    fn require(&mut self, protection: Protection) {
        self.protection = protection;
    }

    fn is_established(&self) -> bool {
        self.state == State::Established
    }

    fn signature_len(&self) -> usize {
        gss::signature_len(
            self.protection,
            self.token_key.as_ref().map(|key| key.key().etype()),
        )
    }

    fn header_signing(&mut self, on: bool) {
        self.header_signing = on;
    }

    fn accepts_signature_len(&self, len: usize) -> bool {
        gss::accepts_signature_len(
            self.protection,
            self.token_key.as_ref().map(|key| key.key().etype()),
            len,
        )
    }

    fn wrap(
        &mut self,
        protection: Protection,
        pdu: &mut [u8],
        stub: Range<usize>,
        signature: &mut [u8],
    ) -> Result<(), SecurityError> {
        let seq = self.send_seq;
        let confounder = (self.inputs.confounders)();
        let key = self.key()?;
        let flags = gss::SENT_BY_ACCEPTOR | gss::ACCEPTOR_SUBKEY;
        let params = (usage::ACCEPTOR_SEAL, usage::ACCEPTOR_SIGN, flags, seq);
        let coverage = (protection, self.header_signing);
        gss::protect(key, params, &confounder, coverage, pdu, stub, signature)?;
        self.send_seq = self.send_seq.wrapping_add(1) & 0xffff_ffff;
        Ok(())
    }

    /// At privacy with an AES key, the fragments' encryptions side by side
    /// (`gss::seal_batch`); otherwise one [`wrap`](Self::wrap) at a time.
    fn wrap_batch(
        &mut self,
        protection: Protection,
        fragments: &mut [ProtectedFragment<'_>],
    ) -> Result<(), BatchError> {
        let etype = self.token_key.as_ref().map(|key| key.key().etype());
        if protection != Protection::Privacy
            || fragments.len() < 2
            || etype == Some(EncType::RC4_HMAC)
        {
            return one_by_one(fragments, |f| {
                self.wrap(protection, f.pdu, f.stub.clone(), f.signature)
            });
        }
        let confounders: Vec<[u8; 16]> = fragments
            .iter()
            .map(|_| (self.inputs.confounders)())
            .collect();
        let key = self.key().map_err(|error| BatchError { index: 0, error })?;
        let flags = gss::SENT_BY_ACCEPTOR | gss::ACCEPTOR_SUBKEY;
        let params = (usage::ACCEPTOR_SEAL, flags, self.send_seq);
        let (sealed, result) =
            gss::seal_batch(key, params, &confounders, self.header_signing, fragments);
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
        let key = self.key()?;
        let params = (
            usage::INITIATOR_SEAL,
            usage::INITIATOR_SIGN,
            gss::ACCEPTOR_SUBKEY,
        );
        let coverage = (protection, self.header_signing);
        let seq = gss::check(key, params, coverage, pdu, stub, signature)?;
        if seq != self.recv_seq {
            return Err(SecurityError::BadSignature);
        }
        self.recv_seq = self.recv_seq.wrapping_add(1) & 0xffff_ffff;
        Ok(())
    }

    fn peer_identity(&self) -> Option<PeerIdentity> {
        if self.state != State::Established {
            return None;
        }
        let accepted = self.accepted.as_ref()?;
        let own_realm = self
            .config
            .keys
            .entries
            .iter()
            .any(|e| e.realm.eq_ignore_ascii_case(&accepted.crealm));
        let domain = match &self.config.domain {
            Some(domain) if own_realm => domain.clone(),
            _ => accepted.crealm.clone(),
        };
        Some(PeerIdentity {
            user: accepted.client.to_text(),
            domain,
        })
    }
}
