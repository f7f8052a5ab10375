//! The cases: a grammar over the fields. Each case is a valid exchange (bind, the NTLM legs
//! when authenticated, a request; or one with an alter_context, a co_cancel, an orphaned or a
//! shutdown in it) with exactly one field of one PDU changed, at each auth level where the
//! field exists.

use dsbackup_proto::{DataRep, SyntaxId, Uuid, trailer};

use crate::wire::{
    BAD_SYNTAX, BTFN, BindBody, Ctx, EPM, Guid, MGMT, NDR, NDR64, UNKNOWN_IF, pfc, ptype,
};

/// The authentication of a case's association.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    None,
    Connect,
    Integrity,
    Privacy,
}

impl Level {
    pub(crate) const ALL: [Self; 4] = [Self::None, Self::Connect, Self::Integrity, Self::Privacy];
    pub(crate) const AUTH: [Self; 3] = [Self::Connect, Self::Integrity, Self::Privacy];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Connect => "connect",
            Self::Integrity => "integrity",
            Self::Privacy => "privacy",
        }
    }

    /// The `auth_level` on the wire.
    pub(crate) fn wire(self) -> u8 {
        match self {
            Self::None => 1,
            Self::Connect => 2,
            Self::Integrity => 5,
            Self::Privacy => 6,
        }
    }
}

/// Which NTLM leg (or verifier) a PDU carries, and overrides of its sec_trailer.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Auth {
    pub(crate) leg: Leg,
    pub(crate) auth_type: Option<u8>,
    pub(crate) auth_level: Option<u8>,
    pub(crate) context_id: Option<u32>,
    /// Credentials the server does not know (AUTHENTICATE legs).
    pub(crate) wrong_password: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Leg {
    /// No trailer.
    #[default]
    None,
    /// The association's leg: NEGOTIATE on a bind, AUTHENTICATE on auth3/alter, a signature
    /// on a request (at integrity and privacy; none at connect).
    Natural,
    /// A trailer with 16 zero bytes (a connect-level verifier, or an auth_type none).
    Zeros,
}

/// One change to a PDU's header.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Mutation {
    pub(crate) vers: Option<u8>,
    pub(crate) minor: Option<u8>,
    pub(crate) ptype: Option<u8>,
    pub(crate) flags_set: u8,
    pub(crate) flags_clear: u8,
    pub(crate) flags: Option<u8>,
    pub(crate) drep: Option<[u8; 4]>,
    pub(crate) call_id: Option<u32>,
    pub(crate) frag_delta: i16,
    pub(crate) auth_len: Option<u16>,
}

/// A request as sent.
#[derive(Clone, Debug)]
pub(crate) struct Req {
    pub(crate) call_id: u32,
    pub(crate) ctx: u16,
    pub(crate) opnum: u16,
    pub(crate) alloc_hint: Option<u32>,
    pub(crate) object: Option<Guid>,
    pub(crate) stub: Vec<u8>,
    pub(crate) flags: u8,
    pub(crate) auth: Auth,
}

impl Req {
    /// mgmt `is_server_listening` (no input) on context `ctx`.
    fn listening(call_id: u32, ctx: u16) -> Self {
        Self {
            call_id,
            ctx,
            opnum: 2,
            alloc_hint: None,
            object: None,
            stub: Vec::new(),
            flags: pfc::FIRST | pfc::LAST,
            auth: natural(),
        }
    }
}

/// One thing the client does.
#[derive(Clone, Debug)]
pub(crate) enum Step {
    Bind {
        call_id: u32,
        body: BindBody,
        /// Ask to join the n-th association group seen (1-based) instead of `body`'s.
        join_group: Option<usize>,
        auth: Auth,
        mutation: Mutation,
    },
    Alter {
        call_id: u32,
        body: BindBody,
        auth: Auth,
        mutation: Mutation,
    },
    Auth3 {
        call_id: u32,
        auth: Auth,
        mutation: Mutation,
    },
    Request(Req, Mutation),
    /// A PDU of only a header (co_cancel, orphaned, shutdown).
    Bare {
        ptype: u8,
        call_id: u32,
        mutation: Mutation,
    },
    /// Open a second connection (the first stays open); later steps use it.
    Reconnect,
}

