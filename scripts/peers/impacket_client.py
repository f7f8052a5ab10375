#!/usr/bin/env python3
"""An independent DCE/RPC client (impacket's) against a server on ncacn_ip_tcp.

Used by crates/dsbackup-transport/tests/peers.rs to check our server (and validated against Samba),
and handy by hand:

    scripts/peers/impacket_client.py --port 135 --user Administrator --password 'Passw0rd!123' \
        --domain TEST --level privacy --inq-if-ids --ept-map 12345778-1234-abcd-ef00-0123456789ac:1.0

Each operation opens its own connection to HOST[PORT], binds (anonymously without --user; with
NTLM at the given authentication level with it; with Kerberos through SPNEGO, auth type 9, given
--kerberos NAME: the service ticket for host/NAME from the credential cache KRB5CCNAME names,
as impacket's -k takes it, --user and --domain naming its client) and makes one call:

    --inq-if-ids              bind to mgmt (afa8bd80-7d8a-11c9-bef4-08002b102989 v1.0), inq_if_ids
    --ept-map UUID:MAJ.MIN    bind to the endpoint mapper, ept_map for that interface over
                              ncacn_ip_tcp (NDR 2.0)
    --ept-lookup              bind to the endpoint mapper, ept_lookup (every entry, 500 at a time)
    --hept-lookup             the same through impacket's own helper, epm.hept_lookup, whose loop
                              stops at the null entry handle and raises on any other status
    --call UUID:MAJ.MIN:OPNUM:HEX
                              bind to that interface, send one request with that opnum and stub

The result is one JSON object on stdout: {"target", "auth", "level", "user", "results": [...]}, one result
per operation in the order given, each either {"op", "ok": true, ...} or {"op", "ok": false,
"error": {"type", "message", "code"}} with impacket's exception and its message as impacket
prints it. A refused bind or call is a result, not a failure: the exit status is 0 unless the
arguments are wrong (2).
"""

import argparse
import json
import socket
import sys
from struct import unpack

from impacket.dcerpc.v5 import epm, mgmt, rpcrt, transport
from impacket.dcerpc.v5.rpcrt import (
    RPC_C_AUTHN_LEVEL_CONNECT,
    RPC_C_AUTHN_LEVEL_PKT_INTEGRITY,
    RPC_C_AUTHN_GSS_NEGOTIATE,
    RPC_C_AUTHN_LEVEL_PKT_PRIVACY,
    RPC_C_AUTHN_WINNT,
    DCERPCException,
)
from impacket.dcerpc.v5.ndr import NULL
from impacket.uuid import bin_to_string, uuidtup_to_bin

from impacket.structure import Structure


def bind_body_once(self):
    """MSRPCBind.getData writing the context list once, however often it is called.

    impacket's own appends the list to what the previous call left, and its SPNEGO leg
    (Kerberos, -k) builds the alter_context from the bind's object a second time: that PDU then
    says n_context_elem 1 and carries a second copy of the element after the list, 44 bytes
    that are neither body nor auth padding (MS-RPCE 2.2.2.11 puts the sec_trailer right after
    the body and its auth_pad_length bytes). Samba faults it nca_s_proto_error, and so does our
    server; with the list written once, both accept it.
    """
    items = self.getCtxItems()
    self["ctx_num"] = len(items)
    self["ctx_items"] = b"".join(item.getData() for item in items)
    return Structure.getData(self)


rpcrt.MSRPCBind.getData = bind_body_once

# The status an endpoint mapper returns when no (more) entries match.
EPT_S_NOT_REGISTERED = 0x16C9A0D6

LEVELS = {
    "connect": RPC_C_AUTHN_LEVEL_CONNECT,
    "integrity": RPC_C_AUTHN_LEVEL_PKT_INTEGRITY,
    "privacy": RPC_C_AUTHN_LEVEL_PKT_PRIVACY,
}


def interface(text):
    """UUID:MAJ.MIN -> impacket's 20-byte interface id."""
    uuid, _, version = text.rpartition(":")
    major, _, minor = version.partition(".")
    if not uuid or not major.isdigit() or not (minor or "0").isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not UUID:MAJOR.MINOR")
    return uuidtup_to_bin((uuid, f"{int(major)}.{int(minor or 0)}"))


