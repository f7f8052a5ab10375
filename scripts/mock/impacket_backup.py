#!/usr/bin/env python3
"""An independent client for the mock DC: impacket resolves ad_backup with ept_map on the
endpoint-mapper port, binds it with NTLM at packet privacy and takes a full backup with
hand-marshalled NDR stubs (spec/dsbackup.idl): prepare, list, open, read to the end of each
file, close, logs, end. Prints JSON: every file's name, size and SHA-256; on failure, exits 1
after printing {"error": ...} with impacket's exception.

usage: impacket_backup.py PORT EPM_PORT USER PASSWORD DOMAIN
(run by crates/dsbackup-mock/tests/impacket.rs against the served mock: `cargo xtask
conformance --peers impacket`)
"""
import hashlib
import json
import struct
import sys

from impacket.dcerpc.v5 import epm, transport
from impacket.dcerpc.v5.rpcrt import RPC_C_AUTHN_LEVEL_PKT_PRIVACY
from impacket.uuid import uuidtup_to_bin

AD_BACKUP = ("ECEC0D70-A603-11D0-96B1-00A0C91ECE30", "1.0")


def pad4(data):
    return data + b"\0" * (-len(data) % 4)


def wstring(text):
    """[string] wchar_t*, a top-level [ref] pointer: conformant varying, NUL included."""
    units = text.encode("utf-16-le") + b"\0\0"
    n = len(units) // 2
    return pad4(struct.pack("<III", n, 0, n) + units)


def status_of(stub):
    (status,) = struct.unpack_from("<I", stub, len(stub) - 4)
    if status:
        raise SystemExit("status 0x%08x" % status)


def names(stub):
    """A [ref] pointer to a [unique] wchar_t array, then the count and the status."""
    referent, max_count = struct.unpack_from("<II", stub, 0)
    units = stub[8 : 8 + 2 * max_count].decode("utf-16-le")
    status_of(stub)
    return [entry[1:] for entry in units.split("\0") if entry]


def connect(binding, credentials=None):
    rpc = transport.DCERPCTransportFactory(binding)
    if credentials:
        rpc.set_credentials(*credentials)
    dce = rpc.get_dce_rpc()
    if credentials:
        dce.set_auth_level(RPC_C_AUTHN_LEVEL_PKT_PRIVACY)
    dce.connect()
    return dce


def main():
    port, epm_port, user, password, domain = sys.argv[1:6]
    binding = "ncacn_ip_tcp:127.0.0.1[%s]" % port

    # ept_map, anonymous, on the endpoint mapper's own listener.
    mapped = epm.hept_map(
        "127.0.0.1",
        uuidtup_to_bin(AD_BACKUP),
        protocol="ncacn_ip_tcp",
        dce=connect("ncacn_ip_tcp:127.0.0.1[%s]" % epm_port),
    )

    dce = connect(binding, (user, password, domain))
    dce.bind(uuidtup_to_bin(AD_BACKUP))

    def call(opnum, stub):
        dce.call(opnum, stub)
        return dce.recv()

    prepared = call(
        0, struct.pack("<II", 0, 1) + wstring("NTDS Backup Interface") + struct.pack("<I", 4242)
    )
    status_of(prepared)
    handle = prepared[:20]
    files = names(call(2, handle)) + names(call(6, handle))
    out = []
    for name in files:
        opened = call(3, handle + wstring(name) + struct.pack("<I", 65536))
        status_of(opened)
        (size,) = struct.unpack_from("<q", opened, 0)
        digest, total = hashlib.sha256(), 0
        while total < size:
            read = call(4, handle + struct.pack("<I", 65536))
            status_of(read)
            _max_count, _offset, actual = struct.unpack_from("<III", read, 0)
            if actual == 0:
                break
            digest.update(read[12 : 12 + actual])
            total += actual
        status_of(call(5, handle))
        out.append({"name": name, "size": size, "read": total, "sha256": digest.hexdigest()})
    ended = call(1, handle)
    status_of(ended)
    print(json.dumps({"ept_map": mapped, "files": out, "end_handle_null": ended[:20] == bytes(20)}, indent=1))


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # impacket's exception, reported to the test
        print(json.dumps({"error": "%s: %s" % (type(error).__name__, error)}))
        sys.exit(1)