impl Step {
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Self::Bind { .. } => "bind",
            Self::Alter { .. } => "alter_context",
            Self::Auth3 { .. } => "auth3",
            Self::Request(..) => "request",
            Self::Bare { ptype: p, .. } => match *p {
                ptype::CO_CANCEL => "co_cancel",
                ptype::ORPHANED => "orphaned",
                ptype::SHUTDOWN => "shutdown",
                _ => "bare",
            },
            Self::Reconnect => "reconnect",
        }
    }

    fn mutation_mut(&mut self) -> Option<&mut Mutation> {
        match self {
            Self::Bind { mutation, .. }
            | Self::Alter { mutation, .. }
            | Self::Auth3 { mutation, .. }
            | Self::Request(_, mutation)
            | Self::Bare { mutation, .. } => Some(mutation),
            Self::Reconnect => None,
        }
    }
}

/// A named script at one auth level.
#[derive(Clone, Debug)]
pub(crate) struct Case {
    pub(crate) name: String,
    pub(crate) level: Level,
    pub(crate) steps: Vec<Step>,
}

fn natural() -> Auth {
    Auth {
        leg: Leg::Natural,
        ..Auth::default()
    }
}

pub(crate) fn ctx(id: u16, abstract_syntax: (Guid, u16, u16), transfer: &[(Guid, u32)]) -> Ctx {
    Ctx {
        id,
        abstract_syntax,
        transfer: transfer.to_vec(),
    }
}

/// The bind body of the valid exchange: mgmt as context 0, NDR, 5840-byte fragments.
fn bind_body() -> BindBody {
    BindBody {
        max_xmit: 5840,
        max_recv: 5840,
        assoc_group: 0,
        contexts: vec![ctx(0, MGMT, &[NDR])],
    }
}

fn bind(level: Level) -> Step {
    Step::Bind {
        call_id: 1,
        body: bind_body(),
        join_group: None,
        auth: if level == Level::None {
            Auth::default()
        } else {
            natural()
        },
        mutation: Mutation::default(),
    }
}

fn auth3() -> Step {
    Step::Auth3 {
        call_id: 2,
        auth: natural(),
        mutation: Mutation::default(),
    }
}

/// bind, the auth3 when authenticated.
fn handshake(level: Level) -> Vec<Step> {
    let mut steps = vec![bind(level)];
    if level != Level::None {
        steps.push(auth3());
    }
    steps
}

/// The valid exchanges: name, steps, and which step is the one each mutation changes.
fn bases(level: Level) -> Vec<(&'static str, Vec<Step>)> {
    let request = |call_id| Step::Request(Req::listening(call_id, 0), Mutation::default());
    let mut out = vec![("call", {
        let mut s = handshake(level);
        s.push(request(3));
        s
    })];
    out.push(("alter", {
        let mut s = handshake(level);
        s.push(Step::Alter {
            call_id: 3,
            body: BindBody {
                contexts: vec![ctx(1, MGMT, &[NDR])],
                ..bind_body()
            },
            auth: Auth::default(),
            mutation: Mutation::default(),
        });
        s.push(Step::Request(Req::listening(4, 1), Mutation::default()));
        s
    }));
    out.push(("cancel", {
        let mut s = handshake(level);
        s.push(Step::Request(
            Req {
                flags: pfc::FIRST,
                ..Req::listening(3, 0)
            },
            Mutation::default(),
        ));
        s.push(Step::Bare {
            ptype: ptype::CO_CANCEL,
            call_id: 3,
            mutation: Mutation::default(),
        });
        s.push(Step::Request(
            Req {
                flags: pfc::LAST,
                ..Req::listening(3, 0)
            },
            Mutation::default(),
        ));
        s
    }));
    out.push(("orphan", {
        let mut s = handshake(level);
        s.push(Step::Request(
            Req {
                flags: pfc::FIRST,
                ..Req::listening(3, 0)
            },
            Mutation::default(),
        ));
        s.push(Step::Bare {
            ptype: ptype::ORPHANED,
            call_id: 3,
            mutation: Mutation::default(),
        });
        s.push(request(4));
        s
    }));
    out.push(("shutdown", {
        let mut s = handshake(level);
        s.push(Step::Bare {
            ptype: ptype::SHUTDOWN,
            call_id: 3,
            mutation: Mutation::default(),
        });
        s.push(request(4));
        s
    }));
    out
}

