//! What one input's PDUs say about the ones after them: the presentation contexts a bind
//! negotiated, the opnum of each outstanding call, stubs in fragments, and (given the password)
//! the NTLM keys that unseal and verify protected PDUs.
//!
//! ```text
//! bind / alter_context      p_cont_id -> abstract syntax (proposed), NTLM NEGOTIATE
//! bind_ack / alter_ctx_resp results in proposal order: accepted or dropped; NTLM CHALLENGE
//! auth3 (or alter_context)  NTLM AUTHENTICATE: with the password, the keys of both directions
//! request FIRST..LAST       call_id -> (interface, opnum); stub reassembled, decoded on LAST
//! response / fault          opnum of the request with the same call_id
//! ```
//!
//! Protected PDUs are verified (and unsealed at packet privacy) in the order they come, each
//! direction with its own keys and sequence numbers, as the two ends do.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use dsbackup_ntlm::{Message, NtHash, ObservedContext, SessionSecurity};
use dsbackup_proto::iface::Interface;
use dsbackup_proto::{
    AuthLevel, AuthType, AuthVerifier, ContResult, ContextResult, DataRep, Pdu, PduBody, PfcFlags,
    PresentationContext, SyntaxId, locate_auth,
};
use serde_json::{Map, Value, json};

use super::call::{Half, call_head, decode_call, unknown_call_head};

/// Largest reassembled stub kept for decoding.
const MAX_STUB: usize = 64 * 1024 * 1024;
/// Most fragments of one stub.
const MAX_FRAGMENTS: usize = 65_536;

/// A presentation context of the association.
#[derive(Debug)]
struct Context {
    /// The abstract syntax the bind named.
    syntax: SyntaxId,
    /// The interface, when it is one of ours.
    iface: Option<Interface>,
    /// Whether the accepted transfer syntax is one `decode_stub` reads (NDR 2.0); `true` until
    /// the ack says otherwise.
    ndr20: bool,
}

/// An outstanding call.
#[derive(Debug)]
struct Call {
    p_cont_id: u16,
    opnum: u16,
}

/// A stub in fragments.
#[derive(Debug)]
struct Partial {
    drep: DataRep,
    stub: BytesMut,
    fragments: usize,
    /// Set when a fragment could not be read: no decoding.
    spoiled: Option<Unreadable>,
}

/// Why a fragment's stub cannot be read.
#[derive(Debug)]
enum Unreadable {
    /// Sealed, and no keys were asked for: the PDU says `"sealed"`, nothing more.
    Sealed,
    /// The PDU's `security_error` says why.
    Reported,
    /// Said by the `call_error` of the last fragment.
    Reason(String),
}

/// NTLM state of one `auth_context_id`.
#[derive(Debug, Default)]
struct NtlmContext {
    challenge: Option<Vec<u8>>,
    keys: Option<ObservedContext>,
    /// Why there are no keys, once the AUTHENTICATE went by.
    failure: Option<String>,
}

/// The state of one input.
#[derive(Debug)]
pub(crate) struct Conversation {
    nt_hash: Option<NtHash>,
    contexts: HashMap<u16, Context>,
    /// The contexts of the last bind or alter_context, in order, awaiting their results (used
    /// as they are when the input has no answer).
    proposed: Vec<(u16, Context)>,
    calls: HashMap<u32, Call>,
    partials: HashMap<(u32, bool), Partial>,
    ntlm: HashMap<u32, NtlmContext>,
}

impl Conversation {
    /// A conversation read with the NT hash of the password, if any.
    pub(crate) fn new(nt_hash: Option<NtHash>) -> Self {
        Self {
            nt_hash,
            contexts: HashMap::new(),
            proposed: Vec::new(),
            calls: HashMap::new(),
            partials: HashMap::new(),
            ntlm: HashMap::new(),
        }
    }

    /// Follows one PDU (`frame` its bytes) and adds what it learnt to its JSON object `out`.
    pub(crate) fn follow(&mut self, frame: &Bytes, pdu: &Pdu, out: &mut Map<String, Value>) {
        match &pdu.body {
            PduBody::Bind(bind) => self.propose(&bind.p_context_elem),
            PduBody::AlterContext(alter) => self.propose(&alter.p_context_elem),
            PduBody::BindAck(ack) => self.results(&ack.p_result_list),
            PduBody::AlterContextResp(ack) => self.results(&ack.p_result_list),
            PduBody::BindNak(_) => self.proposed.clear(),
            PduBody::Request(_) | PduBody::Response(_) | PduBody::Fault(_) => {
                self.stub_pdu(frame, pdu, out);
                return;
            }
            PduBody::Auth3(_)
            | PduBody::Shutdown(_)
            | PduBody::CoCancel(_)
            | PduBody::Orphaned(_) => {}
        }
        if let Some(auth) = &pdu.auth_verifier
            && auth.auth_type == AuthType::WINNT
        {
            self.handshake(auth, out);
        }
    }