def raw_call(text):
    """UUID:MAJ.MIN:OPNUM:HEX -> (interface id, opnum, stub bytes)."""
    parts = text.split(":")
    if len(parts) != 4 or not parts[2].isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not UUID:MAJOR.MINOR:OPNUM:HEX")
    try:
        stub = bytes.fromhex(parts[3])
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"stub of {text!r}: {e}") from e
    return interface(f"{parts[0]}:{parts[1]}"), int(parts[2]), stub


def if_id_json(iface):
    return {
        "uuid": bin_to_string(iface[:16]).lower(),
        "version": "%d.%d" % unpack("<HH", iface[16:20]),
    }


def binding_json(binding):
    """'ncacn_ip_tcp:0.0.0.0[49153]' -> binding, protseq, host, endpoint (as impacket prints)."""
    protseq, _, rest = binding.partition(":")
    host, _, endpoint = rest.partition("[")
    return {
        "binding": binding,
        "protseq": protseq,
        "host": host,
        "endpoint": endpoint[:-1] if endpoint.endswith("]") else endpoint,
    }


def entry_json(tower, annotation):
    """An endpoint-map entry (impacket's EPMTower, the NUL-terminated annotation) as JSON."""
    floors = tower["Floors"]
    return {
        "uuid": bin_to_string(floors[0]["InterfaceUUID"]).lower(),
        "version": "%d.%d" % (floors[0]["MajorVersion"], floors[0]["MinorVersion"]),
        "annotation": annotation[:-1].decode("utf-8", "replace"),
        **binding_json(epm.PrintStringBinding(floors)),
    }


class Client:
    def __init__(self, args):
        self.args = args

    def connect(self):
        # With Kerberos the binding names the service (the SPN is host/NAME), the socket goes
        # to --host.
        name = self.args.kerberos or self.args.host
        binding = f"ncacn_ip_tcp:{name}[{self.args.port}]"
        rpc_transport = transport.DCERPCTransportFactory(binding)
        rpc_transport.setRemoteHost(self.args.host)
        rpc_transport.set_connect_timeout(self.args.timeout)
        dce = rpc_transport.get_dce_rpc()
        if self.args.kerberos:
            rpc_transport.set_credentials(self.args.user or "", "", self.args.domain, "", "")
            rpc_transport.set_kerberos(True, kdcHost=self.args.host)
            dce.set_auth_type(RPC_C_AUTHN_GSS_NEGOTIATE)
            dce.set_auth_level(LEVELS[self.args.level])
        elif self.args.user is not None:
            rpc_transport.set_credentials(
                self.args.user, self.args.password, self.args.domain, "", ""
            )
            dce.set_auth_type(RPC_C_AUTHN_WINNT)
            dce.set_auth_level(LEVELS[self.args.level])
        dce.connect()
        return dce

    def run(self, op, body):
        dce = None
        try:
            dce = self.connect()
            return {"op": op, "ok": True, **body(dce)}
        except Exception as e:  # every failure is reported, typed by impacket's class
            code = getattr(e, "error_code", None)
            return {
                "op": op,
                "ok": False,
                "error": {
                    "type": type(e).__name__,
                    "message": str(e),
                    "code": code if isinstance(code, int) else None,
                },
            }
        finally:
            if dce is not None:
                try:
                    dce.disconnect()
                except Exception:
                    pass

    def inq_if_ids(self, dce):
        dce.bind(mgmt.MSRPC_UUID_MGMT)
        resp = mgmt.hinq_if_ids(dce)
        ids = []
        for item in resp["if_id_vector"]["if_id"]:
            ids.append(
                {
                    "uuid": bin_to_string(item["Uuid"]).lower(),
                    "version": f"{item['VersMajor']}.{item['VersMinor']}",
                }
            )
        return {"if_ids": ids}

    def ept_map(self, dce, iface):
        binding = epm.hept_map(self.args.host, iface, protocol="ncacn_ip_tcp", dce=dce)
        port = int(binding.rsplit("[", 1)[1].rstrip("]"))
        return {"interface": if_id_json(iface), "binding": binding, "port": port}

    def ept_lookup(self, dce):
        # impacket's own hept_lookup raises on the status Samba puts after the last entries
        # (ept_s_not_registered), so walk the handle here, with impacket's NDR: entries until the
        # handle comes back null or that status ends the list.
        dce.bind(epm.MSRPC_UUID_PORTMAP)
        entries = []
        handle = epm.ept_lookup_handle_t()
        while True:
            request = epm.ept_lookup()
            request["inquiry_type"] = epm.RPC_C_EP_ALL_ELTS
            request["object"] = NULL
            request["Ifid"] = NULL
            request["vers_option"] = epm.RPC_C_VERS_ALL
            request["entry_handle"] = handle
            request["max_ents"] = 500
            resp = dce.request(request, checkError=False)
            for i in range(resp["num_ents"]):
                entry = resp["entries"][i]
                tower = epm.EPMTower(b"".join(entry["tower"]["tower_octet_string"]))
                entries.append(entry_json(tower, b"".join(entry["annotation"])))
            status = resp["status"]
            handle = resp["entry_handle"]
            if status == EPT_S_NOT_REGISTERED or handle.isNull():
                break
            if status != 0:
                raise DCERPCException(error_code=status)
        return {"entries": entries}

    def hept_lookup(self, dce):
        entries = epm.hept_lookup(None, dce=dce)
        return {"entries": [entry_json(e["tower"], e["annotation"]) for e in entries]}

    def call(self, dce, spec):
        iface, opnum, stub = spec
        dce.bind(iface)
        dce.call(opnum, stub)
        answer = dce.recv()
        return {"interface": if_id_json(iface), "opnum": opnum, "response": answer.hex()}