/// Header mutations: every field of the common header, one at a time.
fn header_mutations(slot: &str) -> Vec<(String, Mutation)> {
    let m = Mutation::default;
    let mut out = vec![
        (
            "rpc_vers=4".to_owned(),
            Mutation {
                vers: Some(4),
                ..m()
            },
        ),
        (
            "rpc_vers=6".to_owned(),
            Mutation {
                vers: Some(6),
                ..m()
            },
        ),
        (
            "minor=1".to_owned(),
            Mutation {
                minor: Some(1),
                ..m()
            },
        ),
        (
            "minor=9".to_owned(),
            Mutation {
                minor: Some(9),
                ..m()
            },
        ),
        (
            "ptype=20".to_owned(),
            Mutation {
                ptype: Some(20),
                ..m()
            },
        ),
        (
            "drep=big-endian".to_owned(),
            Mutation {
                drep: Some([0x00, 0, 0, 0]),
                ..m()
            },
        ),
        (
            "drep=ebcdic".to_owned(),
            Mutation {
                drep: Some([0x11, 0, 0, 0]),
                ..m()
            },
        ),
        (
            "drep=vax-float".to_owned(),
            Mutation {
                drep: Some([0x10, 1, 0, 0]),
                ..m()
            },
        ),
        (
            "drep=ibm-float".to_owned(),
            Mutation {
                drep: Some([0x10, 3, 0, 0]),
                ..m()
            },
        ),
        (
            "drep=float-9".to_owned(),
            Mutation {
                drep: Some([0x10, 9, 0, 0]),
                ..m()
            },
        ),
        (
            "drep=reserved-bytes".to_owned(),
            Mutation {
                drep: Some([0x10, 0, 0xff, 0xff]),
                ..m()
            },
        ),
        (
            "frag_length+4".to_owned(),
            Mutation {
                frag_delta: 4,
                ..m()
            },
        ),
        (
            "frag_length-4".to_owned(),
            Mutation {
                frag_delta: -4,
                ..m()
            },
        ),
        (
            "call_id=0".to_owned(),
            Mutation {
                call_id: Some(0),
                ..m()
            },
        ),
        (
            "call_id=max".to_owned(),
            Mutation {
                call_id: Some(u32::MAX),
                ..m()
            },
        ),
        (
            "flags=0".to_owned(),
            Mutation {
                flags: Some(0),
                ..m()
            },
        ),
        (
            "flags=all".to_owned(),
            Mutation {
                flags: Some(0xff),
                ..m()
            },
        ),
        (
            "flags-FIRST".to_owned(),
            Mutation {
                flags_clear: pfc::FIRST,
                ..m()
            },
        ),
        (
            "flags-LAST".to_owned(),
            Mutation {
                flags_clear: pfc::LAST,
                ..m()
            },
        ),
        (
            "auth_length=8".to_owned(),
            Mutation {
                auth_len: Some(8),
                ..m()
            },
        ),
    ];
    for (name, flag) in [
        ("PENDING_CANCEL/HDR_SIGN", pfc::PENDING_CANCEL),
        ("RESERVED_1", pfc::RESERVED_1),
        ("CONC_MPX", pfc::CONC_MPX),
        ("DID_NOT_EXECUTE", pfc::DID_NOT_EXECUTE),
        ("MAYBE", pfc::MAYBE),
        ("OBJECT_UUID", pfc::OBJECT_UUID),
    ] {
        out.push((
            format!("flags+{name}"),
            Mutation {
                flags_set: flag,
                ..m()
            },
        ));
    }
    if slot != "bind" {
        out.push((
            "ptype=bind".to_owned(),
            Mutation {
                ptype: Some(ptype::BIND),
                ..m()
            },
        ));
    } else {
        out.push((
            "ptype=alter_context".to_owned(),
            Mutation {
                ptype: Some(ptype::ALTER_CONTEXT),
                ..m()
            },
        ));
    }
    out
}

