//! The client's KDC exchanges as state machines: the bytes to send come out, the bytes
//! received go in; the driver (the transport) moves them over UDP or TCP port 88.
//!
//! ```text
//! AsExchange::new(..)       -> AS-REQ (no pre-authentication; asks which etype and salt)
//! handle(KRB-ERROR 25)      -> AsStep::Send(AS-REQ with PA-ENC-TIMESTAMP)
//! handle(AS-REP)            -> AsStep::Done(Credential: the TGT and its session key)
//! TgsExchange::new(tgt, ..) -> TGS-REQ;  handle(TGS-REP) -> Credential for the service
//! ```
//!
//! Every answer is checked against its request: message type, nonce, client and server names,
//! and the integrity checksum of its encrypted part (which only the right key passes: a wrong
//! password surfaces as [`CryptoError::Integrity`] on the AS-REP, or as the KDC's own
//! `KDC_ERR_PREAUTH_FAILED`).

use zeroize::Zeroizing;

use crate::crypto::{EncType, Key};
use crate::der::KerberosTime;
use crate::error::{CryptoError, KrbError};
use crate::messages::{
    ApReq, Authenticator, Checksum, EncKdcRepPart, EncTicketPart, EncryptedData, EncryptionKey,
    ErrorCode, EtypeInfo2, KdcRep, KdcReply, KdcReq, PaData, PrincipalName, Ticket, kdc_options,
    pa_type, usage,
};

/// What the client proves its identity with.
#[derive(Clone)]
pub enum Secret {
    /// A password: keys are derived with the salt the KDC names.
    Password(Zeroizing<String>),
    /// Long-term keys (from a keytab), any of which the KDC may ask for.
    Keys(Vec<Key>),
}

impl core::fmt::Debug for Secret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Password(_) => f.write_str("Password(<redacted>)"),
            Self::Keys(keys) => write!(f, "Keys({keys:?})"),
        }
    }
}

/// A ticket and what goes with it: the result of an AS or TGS exchange, or an entry of a
/// credential cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    /// The client's realm.
    pub crealm: String,
    /// The client.
    pub client: PrincipalName,
    /// The service's realm.
    pub srealm: String,
    /// The service.
    pub server: PrincipalName,
    /// The ticket.
    pub ticket: Ticket,
    /// The session key.
    pub session_key: Key,
    /// When the client authenticated.
    pub authtime: KerberosTime,
    /// When the ticket stops being valid.
    pub endtime: KerberosTime,
    /// Ticket flags.
    pub flags: u32,
}

impl Credential {
    /// Whether the ticket is still valid at `now`.
    pub fn valid_at(&self, now: KerberosTime) -> bool {
        now < self.endtime
    }

    /// What a KDC hands out for `grant`: a ticket under the service's long-term key
    /// (`service_key`, version `kvno`) with the grant's session key. For tests and mock
    /// servers that hold the service's keytab and stand in for a KDC.
    pub fn issue(
        grant: Grant,
        service_key: &Key,
        kvno: Option<u32>,
        confounder: &[u8; 16],
    ) -> Self {
        let part = EncTicketPart {
            flags: grant.flags,
            key: EncryptionKey {
                keytype: grant.session_key.etype(),
                value: Zeroizing::new(grant.session_key.as_bytes().to_vec()),
            },
            crealm: grant.crealm.clone(),
            cname: grant.client.clone(),
            authtime: grant.authtime,
            starttime: None,
            endtime: grant.endtime,
        };
        let ticket = Ticket {
            realm: grant.srealm.clone(),
            sname: grant.server.clone(),
            enc_part: EncryptedData {
                etype: service_key.etype(),
                kvno,
                cipher: service_key.encrypt(usage::TICKET, confounder, &part.encode()),
            },
        };
        Self {
            crealm: grant.crealm,
            client: grant.client,
            srealm: grant.srealm,
            server: grant.server,
            ticket,
            session_key: grant.session_key,
            authtime: grant.authtime,
            endtime: grant.endtime,
            flags: grant.flags,
        }
    }
}

