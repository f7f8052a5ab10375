#!/usr/bin/env python3
"""Call-stub vectors for dsbackup-proto, encoded by impacket's NDR engine.

Usage: python3 scripts/vectors/ndr_vectors.py OUTDIR

Writes OUTDIR/ndr/<iface>-<opnum>-<name>-<request|response>[-variant].bin for every call of
ad_backup, ad_restore (declared here in impacket's NDR classes from spec/dsbackup.idl), epm and mgmt
(impacket's own impacket/dcerpc/v5/epm.py and mgmt.py definitions), plus OUTDIR/ndr/vectors.json:
for each file, the values it carries, shaped as dsbackup-proto serializes the decoded call
(IDL parameter names as keys; bytes as lowercase hex; UUIDs as text; name lists as
[{"kind": BFT, "name": path}]; statuses as integers).

Deterministic: referent ids are set explicitly, numbered as MIDL does (0x00020000, then +4 per
non-null pointer in marshaling order), so the same bytes come out on every run. impacket pads with
0xaa/0xab/0xce/... bytes where NDR leaves padding undefined; the Rust tests ignore padding bytes.

Differences from impacket, handled here (the IDL and C706 are normative):
- mgmt is_server_listening: impacket's response stops after `status`; C706 (and Samba) return
  a boolean32 after it, so the response class below adds `result`.
- ept_lookup_handle_free is not in impacket's epm.py: declared below from C706.
- impacket's twr_t/ept_entry_t/... are used as they are; their layouts agree with C706.
"""

import json
import os
import random
import struct
import sys

from impacket.dcerpc.v5 import epm, mgmt
from impacket.dcerpc.v5.dtypes import LONG, LONGLONG, LPWSTR, NULL, ULONG, USHORT, UUID, WSTR
from impacket.dcerpc.v5.ndr import (NDRCALL, NDRPOINTER, NDRSTRUCT, NDRUniConformantArray,
                                    NDRUniConformantVaryingArray)
from impacket.uuid import string_to_bin

FIRST_REFERENT = 0x00020000


# ---------------------------------------------------------------------------------------------
# ad_backup and ad_restore in impacket's NDR classes, from spec/dsbackup.idl

class CONTEXT_HANDLE(NDRSTRUCT):
    """ndr_context_handle: u32 attributes + uuid (20 bytes)."""
    structure = (
        ('context_handle_attributes', ULONG),
        ('context_handle_uuid', UUID),
    )


class BYTE_ARRAY(NDRUniConformantArray):
    item = 'c'


class PBYTE_ARRAY(NDRPOINTER):
    referent = (('Data', BYTE_ARRAY),)


class WCHAR_ARRAY(NDRUniConformantArray):
    item = USHORT


class PWCHAR_ARRAY(NDRPOINTER):
    referent = (('Data', WCHAR_ARRAY),)


class BYTE_CV_ARRAY(NDRUniConformantVaryingArray):
    item = 'c'


class EDB_RSTMAPW(NDRSTRUCT):
    structure = (
        ('wszDatabaseName', LPWSTR),
        ('wszNewDatabaseName', LPWSTR),
    )


class EDB_RSTMAPW_ARRAY(NDRUniConformantArray):
    item = EDB_RSTMAPW


class PEDB_RSTMAPW_ARRAY(NDRPOINTER):
    referent = (('Data', EDB_RSTMAPW_ARRAY),)


def call(name, opnum, fields):
    return type(name, (NDRCALL,), {'opnum': opnum, 'structure': tuple(fields)})


H = ('hContext', CONTEXT_HANDLE)
PH = ('phContext', CONTEXT_HANDLE)
STATUS = ('status', LONG)

