#!/usr/bin/env python3
"""NTLM vectors from impacket (an independent implementation), for dsbackup-ntlm's tests.

Usage: python3 scripts/vectors/ntlm_vectors.py OUTDIR

Writes OUTDIR/ntlm/impacket-*.bin and OUTDIR/ntlm/impacket-vectors.json (every input and every
expected value, hex). Deterministic: impacket's random client challenge and session key are
replaced by a fixed sequence, and every timestamp comes from the CHALLENGE.

What the vectors cover:
- impacket as the initiator (getNTLMSSPType1 / getNTLMSSPType3) against a CHALLENGE laid out
  exactly as dsbackup's acceptor lays it out (the Rust test checks our acceptor produces these
  very bytes): the AUTHENTICATE with the right password (to be accepted, with impacket's
  exported session key), with a wrong password and with an unknown user (to be refused); once
  without and once with the VERSION field (and a MIC field filled as impacket.ldap fills it).
- what impacket computes for the blob dsbackup's initiator sends on fixed inputs (NTOWFv2,
  NTProofStr, session base key, encrypted random session key), and the NEGOTIATE and
  AUTHENTICATE (with its MIC) dsbackup's initiator must send, laid out by impacket.
- impacket's SEAL and SIGN over a DCE/RPC request PDU in both directions, two PDUs each, with
  the RC4 handles kept across PDUs, as impacket.dcerpc.v5.rpcrt uses them.
"""

import hashlib
import json
import os
import struct
import sys

from Cryptodome.Cipher import ARC4
from impacket import ntlm, version

USER = "Administrator"
DOMAIN = "CORP"
PASSWORD = "Passw0rd!123"
WRONG_PASSWORD = "Passw0rd!124"
UNKNOWN_USER = "Mallory"
NB_COMPUTER = "DC1"
NB_DOMAIN = "CORP"
DNS_DOMAIN = "corp.example"
DNS_COMPUTER = "dc1.corp.example"
SERVER_CHALLENGE = bytes.fromhex("0123456789abcdef")
# 2026-01-01T00:00:00Z as a FILETIME.
TIMESTAMP = 134116992000000000
# VERSION of dsbackup's acceptor: 10.0 build 20348, NTLMSSP_REVISION_W2K3.
ACCEPTOR_VERSION = bytes([10, 0]) + struct.pack("<H", 20348) + b"\x00\x00\x00\x0f"

# Inputs of dsbackup's initiator for the "ours" vector.
OUR_CLIENT_CHALLENGE = bytes.fromhex("0102030405060708")
OUR_RANDOM_SESSION_KEY = bytes.fromhex("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf")
OUR_SPN = "host/dc1.corp.example"

EXPORTED_SESSION_KEY = bytes(range(0x40, 0x50))


class FixedRandom:
    """Stands in for the `random` module inside impacket.ntlm: choice() walks a fixed string."""

    def __init__(self, text):
        self.text = text
        self.at = 0

    def choice(self, _seq):
        c = self.text[self.at % len(self.text)]
        self.at += 1
        return c


def av_pairs_for_acceptor():
    """TargetInfo in the order dsbackup's acceptor writes it."""
    av = ntlm.AV_PAIRS()
    av[ntlm.NTLMSSP_AV_DOMAINNAME] = NB_DOMAIN.encode("utf-16le")
    av[ntlm.NTLMSSP_AV_HOSTNAME] = NB_COMPUTER.encode("utf-16le")
    av[ntlm.NTLMSSP_AV_DNS_DOMAINNAME] = DNS_DOMAIN.encode("utf-16le")
    av[ntlm.NTLMSSP_AV_DNS_HOSTNAME] = DNS_COMPUTER.encode("utf-16le")
    av[ntlm.NTLMSSP_AV_DNS_TREENAME] = DNS_DOMAIN.encode("utf-16le")
    av[ntlm.NTLMSSP_AV_TIME] = struct.pack("<Q", TIMESTAMP)
    return av