/// The contents of a ticket a KDC grants (see [`Credential::issue`]).
#[derive(Clone, Debug)]
pub struct Grant {
    /// The client's realm.
    pub crealm: String,
    /// The client.
    pub client: PrincipalName,
    /// The service's realm.
    pub srealm: String,
    /// The service.
    pub server: PrincipalName,
    /// The session key.
    pub session_key: Key,
    /// When the client authenticated (and the ticket starts).
    pub authtime: KerberosTime,
    /// When the ticket ends.
    pub endtime: KerberosTime,
    /// Ticket flags.
    pub flags: u32,
}

/// The caller's inputs of one request: time and randomness.
#[derive(Clone, Copy, Debug)]
pub struct Inputs {
    /// The time now.
    pub now: KerberosTime,
    /// Microseconds of `now`.
    pub usec: u32,
    /// A fresh random nonce.
    pub nonce: u32,
    /// A fresh random confounder.
    pub confounder: [u8; 16],
}

/// How long a requested ticket should last.
const TICKET_LIFETIME: i64 = 10 * 3600;

/// The next step of an AS exchange.
#[derive(Debug)]
pub enum AsStep {
    /// Send this AS-REQ and hand its answer to [`AsExchange::handle`].
    Send(Vec<u8>),
    /// The TGT.
    Done(Box<Credential>),
}

/// An AS exchange: a ticket-granting ticket for a user.
#[derive(Debug)]
pub struct AsExchange {
    user: PrincipalName,
    realm: String,
    secret: Secret,
    request: KdcReq,
    preauth_sent: bool,
    /// The etype and salt the KDC asked for.
    info: Option<EtypeInfo2>,
}

impl AsExchange {
    /// Starts an exchange for `user@realm`; returns it and the first AS-REQ (without
    /// pre-authentication, so that the KDC says which etype and salt it wants).
    pub fn new(user: &str, realm: &str, secret: Secret, inputs: &Inputs) -> (Self, Vec<u8>) {
        let realm = realm.to_ascii_uppercase();
        let user = PrincipalName::user(user);
        let etypes = match &secret {
            Secret::Password(_) => EncType::SUPPORTED.to_vec(),
            Secret::Keys(keys) => {
                let mut etypes: Vec<EncType> = Vec::new();
                for etype in EncType::SUPPORTED {
                    if keys.iter().any(|k| k.etype() == etype) {
                        etypes.push(etype);
                    }
                }
                etypes
            }
        };
        let request = KdcReq {
            msg_type: 10,
            padata: vec![PaData::pac_request()],
            kdc_options: kdc_options::FORWARDABLE
                | kdc_options::RENEWABLE
                | kdc_options::CANONICALIZE
                | kdc_options::RENEWABLE_OK,
            cname: Some(user.clone()),
            realm: realm.clone(),
            sname: PrincipalName::krbtgt(&realm),
            till: KerberosTime(inputs.now.0 + TICKET_LIFETIME),
            nonce: inputs.nonce & 0x7fff_ffff,
            etypes,
        };
        let bytes = request.encode();
        let exchange = Self {
            user,
            realm,
            secret,
            request,
            preauth_sent: false,
            info: None,
        };
        (exchange, bytes)
    }

    /// The client key for `etype` with the KDC's salt and parameters.
    fn key(&self, etype: EncType) -> Result<Key, KrbError> {
        match &self.secret {
            Secret::Keys(keys) => keys
                .iter()
                .find(|k| k.etype() == etype)
                .cloned()
                .ok_or_else(|| KrbError::NoKey(format!("{etype} in the keytab"))),
            Secret::Password(password) => {
                let info = self.info.as_ref().filter(|i| i.etype == etype);
                let default_salt = format!("{}{}", self.realm, self.user.components.concat());
                let salt = info.and_then(|i| i.salt.clone()).unwrap_or(default_salt);
                let params = info.and_then(|i| i.s2kparams.as_deref());
                Ok(Key::from_password(
                    etype,
                    password,
                    salt.as_bytes(),
                    params,
                )?)
            }
        }
    }