AD_BACKUP = [
    (0, 'HrRBackupPrepare',
     [('grbit', ULONG), ('btFlag', ULONG), ('wszBackupAnnotation', WSTR), ('dwClientIdentifier', ULONG)],
     [PH, ('ppbExpiryToken', PBYTE_ARRAY), ('pcbExpiryToken', ULONG), STATUS]),
    (1, 'HrRBackupEnd', [PH], [PH, STATUS]),
    (2, 'HrRBackupGetAttachmentInformation', [H],
     [('ppwszzNames', PWCHAR_ARRAY), ('pcwcNames', ULONG), STATUS]),
    (3, 'HrRBackupOpenFile', [H, ('wszAttachmentName', WSTR), ('cbReadHintSize', ULONG)],
     [('pliFileSize', LONGLONG), STATUS]),
    (4, 'HrRBackupRead', [H, ('cbBuffer', ULONG)],
     [('pbBuffer', BYTE_CV_ARRAY), ('pcbRead', ULONG), STATUS]),
    (5, 'HrRBackupClose', [H], [STATUS]),
    (6, 'HrRBackupGetBackupLogs', [H], [('ppwszzNames', PWCHAR_ARRAY), ('pcwcNames', ULONG), STATUS]),
    (7, 'HrRBackupTruncateLogs', [H], [STATUS]),
    (8, 'HrRBackupPing', [], [STATUS]),
]

AD_RESTORE = [
    (0, 'HrRIsNTDSOnline', [], [('pfOnline', LONG), STATUS]),
    (1, 'HrRRestorePrepare',
     [('rtFlag', ULONG), ('pbExpiryToken', PBYTE_ARRAY), ('cbExpiryToken', ULONG)], [PH, STATUS]),
    (2, 'HrRRestoreRegister',
     [H, ('wszCheckpointFilePath', WSTR), ('wszLogPath', WSTR), ('rgrstmap', PEDB_RSTMAPW_ARRAY),
      ('crstmap', ULONG), ('wszBackupLogPath', WSTR), ('genLow', ULONG), ('genHigh', ULONG)],
     [STATUS]),
    (3, 'HrRRestoreRegisterComplete', [H, ('hrRestoreState', LONG)], [STATUS]),
    (4, 'HrRRestoreGetDatabaseLocations', [H],
     [('ppwszzLocations', PWCHAR_ARRAY), ('pcwcLocations', ULONG), STATUS]),
    (5, 'HrRRestoreEnd', [PH], [PH, STATUS]),
    (6, 'HrRRestoreSetCurrentLogNumber', [('dwCurrentLog', ULONG)], [STATUS]),
    (7, 'HrRRestoreCheckLogsForBackup', [('wszBackupAnnotation', WSTR)], [STATUS]),
]


class ept_lookup_handle_free(NDRCALL):
    """C706 ept_lookup_handle_free (opnum 4), absent from impacket's epm.py."""
    opnum = 4
    structure = (('entry_handle', epm.ept_lookup_handle_t),)


class ept_lookup_handle_freeResponse(NDRCALL):
    structure = (('entry_handle', epm.ept_lookup_handle_t), ('status', ULONG))


class is_server_listeningResponse(NDRCALL):
    """C706: [out] error_status_t *status, then the boolean32 return value."""
    structure = (('status', ULONG), ('result', ULONG))


# ---------------------------------------------------------------------------------------------
# Helpers: values in dsbackup-proto's JSON shape, and setters for impacket objects

class Ids:
    """MIDL-style referent ids, handed out in marshaling order."""

    def __init__(self):
        self.next = FIRST_REFERENT

    def take(self):
        value = self.next
        self.next += 4
        return value


def signed(value):
    return struct.unpack('<l', struct.pack('<L', value))[0]


def handle(attributes, uuid):
    return {'attributes': attributes, 'uuid': uuid}


def set_handle(target, value):
    target['context_handle_attributes'] = value['attributes']
    target['context_handle_uuid'] = string_to_bin(value['uuid'])