def challenge_for(negotiate_flags):
    """The CHALLENGE dsbackup's acceptor answers to a NEGOTIATE with these flags."""
    grantable = (
        ntlm.NTLMSSP_NEGOTIATE_SIGN
        | ntlm.NTLMSSP_NEGOTIATE_SEAL
        | ntlm.NTLMSSP_NEGOTIATE_ALWAYS_SIGN
        | ntlm.NTLMSSP_NEGOTIATE_128
        | ntlm.NTLMSSP_NEGOTIATE_56
        | ntlm.NTLMSSP_NEGOTIATE_KEY_EXCH
        | ntlm.NTLMSSP_NEGOTIATE_IDENTIFY
        | ntlm.NTLMSSP_REQUEST_TARGET
    )
    flags = (negotiate_flags & grantable) | (
        ntlm.NTLMSSP_NEGOTIATE_NTLM
        | ntlm.NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY
        | ntlm.NTLMSSP_NEGOTIATE_TARGET_INFO
        | ntlm.NTLMSSP_NEGOTIATE_VERSION
        | ntlm.NTLMSSP_TARGET_TYPE_DOMAIN
        | ntlm.NTLMSSP_NEGOTIATE_UNICODE
    )
    target_name = NB_DOMAIN.encode("utf-16le")
    info = av_pairs_for_acceptor().getData()
    chal = ntlm.NTLMAuthChallenge()
    chal["flags"] = flags
    chal["challenge"] = SERVER_CHALLENGE
    chal["reserved"] = b"\x00" * 8
    chal["Version"] = ACCEPTOR_VERSION
    chal["domain_name"] = target_name
    chal["domain_offset"] = 56
    chal["TargetInfoFields"] = info
    chal["TargetInfoFields_offset"] = 56 + len(target_name)
    return chal.getData()


def handshake(name, with_version, cases):
    """impacket's NEGOTIATE, our CHALLENGE, and impacket's AUTHENTICATE for each case."""
    out = {}
    version_field = ACCEPTOR_VERSION if with_version else None
    type1 = ntlm.getNTLMSSPType1("", "", signingRequired=True, use_ntlmv2=True, version=version_field)
    negotiate = type1.getData()
    challenge = challenge_for(type1["flags"])
    out["negotiate"] = write(f"impacket-{name}-negotiate.bin", negotiate)
    out["challenge"] = write(f"impacket-{name}-challenge.bin", challenge)
    for case, user, password in cases:
        ntlm.random = FixedRandom("dsbackupNTLMvectors0123456789")
        type3, exported = ntlm.getNTLMSSPType3(
            type1, challenge, user, password, DOMAIN, service="host", version=version_field
        )
        if with_version:
            # As impacket.ldap does with a VERSION: the MIC field is only filled in afterwards
            # (impacket's MsvAvFlags never announce it, so servers do not check it).
            type3["MIC"] = ntlm.hmac_md5(exported, negotiate + challenge + type3.getData())
        out[case] = {
            "authenticate": write(f"impacket-{name}-authenticate-{case}.bin", type3.getData()),
            "user": user,
            "password": password,
            "exported_session_key": exported.hex(),
        }
    return out