    /// Takes the KDC's answer to the last AS-REQ.
    ///
    /// # Errors
    /// [`KrbError::Kdc`] when the KDC refuses (`KDC_ERR_PREAUTH_FAILED` for a wrong password,
    /// `KDC_ERR_C_PRINCIPAL_UNKNOWN`...), [`KrbError::Crypto`] when the reply does not decrypt
    /// with our key, [`KrbError::Mismatch`] when it answers another request.
    pub fn handle(&mut self, reply: &[u8], inputs: &Inputs) -> Result<AsStep, KrbError> {
        match KdcReply::decode(reply)? {
            KdcReply::Error(err)
                if err.code == ErrorCode::KDC_ERR_PREAUTH_REQUIRED && !self.preauth_sent =>
            {
                let offered = err.etype_info2();
                let info = offered
                    .into_iter()
                    .find(|i| self.request.etypes.contains(&i.etype))
                    .ok_or_else(|| KrbError::Kdc {
                        code: ErrorCode::KDC_ERR_ETYPE_NOSUPP,
                        text: Some("no common encryption type".into()),
                    })?;
                self.info = Some(info.clone());
                let key = self.key(info.etype)?;
                let plain = PaData::enc_timestamp_plain(inputs.now, inputs.usec);
                let enc = EncryptedData {
                    etype: info.etype,
                    kvno: None,
                    cipher: key.encrypt(usage::PA_ENC_TIMESTAMP, &inputs.confounder, &plain),
                };
                self.request.padata = vec![
                    PaData {
                        padata_type: pa_type::ENC_TIMESTAMP,
                        value: enc.encode(),
                    },
                    PaData::pac_request(),
                ];
                self.request.nonce = inputs.nonce & 0x7fff_ffff;
                self.preauth_sent = true;
                Ok(AsStep::Send(self.request.encode()))
            }
            KdcReply::Error(err) => Err(KrbError::Kdc {
                code: err.code,
                text: err.e_text,
            }),
            KdcReply::Rep(rep) => {
                if rep.msg_type != 11 {
                    return Err(KrbError::Mismatch("a TGS-REP answered an AS-REQ"));
                }
                // An AS-REP may carry the salt itself (no pre-authentication was needed).
                if let Some(info) = rep
                    .padata
                    .iter()
                    .filter(|pa| pa.padata_type == pa_type::ETYPE_INFO2)
                    .find_map(|pa| EtypeInfo2::decode_list(&pa.value).ok())
                    .and_then(|list| list.into_iter().next())
                {
                    self.info = Some(info);
                }
                let key = self.key(rep.enc_part.etype)?;
                let cred = finish(&rep, &key, usage::AS_REP, &self.request)?;
                Ok(AsStep::Done(Box::new(cred)))
            }
        }
    }
}

/// Decrypts and checks a KDC-REP against its request.
fn finish(
    rep: &KdcRep,
    key: &Key,
    key_usage: u32,
    request: &KdcReq,
) -> Result<Credential, KrbError> {
    if rep.enc_part.etype != key.etype() {
        return Err(KrbError::Crypto(CryptoError::UnsupportedEncType(
            rep.enc_part.etype.0,
        )));
    }
    let plain = Zeroizing::new(key.decrypt(key_usage, &rep.enc_part.cipher)?);
    let part = EncKdcRepPart::decode(&plain)?;
    if part.nonce != request.nonce {
        return Err(KrbError::Mismatch("nonce"));
    }
    if let Some(cname) = &request.cname
        && !rep.cname.same_as(cname)
        && request.kdc_options & kdc_options::CANONICALIZE == 0
    {
        return Err(KrbError::Mismatch("client name"));
    }
    if !part.sname.same_as(&rep.ticket.sname)
        || !part.srealm.eq_ignore_ascii_case(&rep.ticket.realm)
    {
        return Err(KrbError::Mismatch("server name of the ticket"));
    }
    let session_key = Key::new(part.key.keytype, &part.key.value)?;
    Ok(Credential {
        crealm: rep.crealm.clone(),
        client: rep.cname.clone(),
        srealm: part.srealm,
        server: part.sname,
        ticket: rep.ticket.clone(),
        session_key,
        authtime: part.authtime,
        endtime: part.endtime,
        flags: part.flags,
    })
}