class Op(argparse.Action):
    """Appends (operation, its argument or None) to the one list of operations."""

    def __call__(self, parser, namespace, values, option_string=None):
        ops = getattr(namespace, self.dest, None) or []
        ops.append((self.const, values if values != [] else None))
        setattr(namespace, self.dest, ops)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", help="NTLM user name; without it, binds are anonymous")
    parser.add_argument("--password", default="")
    parser.add_argument("--domain", default="")
    parser.add_argument("--level", choices=sorted(LEVELS), default="privacy")
    parser.add_argument(
        "--kerberos",
        metavar="NAME",
        help="Kerberos (SPNEGO) with the ticket for host/NAME from the KRB5CCNAME cache",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="connect timeout, seconds")
    # Every operation goes into one list, in the order of the command line.
    parser.add_argument("--inq-if-ids", dest="ops", action=Op, nargs=0, const="inq_if_ids")
    parser.add_argument("--ept-lookup", dest="ops", action=Op, nargs=0, const="ept_lookup")
    parser.add_argument("--hept-lookup", dest="ops", action=Op, nargs=0, const="hept_lookup")
    parser.add_argument("--ept-map", dest="ops", action=Op, const="ept_map", type=interface)
    parser.add_argument("--call", dest="ops", action=Op, const="call", type=raw_call)
    args = parser.parse_args()
    ops = args.ops or []
    if not ops:
        parser.error(
            "nothing to do: give --inq-if-ids, --ept-map, --ept-lookup, --hept-lookup or --call"
        )

    socket.setdefaulttimeout(args.timeout)
    client = Client(args)
    results = []
    for op, arg in ops:
        if op == "inq_if_ids":
            results.append(client.run(op, client.inq_if_ids))
        elif op == "ept_lookup":
            results.append(client.run(op, client.ept_lookup))
        elif op == "hept_lookup":
            results.append(client.run(op, client.hept_lookup))
        elif op == "ept_map":
            results.append(client.run(op, lambda dce, a=arg: client.ept_map(dce, a)))
        else:
            results.append(client.run(op, lambda dce, a=arg: client.call(dce, a)))
    json.dump(
        {
            "target": f"ncacn_ip_tcp:{args.host}[{args.port}]",
            "user": args.user,
            "auth": "kerberos" if args.kerberos else "ntlm" if args.user is not None else "none",
            "level": args.level if args.user is not None or args.kerberos else "none",
            "results": results,
        },
        sys.stdout,
        indent=1,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