def our_initiator_expectations():
    """What impacket's primitives give for the blob dsbackup's initiator sends on fixed inputs,
    answering the CHALLENGE of the `plain` handshake: the server's pairs, then MsvAvFlags with the
    MIC bit, MsvAvChannelBindings zero, MsvAvTargetName, MsvAvEOL, Z(4)."""
    av = av_pairs_for_acceptor()
    av[ntlm.NTLMSSP_AV_FLAGS] = struct.pack("<I", 0x2)
    av[ntlm.NTLMSSP_AV_CHANNEL_BINDINGS] = b"\x00" * 16
    av[ntlm.NTLMSSP_AV_TARGET_NAME] = OUR_SPN.encode("utf-16le")
    blob = (
        b"\x01\x01" + b"\x00" * 6 + struct.pack("<Q", TIMESTAMP) + OUR_CLIENT_CHALLENGE
        + b"\x00" * 4 + av.getData() + b"\x00" * 4
    )
    key = ntlm.NTOWFv2(USER, PASSWORD, DOMAIN)
    proof = ntlm.hmac_md5(key, SERVER_CHALLENGE + blob)
    base = ntlm.hmac_md5(key, proof)
    encrypted = ntlm.generateEncryptedSessionKey(base, OUR_RANDOM_SESSION_KEY)

    # dsbackup's NEGOTIATE: its default flags (all granted by this CHALLENGE, so also the flags of
    # its AUTHENTICATE), no domain or workstation (offsets 40), VERSION.
    flags = (
        ntlm.NTLMSSP_NEGOTIATE_UNICODE | ntlm.NTLMSSP_REQUEST_TARGET | ntlm.NTLMSSP_NEGOTIATE_SIGN
        | ntlm.NTLMSSP_NEGOTIATE_SEAL | ntlm.NTLMSSP_NEGOTIATE_NTLM
        | ntlm.NTLMSSP_NEGOTIATE_ALWAYS_SIGN | ntlm.NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY
        | ntlm.NTLMSSP_NEGOTIATE_TARGET_INFO | ntlm.NTLMSSP_NEGOTIATE_VERSION
        | ntlm.NTLMSSP_NEGOTIATE_128 | ntlm.NTLMSSP_NEGOTIATE_KEY_EXCH | ntlm.NTLMSSP_NEGOTIATE_56
    )
    negotiate = struct.pack("<8sIIHHIHHI", b"NTLMSSP\x00", 1, flags, 0, 0, 40, 0, 0, 40) + ACCEPTOR_VERSION
    challenge = challenge_for(ntlm.getNTLMSSPType1("", "", signingRequired=True, use_ntlmv2=True)["flags"])
    # Its AUTHENTICATE, laid out by impacket, with the MIC over the three messages
    # ([MS-NLMP] 3.1.5.1.2), computed with impacket's hmac_md5.
    auth = ntlm.NTLMAuthChallengeResponse()
    auth["flags"] = flags
    auth["domain_name"] = DOMAIN.encode("utf-16le")
    auth["user_name"] = USER.encode("utf-16le")
    auth["host_name"] = b""
    auth["lanman"] = b"\x00" * 24
    auth["ntlm"] = proof + blob
    auth["session_key"] = encrypted
    auth["Version"] = ACCEPTOR_VERSION
    auth["MIC"] = b"\x00" * 16
    auth["MIC"] = ntlm.hmac_md5(OUR_RANDOM_SESSION_KEY, negotiate + challenge + auth.getData())
    return {
        "negotiate": write("impacket-ours-negotiate.bin", negotiate),
        "authenticate": write("impacket-ours-authenticate.bin", auth.getData()),
        "client_challenge": OUR_CLIENT_CHALLENGE.hex(),
        "random_session_key": OUR_RANDOM_SESSION_KEY.hex(),
        "target_spn": OUR_SPN,
        "response_key_nt": key.hex(),
        "nt_challenge_response": (proof + blob).hex(),
        "session_base_key": base.hex(),
        "encrypted_random_session_key": encrypted.hex(),
    }


def request_pdu(call_id, stub, auth_level):
    """A DCE/RPC request PDU up to the end of its sec_trailer (auth_length 16), and the stub
    range: header (16), alloc_hint, p_cont_id, opnum (8), stub + auth pad, sec_trailer (8)."""
    pad = (-len(stub)) % 16
    body = stub + b"\xbb" * pad
    frag_length = 24 + len(body) + 8 + 16
    header = struct.pack("<BBBB4sHHI", 5, 0, 0, 0x03, b"\x10\x00\x00\x00", frag_length, 16, call_id)
    request = struct.pack("<IHH", len(stub), 0, 0)
    trailer = struct.pack("<BBBBI", 10, auth_level, pad, 0, 79231)
    pdu = header + request + body + trailer
    return pdu, (24, 24 + len(body))