/// A TGS exchange: a service ticket from a TGT.
#[derive(Debug)]
pub struct TgsExchange {
    request: KdcReq,
    tgt_key: Key,
}

impl TgsExchange {
    /// Starts an exchange for `service` (in the TGT's realm); returns it and the TGS-REQ.
    pub fn new(tgt: &Credential, service: &PrincipalName, inputs: &Inputs) -> (Self, Vec<u8>) {
        Self::with_etypes(tgt, service, inputs, &EncType::SUPPORTED)
    }

    /// [`new`](Self::new) asking for a session key of one of `etypes` only (the KDC picks the
    /// first the service takes): `[EncType::RC4_HMAC]` gets an rc4-hmac session key, and so
    /// RFC 4757's per-message tokens, from a service that also has AES keys.
    pub fn with_etypes(
        tgt: &Credential,
        service: &PrincipalName,
        inputs: &Inputs,
        etypes: &[EncType],
    ) -> (Self, Vec<u8>) {
        let mut request = KdcReq {
            msg_type: 12,
            padata: Vec::new(),
            // `renewable` without an rtime, or `forwardable` from a TGT that is not, is a bad
            // option to Heimdal's KDC (Samba's): ask only for what the TGT allows.
            kdc_options: (tgt.flags & kdc_options::FORWARDABLE) | kdc_options::CANONICALIZE,
            cname: None,
            realm: tgt.crealm.to_ascii_uppercase(),
            sname: service.clone(),
            till: KerberosTime(inputs.now.0 + TICKET_LIFETIME),
            nonce: inputs.nonce & 0x7fff_ffff,
            etypes: etypes.to_vec(),
        };
        let body = request.encode_body();
        let key = &tgt.session_key;
        let authenticator = Authenticator {
            crealm: tgt.crealm.clone(),
            cname: tgt.client.clone(),
            cksum: Some(Checksum {
                cksumtype: key.etype().checksum_type(),
                value: key.checksum(usage::TGS_REQ_CHECKSUM, &[&body]),
            }),
            cusec: inputs.usec,
            ctime: inputs.now,
            subkey: None,
            seq_number: None,
        };
        let ap_req = ApReq {
            ap_options: 0,
            ticket: tgt.ticket.clone(),
            authenticator: EncryptedData {
                etype: key.etype(),
                kvno: None,
                cipher: key.encrypt(
                    usage::TGS_REQ_AUTHENTICATOR,
                    &inputs.confounder,
                    &authenticator.encode(),
                ),
            },
        };
        request.padata = vec![PaData {
            padata_type: pa_type::TGS_REQ,
            value: ap_req.encode(),
        }];
        let bytes = request.encode();
        let exchange = Self {
            request,
            tgt_key: key.clone(),
        };
        (exchange, bytes)
    }

    /// Takes the KDC's answer.
    ///
    /// # Errors
    /// [`KrbError::Kdc`] when the KDC refuses (`KDC_ERR_S_PRINCIPAL_UNKNOWN` for a service it
    /// does not know), [`KrbError::Crypto`] or [`KrbError::Mismatch`] for an answer that is not
    /// ours.
    pub fn handle(&self, reply: &[u8]) -> Result<Credential, KrbError> {
        match KdcReply::decode(reply)? {
            KdcReply::Error(err) => Err(KrbError::Kdc {
                code: err.code,
                text: err.e_text,
            }),
            KdcReply::Rep(rep) if rep.msg_type == 13 => {
                finish(&rep, &self.tgt_key, usage::TGS_REP, &self.request)
            }
            KdcReply::Rep(_) => Err(KrbError::Mismatch("an AS-REP answered a TGS-REQ")),
        }
    }
}