def name_units(entries):
    if not entries:
        return [0, 0]
    units = []
    for entry in entries:
        units.append(entry['kind'])
        units.extend(struct.unpack('<%dH' % len(entry['name']),
                                   entry['name'].encode('utf-16-le')) if entry['name'] else [])
        units.append(0)
    units.append(0)
    return units


def set_unique(req, field, ids, data):
    """A top-level pointer (unique or full) to `data` (None for NULL)."""
    if data is None:
        req[field] = NULL
    else:
        req.fields[field]['ReferentID'] = ids.take()
        req[field] = data


def set_wchar_array(req, field, ids, units):
    if units is None:
        req[field] = NULL
        return
    req.fields[field]['ReferentID'] = ids.take()
    items = []
    for unit in units:
        item = USHORT()
        item['Data'] = unit
        items.append(item)
    req[field] = items


def set_rstmap(req, ids, rstmap):
    if rstmap is None:
        req['rgrstmap'] = NULL
        return
    req.fields['rgrstmap']['ReferentID'] = ids.take()
    items = []
    for entry in rstmap:
        item = EDB_RSTMAPW()
        for key in ('wszDatabaseName', 'wszNewDatabaseName'):
            if entry[key] is None:
                item[key] = NULL
            else:
                item.fields[key]['ReferentID'] = ids.take()
                item[key] = entry[key] + '\x00'
        items.append(item)
    req['rgrstmap'] = items


def wstr(text):
    return text + '\x00'


def tower_bytes(floors):
    """Tower octets (little-endian lengths), from (protocol, lhs_data, rhs_data) floors."""
    out = struct.pack('<H', len(floors))
    for protocol, lhs, rhs in floors:
        out += struct.pack('<H', len(lhs) + 1) + bytes([protocol]) + lhs
        out += struct.pack('<H', len(rhs)) + rhs
    return out


def tcp_tower(if_uuid, major, minor, port, address):
    return tower_bytes([
        (0x0d, string_to_bin(if_uuid) + struct.pack('<H', major), struct.pack('<H', minor)),
        (0x0d, string_to_bin('8a885d04-1ceb-11c9-9fe8-08002b104860') + struct.pack('<H', 2),
         struct.pack('<H', 0)),
        (0x0b, b'', struct.pack('<H', 0)),
        (0x07, b'', struct.pack('>H', port)),
        (0x09, b'', bytes(address)),
    ])


def pipe_tower(if_uuid, major, pipe, host):
    return tower_bytes([
        (0x0d, string_to_bin(if_uuid) + struct.pack('<H', major), struct.pack('<H', 0)),
        (0x0d, string_to_bin('8a885d04-1ceb-11c9-9fe8-08002b104860') + struct.pack('<H', 2),
         struct.pack('<H', 0)),
        (0x0b, b'', struct.pack('<H', 0)),
        (0x0f, b'', pipe),
        (0x11, b'', host),
    ])


def set_twr(target, ids, octets):
    """An embedded or top-level twr_p_t."""
    if octets is None:
        target['ReferentID'] = 0
        target.referent = ()
        return
    target['ReferentID'] = ids.take()
    target['Data']['tower_length'] = len(octets)
    target['Data']['tower_octet_string'] = octets


# ---------------------------------------------------------------------------------------------
# The vectors

HANDLE_A = handle(0, '5f0c4a7e-91b2-4c3d-8e6f-0a1b2c3d4e5f')
HANDLE_NULL = handle(0, '00000000-0000-0000-0000-000000000000')
TOKEN = bytes.fromhex('01000000b4000000' '00803ed5deb19d01')
DB = {'kind': 0x44, 'name': '\\\\DC1\\C$\\Windows\\NTDS\\ntds.dit'}
LOGS = [{'kind': 0x21, 'name': '\\\\DC1\\C$\\Windows\\NTDS\\edb%05X.log' % i} for i in range(1, 41)]
PATCH = {'kind': 0x25, 'name': '\\\\DC1\\C$\\Windows\\NTDS\\ntds.pat'}
UNKNOWN = {'kind': 0x99, 'name': 'Ünïcødé-名前'}
LOCATIONS = [
    {'kind': 0x44, 'name': 'C:\\Windows\\NTDS\\ntds.dit'},
    {'kind': 0x82, 'name': 'C:\\Windows\\NTDS'},
    {'kind': 0x83, 'name': 'C:\\Windows\\NTDS'},
]
READ_DATA = bytes((i * 7 + (i >> 8)) & 0xff for i in range(65536))