/// Every case.
pub(crate) fn all() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut push = |name: String, level: Level, steps: Vec<Step>| {
        cases.push(Case {
            name: format!("{name} @{}", level.name()),
            level,
            steps,
        });
    };

    // Header fields of the bind, the auth3 and the request of the valid call.
    for level in Level::ALL {
        let (_, base) = bases(level).swap_remove(0);
        for (index, step) in base.iter().enumerate() {
            let slot = step.label();
            for (name, mutation) in header_mutations(slot) {
                let mut steps = base.clone();
                if let Some(target) = steps.get_mut(index).and_then(Step::mutation_mut) {
                    *target = mutation;
                }
                push(format!("{slot}.hdr.{name}"), level, steps);
            }
        }
    }

    // Header fields of alter_context, co_cancel, orphaned and shutdown, at none and privacy.
    for level in [Level::None, Level::Privacy] {
        for (_, base) in bases(level).into_iter().skip(1) {
            let Some(at) = base
                .iter()
                .position(|step| matches!(step, Step::Alter { .. } | Step::Bare { .. }))
            else {
                continue;
            };
            let slot = base.get(at).map_or("?", Step::label);
            for (name, mutation) in header_mutations(slot) {
                if name.starts_with("auth_length") || name.starts_with("frag_length-") {
                    continue;
                }
                let mut steps = base.clone();
                if let Some(target) = steps.get_mut(at).and_then(Step::mutation_mut) {
                    *target = mutation;
                }
                push(format!("{slot}.hdr.{name}"), level, steps);
            }
        }
    }

    // The valid exchanges themselves.
    for level in Level::ALL {
        for (name, steps) in bases(level) {
            push(format!("valid.{name}"), level, steps);
        }
    }

    // Bind body fields.
    let sizes: [(&str, u16, u16); 9] = [
        ("max_xmit=0", 0, 5840),
        ("max_xmit=1431", 1431, 5840),
        ("max_xmit=1432", 1432, 5840),
        ("max_xmit=3199", 3199, 5840),
        ("max_xmit=0xffff", 0xffff, 5840),
        ("max_recv=0", 5840, 0),
        ("max_recv=3199", 5840, 3199),
        ("max_recv=0xffff", 5840, 0xffff),
        ("max_both=0xffff", 0xffff, 0xffff),
    ];
    let contexts: Vec<(&str, Vec<Ctx>)> = vec![
        ("contexts=none", vec![]),
        (
            "contexts=mgmt+epm",
            vec![ctx(0, MGMT, &[NDR]), ctx(1, EPM, &[NDR])],
        ),
        (
            "contexts=duplicate-id",
            vec![ctx(0, MGMT, &[NDR]), ctx(0, EPM, &[NDR])],
        ),
        (
            "contexts=duplicate-id-same",
            vec![ctx(0, MGMT, &[NDR]), ctx(0, MGMT, &[NDR])],
        ),
        ("abstract=unknown", vec![ctx(0, UNKNOWN_IF, &[NDR])]),
        ("abstract=minor+1", vec![ctx(0, (MGMT.0, 1, 1), &[NDR])]),
        ("abstract=major+1", vec![ctx(0, (MGMT.0, 2, 0), &[NDR])]),
        ("transfer=bad", vec![ctx(0, MGMT, &[BAD_SYNTAX])]),
        ("transfer=none", vec![ctx(0, MGMT, &[])]),
        ("transfer=bad+ndr", vec![ctx(0, MGMT, &[BAD_SYNTAX, NDR])]),
        ("transfer=ndr64", vec![ctx(0, MGMT, &[NDR64])]),
        ("transfer=ndr64+ndr", vec![ctx(0, MGMT, &[NDR64, NDR])]),
        ("transfer=btfn-alone", vec![ctx(0, MGMT, &[BTFN])]),
        (
            "contexts=ndr+btfn",
            vec![ctx(0, MGMT, &[NDR]), ctx(1, MGMT, &[BTFN])],
        ),
        (
            "contexts=ndr64+ndr+btfn",
            vec![
                ctx(0, MGMT, &[NDR64]),
                ctx(1, MGMT, &[NDR]),
                ctx(2, MGMT, &[BTFN]),
            ],
        ),
        (
            "contexts=unknown+mgmt",
            vec![ctx(0, UNKNOWN_IF, &[NDR]), ctx(1, MGMT, &[NDR])],
        ),
    ];
    for level in Level::ALL {
        let mut variants: Vec<(String, BindBody)> = Vec::new();
        for (name, xmit, recv) in sizes {
            variants.push((
                name.to_owned(),
                BindBody {
                    max_xmit: xmit,
                    max_recv: recv,
                    ..bind_body()
                },
            ));
        }
        variants.push((
            "assoc_group=unknown".to_owned(),
            BindBody {
                assoc_group: 0x0bad_cafe,
                ..bind_body()
            },
        ));
        for (name, list) in &contexts {
            variants.push((
                (*name).to_owned(),
                BindBody {
                    contexts: list.clone(),
                    ..bind_body()
                },
            ));
        }
        for (name, body) in variants {
            let mut steps = handshake(level);
            if let Some(Step::Bind { body: b, .. }) = steps.first_mut() {
                *b = body;
            }
            steps.push(Step::Request(Req::listening(3, 0), Mutation::default()));
            push(format!("bind.{name}"), level, steps);
        }
        // Joining the group of a live association, then a second bind on one connection.
        let mut steps = handshake(level);
        steps.push(Step::Reconnect);
        let mut second = handshake(level);
        if let Some(Step::Bind { join_group, .. }) = second.first_mut() {
            *join_group = Some(1);
        }
        steps.extend(second);
        steps.push(Step::Request(Req::listening(3, 0), Mutation::default()));
        push("bind.assoc_group=live".to_owned(), level, steps);
        let mut steps = handshake(level);
        steps.push(bind(level));
        steps.push(Step::Request(Req::listening(4, 0), Mutation::default()));
        push("bind.second".to_owned(), level, steps);
        // Asking for concurrent multiplexing and header signing.
        let mut steps = handshake(level);
        if let Some(Step::Bind { mutation, .. }) = steps.first_mut() {
            mutation.flags_set = pfc::CONC_MPX | pfc::HDR_SIGN;
        }
        steps.push(Step::Request(
            Req {
                flags: pfc::FIRST,
                ..Req::listening(3, 0)
            },
            Mutation::default(),
        ));
        steps.push(Step::Request(Req::listening(4, 0), Mutation::default()));
        steps.push(Step::Request(
            Req {
                flags: pfc::LAST,
                ..Req::listening(3, 0)
            },
            Mutation::default(),
        ));
        push(
            "bind.flags=CONC_MPX+HDR_SIGN.interleaved".to_owned(),
            level,
            steps,
        );
    }

    // Bind auth fields.
    for level in Level::AUTH {
        for (name, auth) in [
            (
                "auth_type=unknown",
                Auth {
                    auth_type: Some(0x42),
                    ..natural()
                },
            ),
            (
                "auth_type=none",
                Auth {
                    auth_type: Some(0),
                    ..natural()
                },
            ),
            (
                "auth_level=0",
                Auth {
                    auth_level: Some(0),
                    ..natural()
                },
            ),
            (
                "auth_level=1",
                Auth {
                    auth_level: Some(1),
                    ..natural()
                },
            ),
            (
                "auth_level=7",
                Auth {
                    auth_level: Some(7),
                    ..natural()
                },
            ),
            (
                "auth_context_id=7",
                Auth {
                    context_id: Some(7),
                    ..natural()
                },
            ),
        ] {
            let mut steps = handshake(level);
            if let Some(Step::Bind { auth: a, .. }) = steps.first_mut() {
                *a = auth;
            }
            steps.push(Step::Request(Req::listening(3, 0), Mutation::default()));
            push(format!("bind.{name}"), level, steps);
        }
        // The auth3 fields.
        for (name, auth) in [
            (
                "auth_context_id=7",
                Auth {
                    context_id: Some(7),
                    ..natural()
                },
            ),
            (
                "auth_type=unknown",
                Auth {
                    auth_type: Some(0x42),
                    ..natural()
                },
            ),
            (
                "auth_level=other",
                Auth {
                    auth_level: Some(if level == Level::Privacy { 5 } else { 6 }),
                    ..natural()
                },
            ),
            ("no-trailer", Auth::default()),
            (
                "wrong-password",
                Auth {
                    wrong_password: true,
                    ..natural()
                },
            ),
        ] {
            let mut steps = handshake(level);
            if let Some(Step::Auth3 { auth: a, .. }) = steps.get_mut(1) {
                *a = auth;
            }
            steps.push(Step::Request(Req::listening(3, 0), Mutation::default()));
            push(format!("auth3.{name}"), level, steps);
        }
        let mut steps = handshake(level);
        steps.push(auth3());
        steps.push(Step::Request(Req::listening(3, 0), Mutation::default()));
        push("auth3.twice".to_owned(), level, steps);
        // The last leg in an alter_context instead of an auth3.
        let mut steps = vec![bind(level)];
        steps.push(Step::Alter {
            call_id: 2,
            body: bind_body(),
            auth: natural(),
            mutation: Mutation::default(),
        });
        steps.push(Step::Request(Req::listening(3, 0), Mutation::default()));
        push("alter.authenticate".to_owned(), level, steps);
        // A new security context once authenticated.
        for (name, auth) in [
            (
                "alter.reauth-context_id=1",
                Auth {
                    context_id: Some(1),
                    leg: Leg::Zeros,
                    ..Auth::default()
                },
            ),
            (
                "alter.reauth-same",
                Auth {
                    leg: Leg::Zeros,
                    auth_type: Some(10),
                    ..Auth::default()
                },
            ),
        ] {
            let mut steps = handshake(level);
            steps.push(Step::Alter {
                call_id: 3,
                body: BindBody {
                    contexts: vec![ctx(1, MGMT, &[NDR])],
                    ..bind_body()
                },
                auth,
                mutation: Mutation::default(),
            });
            steps.push(Step::Request(Req::listening(4, 0), Mutation::default()));
            push(name.to_owned(), level, steps);
        }
    }

    // Alter_context body fields.
    let alters: Vec<(&str, Vec<Ctx>)> = vec![
        ("new-unknown-abstract", vec![ctx(1, UNKNOWN_IF, &[NDR])]),
        ("new-transfer=bad", vec![ctx(1, MGMT, &[BAD_SYNTAX])]),
        ("new-transfer=ndr64", vec![ctx(1, MGMT, &[NDR64])]),
        ("new-btfn", vec![ctx(1, MGMT, &[BTFN])]),
        ("same-id-same", vec![ctx(0, MGMT, &[NDR])]),
        ("same-id-other-abstract", vec![ctx(0, EPM, &[NDR])]),
        ("same-id-bad-transfer", vec![ctx(0, MGMT, &[BAD_SYNTAX])]),
        (
            "duplicate-ids",
            vec![ctx(1, MGMT, &[NDR]), ctx(1, EPM, &[NDR])],
        ),
        ("none", vec![]),
        ("epm", vec![ctx(1, EPM, &[NDR])]),
    ];
    for level in [Level::None, Level::Integrity] {
        for (name, list) in &alters {
            let mut steps = handshake(level);
            steps.push(Step::Alter {
                call_id: 3,
                body: BindBody {
                    contexts: list.clone(),
                    ..bind_body()
                },
                auth: Auth::default(),
                mutation: Mutation::default(),
            });
            steps.push(Step::Request(Req::listening(4, 1), Mutation::default()));
            push(format!("alter.{name}"), level, steps);
        }
        for (name, body) in [
            (
                "max_xmit=1432",
                BindBody {
                    max_xmit: 1432,
                    max_recv: 1432,
                    contexts: vec![ctx(1, MGMT, &[NDR])],
                    ..bind_body()
                },
            ),
            (
                "assoc_group=unknown",
                BindBody {
                    assoc_group: 0x0bad_cafe,
                    contexts: vec![ctx(1, MGMT, &[NDR])],
                    ..bind_body()
                },
            ),
        ] {
            let mut steps = handshake(level);
            steps.push(Step::Alter {
                call_id: 3,
                body,
                auth: Auth::default(),
                mutation: Mutation::default(),
            });
            steps.push(Step::Request(Req::listening(4, 1), Mutation::default()));
            push(format!("alter.{name}"), level, steps);
        }
    }

    // Request body fields.
    for level in Level::ALL {
        let base = Req::listening(3, 0);
        let mut variants: Vec<(&str, Req)> = vec![
            (
                "p_cont_id=7",
                Req {
                    ctx: 7,
                    ..base.clone()
                },
            ),
            (
                "opnum=99",
                Req {
                    opnum: 99,
                    ..base.clone()
                },
            ),
            (
                "opnum=3",
                Req {
                    opnum: 3,
                    ..base.clone()
                },
            ),
            (
                "alloc_hint=0",
                Req {
                    alloc_hint: Some(0),
                    ..base.clone()
                },
            ),
            (
                "alloc_hint=max",
                Req {
                    alloc_hint: Some(u32::MAX),
                    ..base.clone()
                },
            ),
            (
                "object",
                Req {
                    object: Some(UNKNOWN_IF.0),
                    ..base.clone()
                },
            ),
            (
                "stub+4",
                Req {
                    stub: vec![1, 2, 3, 4],
                    ..base.clone()
                },
            ),
            (
                "opnum=0",
                Req {
                    opnum: 0,
                    ..base.clone()
                },
            ),
        ];
        // An MS-RPCE §2.2.2.13 verification trailer as the whole stub (is_server_listening
        // takes no input): matching the call, and with each kind of mismatch.
        let trailers: [(&str, Spoil); 6] = [
            ("trailer", |_| {}),
            ("trailer=header2-opnum", |t| {
                if let Some((header2, _)) = t.header2.as_mut() {
                    header2.opnum += 1;
                }
            }),
            ("trailer=pcontext-abstract", |t| {
                if let Some((pcontext, _)) = t.pcontext.as_mut() {
                    pcontext.abstract_syntax.version += 1;
                }
            }),
            ("trailer=bitmask-header-signing", |t| {
                t.bitmask1 = Some((trailer::CLIENT_SUPPORT_HEADER_SIGNING, false));
            }),
            ("trailer=duplicate", |_| {}),
            ("trailer=must-process-unknown", |_| {}),
        ];
        for (name, spoil) in trailers {
            variants.push((
                name,
                Req {
                    stub: verification_trailer(&base, name, spoil),
                    ..base.clone()
                },
            ));
        }
        if level == Level::None {
            variants.push((
                "verifier=auth_type-none",
                Req {
                    auth: Auth {
                        leg: Leg::Zeros,
                        auth_type: Some(0),
                        ..Auth::default()
                    },
                    ..base.clone()
                },
            ));
            variants.push((
                "verifier=ntlm",
                Req {
                    auth: Auth {
                        leg: Leg::Zeros,
                        auth_type: Some(10),
                        ..Auth::default()
                    },
                    ..base.clone()
                },
            ));
        } else {
            variants.push((
                "verifier=context_id-7",
                Req {
                    auth: Auth {
                        context_id: Some(7),
                        ..natural()
                    },
                    ..base.clone()
                },
            ));
            variants.push((
                "verifier=zeros",
                Req {
                    auth: Auth {
                        leg: Leg::Zeros,
                        ..Auth::default()
                    },
                    ..base.clone()
                },
            ));
            variants.push((
                "verifier=none",
                Req {
                    auth: Auth::default(),
                    ..base.clone()
                },
            ));
        }
        for (name, req) in variants {
            let mut steps = handshake(level);
            steps.push(Step::Request(req, Mutation::default()));
            push(format!("request.{name}"), level, steps);
        }
        // A first fragment without LAST, then another call.
        let mut steps = handshake(level);
        steps.push(Step::Request(
            Req {
                flags: pfc::FIRST,
                ..base.clone()
            },
            Mutation::default(),
        ));
        steps.push(Step::Request(Req::listening(4, 0), Mutation::default()));
        push(
            "request.unfinished-then-other-call".to_owned(),
            level,
            steps,
        );
        // A middle fragment with no first.
        let mut steps = handshake(level);
        steps.push(Step::Request(
            Req {
                flags: pfc::LAST,
                ..base.clone()
            },
            Mutation::default(),
        ));
        push("request.last-without-first".to_owned(), level, steps);
        // Two calls with the same id.
        let mut steps = handshake(level);
        steps.push(Step::Request(base.clone(), Mutation::default()));
        steps.push(Step::Request(base.clone(), Mutation::default()));
        push("request.call_id-reused".to_owned(), level, steps);
    }

    // co_cancel, orphaned and shutdown outside an exchange.
    for level in [Level::None, Level::Integrity] {
        for (p, label) in [
            (ptype::CO_CANCEL, "co_cancel"),
            (ptype::ORPHANED, "orphaned"),
            (ptype::SHUTDOWN, "shutdown"),
        ] {
            let mut steps = handshake(level);
            steps.push(Step::Bare {
                ptype: p,
                call_id: 77,
                mutation: Mutation::default(),
            });
            steps.push(Step::Request(Req::listening(3, 0), Mutation::default()));
            push(format!("{label}.unknown-call"), level, steps);
            if level == Level::None {
                let steps = vec![
                    Step::Bare {
                        ptype: p,
                        call_id: 1,
                        mutation: Mutation::default(),
                    },
                    bind(level),
                ];
                push(format!("{label}.before-bind"), level, steps);
            }
        }
        let steps = vec![Step::Request(Req::listening(1, 0), Mutation::default())];
        push("request.before-bind".to_owned(), level, steps);
        let steps = vec![Step::Auth3 {
            call_id: 1,
            auth: Auth {
                leg: Leg::Zeros,
                auth_type: Some(10),
                ..Auth::default()
            },
            mutation: Mutation::default(),
        }];
        push("auth3.before-bind".to_owned(), level, steps);
        let steps = vec![Step::Alter {
            call_id: 1,
            body: bind_body(),
            auth: Auth::default(),
            mutation: Mutation::default(),
        }];
        push("alter.before-bind".to_owned(), level, steps);
    }
    cases
}