    fn propose(&mut self, contexts: &[PresentationContext]) {
        self.proposed = contexts
            .iter()
            .map(|context| {
                let syntax = context.abstract_syntax;
                let iface = Interface::from_uuid(syntax.uuid, syntax.version);
                (
                    context.p_cont_id,
                    Context {
                        syntax,
                        iface,
                        ndr20: true,
                    },
                )
            })
            .collect();
    }

    /// Keeps the proposed contexts the answer accepts, with their transfer syntax.
    fn results(&mut self, results: &[ContextResult]) {
        let proposed = core::mem::take(&mut self.proposed);
        for ((p_cont_id, mut context), result) in proposed.into_iter().zip(results) {
            if result.result == ContResult::ACCEPTANCE {
                context.ndr20 = result.transfer_syntax == SyntaxId::NDR;
                self.contexts.insert(p_cont_id, context);
            }
        }
    }

    /// The context a call names: negotiated, or proposed by a bind whose answer is not in the
    /// input.
    fn context(&self, p_cont_id: u16) -> Option<&Context> {
        self.contexts.get(&p_cont_id).or_else(|| {
            self.proposed
                .iter()
                .find(|(id, _)| *id == p_cont_id)
                .map(|(_, context)| context)
        })
    }

    /// Takes the NTLM message of a bind-type PDU's verifier.
    fn handshake(&mut self, auth: &AuthVerifier, out: &mut Map<String, Value>) {
        let message = match Message::decode(&auth.auth_value) {
            Ok(message) => message,
            Err(error) => {
                out.insert("ntlm_error".into(), json!(error.to_string()));
                return;
            }
        };
        let state = self.ntlm.entry(auth.auth_context_id).or_default();
        let mut info = super::ntlm::message_json(&message);
        match message {
            Message::Negotiate(_) => {}
            Message::Challenge(_) => {
                *state = NtlmContext {
                    challenge: Some(auth.auth_value.to_vec()),
                    ..NtlmContext::default()
                };
            }
            Message::Authenticate(_) => {
                if let Some(hash) = &self.nt_hash {
                    let keys = match &state.challenge {
                        Some(challenge) => ObservedContext::new(hash, challenge, &auth.auth_value)
                            .map_err(|error| error.to_string()),
                        None => Err("no CHALLENGE seen before the AUTHENTICATE".to_owned()),
                    };
                    match keys {
                        Ok(keys) => {
                            info.insert("session_keys".into(), json!("derived"));
                            state.keys = Some(keys);
                            state.failure = None;
                        }
                        Err(error) => {
                            info.insert("session_error".into(), json!(error));
                            state.keys = None;
                            state.failure = Some(error);
                        }
                    }
                }
            }
        }
        out.insert("ntlm".into(), Value::Object(info));
    }

    /// A request, response or fault: checks its protection, collects its stub and decodes the
    /// call once the last fragment is in.
    fn stub_pdu(&mut self, frame: &Bytes, pdu: &Pdu, out: &mut Map<String, Value>) {
        let (half, stub, p_cont_id) = match &pdu.body {
            PduBody::Request(request) => (Half::Request, &request.stub, request.p_cont_id),
            PduBody::Response(response) => (Half::Response, &response.stub, response.p_cont_id),
            PduBody::Fault(fault) => (Half::Fault, &fault.stub, fault.p_cont_id),
            _ => return,
        };
        let call_id = pdu.call_id;
        if let PduBody::Request(request) = &pdu.body
            && pdu.pfc_flags.contains(PfcFlags::FIRST_FRAG)
        {
            self.calls.insert(
                call_id,
                Call {
                    p_cont_id,
                    opnum: request.opnum,
                },
            );
        }
        // The plaintext stub, or why there is none.
        let plain = self.unprotect(frame, pdu, half, stub, out);
        self.collect(pdu, half, plain, out);
        // A call is over with its answer's last fragment or a fault, whatever its interface.
        let last = pdu.pfc_flags.contains(PfcFlags::LAST_FRAG);
        if half == Half::Fault || (half == Half::Response && last) {
            self.calls.remove(&call_id);
            self.partials.remove(&(call_id, true));
            self.partials.remove(&(call_id, false));
        }
    }