def ad_backup_vectors():
    """(opnum, direction, variant, values, fill(req, ids))."""
    v = []

    def simple(opnum, direction, variant, values):
        def fill(req, ids):
            for key, value in values.items():
                if isinstance(value, dict) and 'attributes' in value:
                    set_handle(req[key], value)
                elif isinstance(value, str):
                    req[key] = wstr(value)
                elif key == 'status' or key == 'hrRestoreState' or key == 'pfOnline':
                    req[key] = signed(value)
                else:
                    req[key] = value
        v.append((opnum, direction, variant, values, fill))

    simple(0, 'request', '', {'grbit': 1, 'btFlag': 1, 'wszBackupAnnotation': 'NTDS Backup Interface',
                              'dwClientIdentifier': 4242})
    simple(0, 'request', 'logs-only', {'grbit': 0, 'btFlag': 2, 'wszBackupAnnotation': '',
                                       'dwClientIdentifier': 0xFFFFFFFF})

    def prepare_response(variant, token, status):
        values = {'phContext': HANDLE_A if token is not None else HANDLE_NULL,
                  'ppbExpiryToken': token.hex() if token is not None else None,
                  'pcbExpiryToken': len(token) if token is not None else 0, 'status': status}

        def fill(req, ids):
            set_handle(req['phContext'], values['phContext'])
            if token is None:
                req['ppbExpiryToken'] = NULL
            else:
                req.fields['ppbExpiryToken']['ReferentID'] = ids.take()
                req['ppbExpiryToken'] = list(token)
            req['pcbExpiryToken'] = values['pcbExpiryToken']
            req['status'] = signed(status)
        v.append((0, 'response', variant, values, fill))

    prepare_response('', TOKEN, 0)
    prepare_response('busy-null-token', None, 0xC80001F9)

    simple(1, 'request', '', {'phContext': HANDLE_A})
    simple(1, 'response', '', {'phContext': HANDLE_NULL, 'status': 0})

    def names_response(opnum, variant, field, count_field, entries, status=0, raw=None):
        units = raw if raw is not None else (None if entries is None else name_units(entries))
        values = {field: entries if raw is None else [], count_field: 0 if units is None else len(units),
                  'status': status}

        def fill(req, ids):
            set_wchar_array(req, field, ids, units)
            req[count_field] = values[count_field]
            req['status'] = signed(status)
        return values, fill

    simple(2, 'request', '', {'hContext': HANDLE_A})
    for variant, entries, raw in [('', [DB], None), ('empty', [], None), ('null', None, None),
                                  ('one-nul', None, [0]), ('unknown-bft', [UNKNOWN, PATCH], None)]:
        values, fill = names_response(2, variant, 'ppwszzNames', 'pcwcNames', entries, raw=raw)
        v.append((2, 'response', variant, values, fill))

    simple(3, 'request', '', {'hContext': HANDLE_A, 'wszAttachmentName': DB['name'],
                              'cbReadHintSize': 65536})
    simple(3, 'response', '', {'pliFileSize': 0x1_2345_6789, 'status': 0})
    simple(3, 'response', 'already-open', {'pliFileSize': 0, 'status': 0xC7FF0005})

    simple(4, 'request', '', {'hContext': HANDLE_A, 'cbBuffer': 65536})

    def read_response(variant, cb_buffer, data, status):
        values = {'pbBuffer': {'max_count': cb_buffer, 'data': data.hex()}, 'pcbRead': len(data),
                  'status': status}

        def fill(req, ids):
            req['pbBuffer'] = data
            req.fields['pbBuffer'].fields['MaximumCount'] = cb_buffer
            req['pcbRead'] = len(data)
            req['status'] = signed(status)
        v.append((4, 'response', variant, values, fill))

    read_response('', 65536, READ_DATA, 0)
    read_response('short', 65536, READ_DATA[:1021], 0)
    read_response('eof', 65536, b'', 0)

    simple(5, 'request', '', {'hContext': HANDLE_A})
    simple(5, 'response', '', {'status': 0xC7FF0003})
    simple(6, 'request', '', {'hContext': HANDLE_A})
    for variant, entries in [('', LOGS + [PATCH]), ('empty', [])]:
        values, fill = names_response(6, variant, 'ppwszzNames', 'pcwcNames', entries)
        v.append((6, 'response', variant, values, fill))
    simple(7, 'request', '', {'hContext': HANDLE_A})
    simple(7, 'response', '', {'status': 0})
    simple(8, 'request', '', {})
    simple(8, 'response', '', {'status': 5})

    restore = []

    def rsimple(opnum, direction, variant, values):
        before = len(v)
        simple(opnum, direction, variant, values)
        restore.append(v.pop(before))

    rsimple(0, 'request', '', {})
    rsimple(0, 'response', '', {'pfOnline': 1, 'status': 0})
    rsimple(0, 'response', 'restore-mode', {'pfOnline': 0, 'status': 0})

    def restore_prepare(variant, rt_flag, token, cb):
        values = {'rtFlag': rt_flag, 'pbExpiryToken': None if token is None else token.hex(),
                  'cbExpiryToken': cb}

        def fill(req, ids):
            req['rtFlag'] = rt_flag
            if token is None:
                req['pbExpiryToken'] = NULL
            else:
                req.fields['pbExpiryToken']['ReferentID'] = ids.take()
                req['pbExpiryToken'] = list(token)
            req['cbExpiryToken'] = cb
        restore.append((1, 'request', variant, values, fill))

    restore_prepare('', 4, TOKEN, 16)
    restore_prepare('restricted', 0, None, 0)
    rsimple(1, 'response', '', {'phContext': HANDLE_A, 'status': 0})
    rsimple(1, 'response', 'expired', {'phContext': HANDLE_NULL, 'status': 0xC7FF0011})

    def register(variant, rstmap):
        values = {'hContext': HANDLE_A, 'wszCheckpointFilePath': 'C:\\Windows\\NTDS',
                  'wszLogPath': 'C:\\Windows\\NTDS', 'rgrstmap': rstmap,
                  'crstmap': 0 if rstmap is None else len(rstmap),
                  'wszBackupLogPath': 'D:\\restore\\logs', 'genLow': 1, 'genHigh': 0xFFFFF}

        def fill(req, ids):
            set_handle(req['hContext'], HANDLE_A)
            for key in ('wszCheckpointFilePath', 'wszLogPath', 'wszBackupLogPath'):
                req[key] = wstr(values[key])
            set_rstmap(req, ids, rstmap)
            req['crstmap'] = values['crstmap']
            req['genLow'] = 1
            req['genHigh'] = 0xFFFFF
        restore.append((2, 'request', variant, values, fill))

    register('', [{'wszDatabaseName': 'C:\\old\\ntds.dit', 'wszNewDatabaseName': 'C:\\Windows\\NTDS\\ntds.dit'},
                  {'wszDatabaseName': None, 'wszNewDatabaseName': 'E:\\ntds.dit'},
                  {'wszDatabaseName': 'x', 'wszNewDatabaseName': None}])
    register('null-map', None)
    rsimple(2, 'response', '', {'status': 0})
    rsimple(3, 'request', '', {'hContext': HANDLE_A, 'hrRestoreState': 0xC8000230})
    rsimple(3, 'response', '', {'status': 0})
    rsimple(4, 'request', '', {'hContext': HANDLE_A})
    for variant, entries in [('', LOCATIONS), ('empty', [])]:
        values, fill = names_response(4, variant, 'ppwszzLocations', 'pcwcLocations', entries)
        restore.append((4, 'response', variant, values, fill))
    rsimple(5, 'request', '', {'phContext': HANDLE_A})
    rsimple(5, 'response', '', {'phContext': HANDLE_NULL, 'status': 0})
    rsimple(6, 'request', '', {'dwCurrentLog': 0xFFFFFFFF})
    rsimple(6, 'response', '', {'status': 87})
    rsimple(7, 'request', '', {'wszBackupAnnotation': 'NTDS Backup Interface'})
    rsimple(7, 'response', '', {'status': 0xC7FF000A})
    return v, restore