/// Changes a trailer before it is encoded.
type Spoil = fn(&mut trailer::VerificationTrailer);

/// The verification trailer of `req` (mgmt over NDR, its header), spoilt; the `duplicate` and
/// `must-process-unknown` cases append a second bitmask or an unknown command 9 marked
/// must-process after it.
fn verification_trailer(req: &Req, name: &str, spoil: Spoil) -> Vec<u8> {
    let mgmt = SyntaxId::new(
        Uuid::from_str_const("afa8bd80-7d8a-11c9-bef4-08002b102989"),
        1,
        0,
    );
    let mut t = trailer::VerificationTrailer {
        bitmask1: Some((0, false)),
        pcontext: Some((
            trailer::PContext {
                abstract_syntax: mgmt,
                transfer_syntax: SyntaxId::NDR,
            },
            false,
        )),
        header2: Some((
            trailer::Header2::of_request(DataRep::LITTLE_ENDIAN, req.call_id, req.ctx, req.opnum),
            false,
        )),
        ..Default::default()
    };
    spoil(&mut t);
    let mut bytes = t.encode();
    let extra: &[u8] = match name {
        "trailer=duplicate" => &[0x01, 0x40, 0x04, 0x00, 0, 0, 0, 0],
        "trailer=must-process-unknown" => &[0x09, 0xc0, 0x04, 0x00, 0, 0, 0, 0],
        _ => return bytes,
    };
    // The header2 command (the last, 20 bytes from the end) loses its END flag.
    if let Some(flags) = bytes.len().checked_sub(19).and_then(|at| bytes.get_mut(at)) {
        *flags &= !0x40;
    }
    bytes.extend_from_slice(extra);
    bytes
}