    /// Adds a fragment's plaintext stub to its call's, and decodes the call at its last
    /// fragment when the interface is known.
    fn collect(
        &mut self,
        pdu: &Pdu,
        half: Half,
        plain: Result<Bytes, Unreadable>,
        out: &mut Map<String, Value>,
    ) {
        let call_id = pdu.call_id;
        let Some(call) = self.calls.get(&call_id) else {
            return;
        };
        let Some(context) = self.context(call.p_cont_id) else {
            return;
        };
        let first = pdu.pfc_flags.contains(PfcFlags::FIRST_FRAG);
        let last = pdu.pfc_flags.contains(PfcFlags::LAST_FRAG);
        let Some(iface) = context.iface else {
            // Not one we decode: named by its UUID, version and opnum where it ends.
            if half == Half::Fault || last {
                let head = unknown_call_head(&context.syntax, call.opnum, half);
                out.insert("call".into(), Value::Object(head));
            }
            return;
        };
        let (opnum, ndr20) = (call.opnum, context.ndr20);
        if half == Half::Fault {
            out.insert("call".into(), Value::Object(call_head(iface, opnum, half)));
            return;
        }
        let key = (call_id, half == Half::Request);
        if first {
            self.partials.insert(
                key,
                Partial {
                    drep: pdu.drep,
                    stub: BytesMut::new(),
                    fragments: 0,
                    spoiled: None,
                },
            );
        }
        let Some(partial) = self.partials.get_mut(&key) else {
            // A middle or last fragment whose first one is not in the input.
            return;
        };
        partial.fragments += 1;
        match plain {
            Ok(bytes) if partial.spoiled.is_none() => {
                if partial.fragments > MAX_FRAGMENTS
                    || partial.stub.len().saturating_add(bytes.len()) > MAX_STUB
                {
                    partial.spoiled = Some(Unreadable::Reason(format!(
                        "stub over {MAX_STUB} bytes or {MAX_FRAGMENTS} fragments: not decoded"
                    )));
                    partial.stub = BytesMut::new();
                } else {
                    partial.stub.extend_from_slice(&bytes);
                }
            }
            Ok(_) => {}
            Err(reason) => partial.spoiled = partial.spoiled.take().or(Some(reason)),
        }
        if !last {
            return;
        }
        let Some(partial) = self.partials.remove(&key) else {
            return;
        };
        match partial.spoiled {
            None => {}
            Some(Unreadable::Sealed | Unreadable::Reported) => return,
            Some(Unreadable::Reason(reason)) => {
                out.insert("call".into(), Value::Object(call_head(iface, opnum, half)));
                out.insert("call_error".into(), json!(reason));
                return;
            }
        }
        if !ndr20 {
            out.insert("call".into(), Value::Object(call_head(iface, opnum, half)));
            out.insert(
                "call_error".into(),
                json!("the transfer syntax is not NDR 2.0: not decoded"),
            );
            return;
        }
        match decode_call(iface, opnum, half, partial.drep, &partial.stub) {
            Ok(call) => {
                out.insert("call".into(), call);
            }
            Err(error) => {
                out.insert("call".into(), Value::Object(call_head(iface, opnum, half)));
                out.insert("call_error".into(), json!(error));
            }
        }
    }

    /// The plaintext stub of a stub PDU: as received when unprotected, verified (and unsealed)
    /// with the keys when a password was given.
    fn unprotect(
        &mut self,
        frame: &Bytes,
        pdu: &Pdu,
        half: Half,
        stub: &Bytes,
        out: &mut Map<String, Value>,
    ) -> Result<Bytes, Unreadable> {
        let Some(auth) = &pdu.auth_verifier else {
            return Ok(stub.clone());
        };
        let sealed = auth.auth_level == AuthLevel::PKT_PRIVACY;
        if sealed {
            out.insert("sealed".into(), json!(true));
        }
        if self.nt_hash.is_none() || auth.auth_level.0 < AuthLevel::CALL.0 {
            return if sealed {
                Err(Unreadable::Sealed)
            } else {
                Ok(stub.clone())
            };
        }
        let result = if auth.auth_type == AuthType::WINNT {
            self.verify(frame, auth, half, sealed)
        } else {
            Err(format!(
                "auth type {}: only NTLM (RPC_C_AUTHN_WINNT) is followed",
                auth.auth_type.name().unwrap_or("unknown")
            ))
        };
        match result {
            Ok(Some(plain)) => {
                out.insert("unsealed".into(), json!(true));
                out.insert("unsealed_stub".into(), json!(hex::encode(&plain)));
                Ok(plain)
            }
            Ok(None) => {
                out.insert("verified".into(), json!(true));
                Ok(stub.clone())
            }
            Err(error) => {
                out.insert("security_error".into(), json!(error));
                if sealed {
                    Err(Unreadable::Reported)
                } else {
                    Ok(stub.clone())
                }
            }
        }
    }