def epm_vectors():
    v = []
    ad_backup_if = ('ecec0d70-a603-11d0-96b1-00a0c91ece30', 1, 0)
    tower = tcp_tower(ad_backup_if[0], 1, 0, 49667, [10, 0, 0, 5])
    map_tower = tcp_tower(ad_backup_if[0], 1, 0, 0, [0, 0, 0, 0])

    def lookup_request(variant, obj, ifid, entry_handle):
        values = {'inquiry_type': 0, 'object': obj,
                  'interface_id': None if ifid is None else {'uuid': ifid[0], 'vers_major': ifid[1],
                                                             'vers_minor': ifid[2]},
                  'vers_option': 1, 'entry_handle': entry_handle, 'max_ents': 500}

        def fill(req, ids):
            req['inquiry_type'] = 0
            if obj is None:
                req['object'] = NULL
            else:
                req.fields['object']['ReferentID'] = ids.take()
                req.fields['object'].fields['Data']['Data'] = string_to_bin(obj)
            if ifid is None:
                req['Ifid'] = NULL
            else:
                req.fields['Ifid']['ReferentID'] = ids.take()
                req['Ifid']['Uuid'] = string_to_bin(ifid[0])
                req['Ifid']['VersMajor'] = ifid[1]
                req['Ifid']['VersMinor'] = ifid[2]
            req['vers_option'] = 1
            set_handle(req['entry_handle'], entry_handle)
            req['max_ents'] = 500
        v.append((2, 'request', variant, values, fill, epm.ept_lookup))

    lookup_request('', None, None, HANDLE_NULL)
    lookup_request('object-and-interface', '6bffd098-a112-3610-9833-46c3f87e345a', ad_backup_if, HANDLE_A)

    def lookup_response(variant, entries, status, max_ents=500, entry_handle=HANDLE_A):
        values = {'entry_handle': entry_handle, 'num_ents': len(entries),
                  'entries': {'max_count': max_ents,
                              'items': [{'object': e[0],
                                         'tower': None if e[1] is None else {'tower_octet_string': e[1].hex()},
                                         'annotation': e[2]} for e in entries]},
                  'status': status}

        def fill(req, ids):
            set_handle(req['entry_handle'], entry_handle)
            req['num_ents'] = len(entries)
            items = []
            for obj, octets, annotation in entries:
                item = epm.ept_entry_t()
                item['object'] = string_to_bin(obj)
                set_twr(item.fields['tower'], ids, octets)
                item['annotation'] = annotation.encode('latin-1') + b'\x00'
                items.append(item)
            req['entries'] = items
            req.fields['entries'].fields['MaximumCount'] = max_ents
            req['status'] = status
        v.append((2, 'response', variant, values, fill, epm.ept_lookupResponse))

    lookup_response('', [
        ('00000000-0000-0000-0000-000000000000', tower, 'NTDS Backup Interface'),
        ('00000000-0000-0000-0000-000000000000',
         pipe_tower('16e0cf3a-a604-11d0-96b1-00a0c91ece30', 1, b'\\PIPE\\lsass\x00', b'\\\\DC1\x00'),
         'NTDS Restore Interface'),
        ('12345678-1234-5678-9abc-def012345678', None, ''),
    ], 0)
    lookup_response('end', [], 0x16c9a0d6, entry_handle=HANDLE_NULL)

    def map_request(variant, obj, octets, entry_handle):
        values = {'object': obj, 'map_tower': None if octets is None else {'tower_octet_string': octets.hex()},
                  'entry_handle': entry_handle, 'max_towers': 4}

        def fill(req, ids):
            if obj is None:
                req['obj'] = NULL
            else:
                req.fields['obj']['ReferentID'] = ids.take()
                req.fields['obj'].fields['Data']['Data'] = string_to_bin(obj)
            set_twr(req.fields['map_tower'], ids, octets)
            set_handle(req['entry_handle'], entry_handle)
            req['max_towers'] = 4
        v.append((3, 'request', variant, values, fill, epm.ept_map))

    map_request('', None, map_tower, HANDLE_NULL)
    map_request('with-object', 'b2a5c2f1-0000-4000-8000-00000000abcd', map_tower, HANDLE_A)

    def map_response(variant, towers, status, entry_handle=HANDLE_NULL):
        values = {'entry_handle': entry_handle, 'num_towers': len(towers),
                  'towers': {'max_count': 4,
                             'items': [None if t is None else {'tower_octet_string': t.hex()} for t in towers]},
                  'status': status}

        def fill(req, ids):
            set_handle(req['entry_handle'], entry_handle)
            req['num_towers'] = len(towers)
            items = []
            for octets in towers:
                item = epm.twr_p_t()
                set_twr(item, ids, octets)
                items.append(item)
            req['ITowers'] = items
            req.fields['ITowers'].fields['MaximumCount'] = 4
            req['status'] = status
        v.append((3, 'response', variant, values, fill, epm.ept_mapResponse))

    map_response('', [tower, tcp_tower(ad_backup_if[0], 1, 0, 1025, [192, 168, 1, 20])], 0)
    map_response('not-registered', [], 0x16c9a0d6)

    def free(direction, values, cls):
        def fill(req, ids):
            set_handle(req['entry_handle'], values['entry_handle'])
            if 'status' in values:
                req['status'] = values['status']
        v.append((4, direction, '', values, fill, cls))

    free('request', {'entry_handle': HANDLE_A}, ept_lookup_handle_free)
    free('response', {'entry_handle': HANDLE_NULL, 'status': 0}, ept_lookup_handle_freeResponse)
    return v