def session_security():
    """impacket's SEAL (privacy) and SIGN (integrity) with fixed keys, as rpcrt drives them."""
    flags = (
        ntlm.NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY
        | ntlm.NTLMSSP_NEGOTIATE_128
        | ntlm.NTLMSSP_NEGOTIATE_KEY_EXCH
        | ntlm.NTLMSSP_NEGOTIATE_SEAL
        | ntlm.NTLMSSP_NEGOTIATE_SIGN
        | ntlm.NTLMSSP_NEGOTIATE_UNICODE
    )
    out = {"flags": flags, "exported_session_key": EXPORTED_SESSION_KEY.hex(), "pdus": []}
    stubs = [b"first stub of the fragment", b"the second one, a little longer than the first"]
    for direction, mode in (("c2s", "Client"), ("s2c", b"Server")):
        sign_key = ntlm.SIGNKEY(flags, EXPORTED_SESSION_KEY, mode)
        seal_key = ntlm.SEALKEY(flags, EXPORTED_SESSION_KEY, mode)
        for level, name in ((6, "privacy"), (5, "integrity")):
            handle = ARC4.new(seal_key).encrypt
            for seq, stub in enumerate(stubs):
                pdu, (start, end) = request_pdu(seq + 1, stub, level)
                if level == 6:
                    sealed, signature = ntlm.SEAL(flags, sign_key, seal_key, pdu, pdu[start:end], seq, handle)
                    wire = pdu[:start] + sealed + pdu[end:]
                else:
                    signature = ntlm.SIGN(flags, sign_key, pdu, seq, handle)
                    wire = pdu
                plain = write(f"impacket-{direction}-{name}-{seq}-plain.bin", pdu)
                # At integrity the PDU goes out as it is: one file serves as both.
                sent = write(f"impacket-{direction}-{name}-{seq}-sealed.bin", wire) if level == 6 else plain
                out["pdus"].append({
                    "direction": direction,
                    "level": name,
                    "seq_num": seq,
                    "stub_range": [start, end],
                    "plain": plain,
                    "wire": sent,
                    "signature": signature.getData().hex(),
                })
        out[f"{direction}_signing_key"] = sign_key.hex()
        out[f"{direction}_sealing_key"] = seal_key.hex()
    return out


OUTDIR = None


def write(name, data):
    path = os.path.join(OUTDIR, "ntlm", name)
    with open(path, "wb") as f:
        f.write(data)
    return {"file": name, "sha256": hashlib.sha256(data).hexdigest()}


def main():
    global OUTDIR
    if len(sys.argv) != 2:
        sys.exit("usage: ntlm_vectors.py OUTDIR")
    OUTDIR = sys.argv[1]
    os.makedirs(os.path.join(OUTDIR, "ntlm"), exist_ok=True)
    cases = [
        ("right-password", USER, PASSWORD),
        ("wrong-password", USER, WRONG_PASSWORD),
        ("unknown-user", UNKNOWN_USER, PASSWORD),
    ]
    manifest = {
        "generator": "scripts/vectors/ntlm_vectors.py",
        "impacket": version.version,
        "server": {
            "user": USER,
            "domain": DOMAIN,
            "password": PASSWORD,
            "nb_computer_name": NB_COMPUTER,
            "nb_domain_name": NB_DOMAIN,
            "dns_domain_name": DNS_DOMAIN,
            "dns_computer_name": DNS_COMPUTER,
            "server_challenge": SERVER_CHALLENGE.hex(),
            "timestamp": TIMESTAMP,
        },
        "handshakes": {
            "plain": handshake("plain", False, cases),
            "version": handshake("version", True, cases[:1]),
        },
        "our_initiator": our_initiator_expectations(),
        "session": session_security(),
    }
    with open(os.path.join(OUTDIR, "ntlm", "impacket-vectors.json"), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