    /// Checks the signature of a protected fragment and unseals it; the unsealed stub when
    /// `sealed`.
    fn verify(
        &mut self,
        frame: &Bytes,
        auth: &AuthVerifier,
        half: Half,
        sealed: bool,
    ) -> Result<Option<Bytes>, String> {
        let state = self.ntlm.get_mut(&auth.auth_context_id);
        let keys = match state {
            Some(NtlmContext {
                keys: Some(keys), ..
            }) => keys,
            Some(NtlmContext {
                failure: Some(failure),
                ..
            }) => return Err(format!("no session keys: {failure}")),
            _ => {
                return Err(format!(
                    "no NTLM handshake seen for auth_context_id {}",
                    auth.auth_context_id
                ));
            }
        };
        let session: &mut SessionSecurity = match half {
            Half::Request => &mut keys.from_client,
            Half::Response | Half::Fault => &mut keys.from_server,
        };
        let location = locate_auth(frame)
            .map_err(|error| error.to_string())?
            .ok_or("no auth verifier")?;
        let mut buf = BytesMut::from(frame.as_ref());
        let (head, signature) = buf
            .split_at_mut_checked(location.sec_trailer.end)
            .ok_or("sec_trailer beyond the frame")?;
        if sealed {
            session
                .unseal_range(head, location.stub.clone(), signature)
                .map_err(|error| error.to_string())?;
            let plain = Pdu::decode(buf.freeze()).map_err(|error| error.to_string())?;
            Ok(Some(plain.body.stub().cloned().unwrap_or_default()))
        } else {
            session
                .verify(head, signature)
                .map_err(|error| error.to_string())?;
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use dsbackup_proto::iface::{Direction, decode_stub};
    use dsbackup_proto::{AlterContext, AlterContextResp, Bind, PortAny, Request, Response, Uuid};

    use super::*;

    const EPM: &str = "e1af8308-5d1f-11c9-91a4-08002b14a0fa";
    const MGMT: &str = "afa8bd80-7d8a-11c9-bef4-08002b102989";
    const AD_BACKUP: &str = "ecec0d70-a603-11d0-96b1-00a0c91ece30";
    const PREPARE: &[u8] =
        include_bytes!("../../../../fixtures/ndr/ad_backup-0-HrRBackupPrepare-request.bin");

    fn context(p_cont_id: u16, uuid: &str, version: u16) -> PresentationContext {
        PresentationContext {
            p_cont_id,
            abstract_syntax: SyntaxId::new(uuid.parse::<Uuid>().unwrap(), version, 0),
            transfer_syntaxes: vec![SyntaxId::NDR, SyntaxId::NDR64],
        }
    }

    fn request(call_id: u32, p_cont_id: u16, opnum: u16, stub: &[u8], flags: PfcFlags) -> Pdu {
        let mut pdu = Pdu::new(
            call_id,
            PduBody::Request(Request {
                alloc_hint: 0,
                p_cont_id,
                opnum,
                object: None,
                stub: Bytes::copy_from_slice(stub),
            }),
        );
        pdu.pfc_flags = flags;
        pdu
    }

    /// Follows `pdus` (encoded and decoded again, as inspect reads them); their JSON additions.
    fn follow(conversation: &mut Conversation, pdus: &[Pdu]) -> Vec<Map<String, Value>> {
        pdus.iter()
            .map(|pdu| {
                let frame = pdu.to_bytes().unwrap();
                let decoded = Pdu::decode(frame.clone()).unwrap();
                let mut out = Map::new();
                conversation.follow(&frame, &decoded, &mut out);
                out
            })
            .collect()
    }

    fn both() -> PfcFlags {
        PfcFlags::FIRST_FRAG | PfcFlags::LAST_FRAG
    }

    #[test]
    fn alter_context_adds_an_interface_and_its_answer_settles_the_syntax() {
        let mut conversation = Conversation::new(None);
        let alter = |contexts| {
            Pdu::new(
                2,
                PduBody::AlterContext(AlterContext {
                    max_xmit_frag: 4280,
                    max_recv_frag: 4280,
                    assoc_group_id: 1,
                    p_context_elem: contexts,
                }),
            )
        };
        let answer = |results| {
            Pdu::new(
                2,
                PduBody::AlterContextResp(AlterContextResp {
                    max_xmit_frag: 4280,
                    max_recv_frag: 4280,
                    assoc_group_id: 1,
                    sec_addr: PortAny::empty(),
                    p_result_list: results,
                }),
            )
        };
        let out = follow(
            &mut conversation,
            &[
                alter(vec![context(1, MGMT, 1), context(2, EPM, 3)]),
                answer(vec![
                    ContextResult::acceptance(SyntaxId::NDR),
                    ContextResult::acceptance(SyntaxId::NDR64),
                ]),
                // mgmt is_server_listening: an empty request stub.
                request(3, 1, 2, &[], both()),
                // epm over NDR64: named, not decoded.
                request(4, 2, 4, &[0; 20], both()),
            ],
        );
        assert_eq!(out[2]["call"]["interface"], "mgmt");
        assert_eq!(out[2]["call"]["opnum"], 2);
        assert_eq!(out[2]["call"]["params"], json!({}));
        assert_eq!(
            out[3]["call"]["name"],
            Interface::Epm.id().call(4).unwrap().name
        );
        assert_eq!(
            out[3]["call_error"],
            "the transfer syntax is not NDR 2.0: not decoded"
        );
    }

    #[test]
    fn big_endian_fragments_are_put_back_together() {
        let decoded = decode_stub(
            Interface::AdBackup,
            0,
            Direction::Request,
            DataRep::LITTLE_ENDIAN,
            PREPARE,
        )
        .unwrap();
        let stub = decoded.encode(DataRep::BIG_ENDIAN).unwrap();
        let (a, rest) = stub.split_at(8);
        let (b, c) = rest.split_at(8);
        let bind = Pdu::new(
            1,
            PduBody::Bind(Bind {
                max_xmit_frag: 4280,
                max_recv_frag: 4280,
                assoc_group_id: 0,
                p_context_elem: vec![context(0, AD_BACKUP, 1)],
            }),
        );
        let mut pdus = vec![
            bind,
            // A middle fragment of a call whose start is not in the input: ignored.
            request(2, 0, 0, b"lost", PfcFlags::empty()),
            request(2, 0, 0, a, PfcFlags::FIRST_FRAG),
            request(2, 0, 0, b, PfcFlags::empty()),
            request(2, 0, 0, c, PfcFlags::LAST_FRAG),
        ];
        for pdu in &mut pdus {
            pdu.drep = DataRep::BIG_ENDIAN;
        }
        // No bind_ack in the input: the proposed context is used as it is.
        let mut conversation = Conversation::new(None);
        let out = follow(&mut conversation, &pdus);
        assert!(out[..4].iter().all(|pdu| pdu.get("call").is_none()));
        let params = &out[4]["call"]["params"];
        assert_eq!(params["wszBackupAnnotation"], "NTDS Backup Interface");
        assert_eq!(params["dwClientIdentifier"], 4242);
    }

    #[test]
    fn a_response_takes_the_opnum_of_its_request_and_unknown_calls_have_none() {
        let mut conversation = Conversation::new(None);
        let response = |call_id| {
            Pdu::new(
                call_id,
                PduBody::Response(Response {
                    alloc_hint: 0,
                    p_cont_id: 0,
                    cancel_count: 0,
                    reserved: 0,
                    stub: Bytes::from_static(&[0, 0, 0, 0]),
                }),
            )
        };
        let bind = Pdu::new(
            1,
            PduBody::Bind(Bind {
                max_xmit_frag: 4280,
                max_recv_frag: 4280,
                assoc_group_id: 0,
                p_context_elem: vec![context(0, MGMT, 1)],
            }),
        );
        let out = follow(
            &mut conversation,
            &[
                bind,
                request(5, 0, 3, &[], both()),
                // An answer to a call the input never showed.
                response(9),
                response(5),
                // The call is over: a second answer is not decoded again.
                response(5),
            ],
        );
        assert!(out[2].get("call").is_none());
        let name = Interface::Mgmt.id().call(3).unwrap().name;
        assert_eq!(out[3]["call"]["name"], name);
        assert_eq!(out[3]["call"]["direction"], "response");
        assert_eq!(out[3]["call"]["params"]["status"]["value"], 0);
        assert!(out[4].get("call").is_none());
    }
}