def mgmt_vectors():
    v = []

    def plain(opnum, direction, variant, values, cls):
        def fill(req, ids):
            for key, value in values.items():
                req[key] = value
        v.append((opnum, direction, variant, values, fill, cls))

    plain(0, 'request', '', {}, mgmt.inq_if_ids)

    def if_ids(variant, ifs):
        values = {'if_id_vector': None if ifs is None else {
            'if_id': [None if i is None else {'uuid': i[0], 'vers_major': i[1], 'vers_minor': i[2]}
                      for i in ifs]}, 'status': 0}

        def fill(req, ids):
            if ifs is None:
                req['if_id_vector'] = NULL
            else:
                req.fields['if_id_vector']['ReferentID'] = ids.take()
                req['if_id_vector']['count'] = len(ifs)
                items = []
                for i in ifs:
                    item = epm.PRPC_IF_ID()
                    if i is None:
                        item['ReferentID'] = 0
                        item.referent = ()
                    else:
                        item['ReferentID'] = ids.take()
                        item['Data']['Uuid'] = string_to_bin(i[0])
                        item['Data']['VersMajor'] = i[1]
                        item['Data']['VersMinor'] = i[2]
                    items.append(item)
                req['if_id_vector']['if_id'] = items
        v.append((0, 'response', variant, values, fill, mgmt.inq_if_idsResponse))

    if_ids('', [('ecec0d70-a603-11d0-96b1-00a0c91ece30', 1, 0), None,
                ('afa8bd80-7d8a-11c9-bef4-08002b102989', 1, 0)])
    if_ids('null', None)

    plain(1, 'request', '', {'count': 4}, mgmt.inq_stats)

    def stats(values):
        def fill(req, ids):
            req['count'] = values['count']
            req['statistics'] = values['statistics']
            req['status'] = values['status']
        v.append((1, 'response', '', values, fill, mgmt.inq_statsResponse))

    stats({'count': 4, 'statistics': [12, 11, 30, 29], 'status': 0})
    plain(2, 'request', '', {}, mgmt.is_server_listening)
    plain(2, 'response', '', {'status': 0, 'result': 1}, is_server_listeningResponse)
    plain(3, 'request', '', {}, mgmt.stop_server_listening)
    plain(3, 'response', '', {'status': 5}, mgmt.stop_server_listeningResponse)
    plain(4, 'request', '', {'authn_proto': 10, 'princ_name_size': 256}, mgmt.inq_princ_name)

    def princ(variant, size, text, status):
        values = {'princ_name': {'max_count': size, 'text': text}, 'status': status}

        def fill(req, ids):
            req['princ_name'] = text.encode('latin-1') + b'\x00'
            req.fields['princ_name'].fields['MaximumCount'] = size
            req['status'] = status
        v.append((4, 'response', variant, values, fill, mgmt.inq_princ_nameResponse))

    princ('', 256, 'DC1$@CORP.EXAMPLE', 0)
    return v


def main():
    if len(sys.argv) != 2:
        sys.exit('usage: ndr_vectors.py OUTDIR')
    random.seed(0)
    outdir = os.path.join(sys.argv[1], 'ndr')
    os.makedirs(outdir, exist_ok=True)
    backup, restore = ad_backup_vectors()
    tables = {'ad_backup': AD_BACKUP, 'ad_restore': AD_RESTORE}
    all_vectors = []
    for iface, vectors in (('ad_backup', backup), ('ad_restore', restore)):
        table = {opnum: (name, req, resp) for opnum, name, req, resp in tables[iface]}
        for opnum, direction, variant, values, fill in vectors:
            name, req_fields, resp_fields = table[opnum]
            cls = call(name + ('Response' if direction == 'response' else ''), opnum,
                       req_fields if direction == 'request' else resp_fields)
            all_vectors.append((iface, opnum, name, direction, variant, values, fill, cls))
    for iface, vectors, table in (('epm', epm_vectors(), {2: 'ept_lookup', 3: 'ept_map',
                                                          4: 'ept_lookup_handle_free'}),
                                  ('mgmt', mgmt_vectors(), {0: 'inq_if_ids', 1: 'inq_stats',
                                                            2: 'is_server_listening',
                                                            3: 'stop_server_listening',
                                                            4: 'inq_princ_name'})):
        for opnum, direction, variant, values, fill, cls in vectors:
            all_vectors.append((iface, opnum, table[opnum], direction, variant, values, fill, cls))

    manifest = []
    for iface, opnum, name, direction, variant, values, fill, cls in all_vectors:
        req = cls()
        fill(req, Ids())
        data = req.getData()
        file = '%s-%d-%s-%s%s.bin' % (iface, opnum, name, direction, '-' + variant if variant else '')
        with open(os.path.join(outdir, file), 'wb') as out:
            out.write(data)
        manifest.append({'file': file, 'interface': iface, 'opnum': opnum, 'name': name,
                         'direction': direction, 'variant': variant, 'values': values})
    with open(os.path.join(outdir, 'vectors.json'), 'w') as out:
        json.dump({'generator': 'scripts/vectors/ndr_vectors.py (impacket NDR)', 'vectors': manifest},
                  out, indent=1, ensure_ascii=False, sort_keys=True)
        out.write('\n')
    print('wrote %d vectors to %s' % (len(manifest), outdir))


if __name__ == '__main__':
    main()
