/*
 * ntdsbcli.h: the NTDS backup client API (libntdsbcli, from the dsbackup project) for Linux.
 *
 * The functions, types and constants Windows' ntdsbcli.h declares, with the same names,
 * parameters and return values, so that a program written for Windows builds with nothing
 * changed but the include path and the link line (-lntdsbcli, or `pkg-config --libs ntdsbcli`).
 * WCHAR is char16_t (UTF-16, as on Windows); the A forms take UTF-8.
 *
 * Statuses (hr*) are in ntdsbmsg.h, included below; the Win32 and RPC codes the functions
 * return besides them are defined here when <winerror.h> did not define them already.
 * The library's README documents each function's behaviour and the HRESULT of each failure.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef NTDSBCLI_H
#define NTDSBCLI_H

#include <stdint.h>
#include <uchar.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Windows base types ------------------------------------------------------------------ */
#ifndef NTDSBCLI_NO_WINDOWS_TYPES
#ifndef _HRESULT_DEFINED
#define _HRESULT_DEFINED
typedef int32_t HRESULT;
#endif
typedef int32_t BOOL;
typedef int32_t LONG;
typedef uint32_t ULONG;
typedef uint32_t DWORD;
typedef DWORD *LPDWORD;
typedef DWORD *PDWORD;
typedef void VOID;
typedef void *PVOID;
typedef char CHAR;
typedef char *LPSTR;
typedef const char *LPCSTR;
typedef char16_t WCHAR;
typedef WCHAR *LPWSTR;
typedef const WCHAR *LPCWSTR;
typedef union _LARGE_INTEGER {
    struct {
        DWORD LowPart;
        LONG HighPart;
    } u;
    int64_t QuadPart;
} LARGE_INTEGER;
#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif
#ifndef S_OK
#define S_OK ((HRESULT)0)
#endif
#endif /* NTDSBCLI_NO_WINDOWS_TYPES */

#include "ntdsbmsg.h"

/* ---- Win32 and RPC codes the functions return (values of Windows' winerror.h) -------------- */
#ifndef ERROR_ACCESS_DENIED
#define ERROR_ACCESS_DENIED 5L
#endif
#ifndef ERROR_INVALID_HANDLE
#define ERROR_INVALID_HANDLE 6L
#endif
#ifndef ERROR_NOT_ENOUGH_MEMORY
#define ERROR_NOT_ENOUGH_MEMORY 8L
#endif
#ifndef ERROR_OUTOFMEMORY
#define ERROR_OUTOFMEMORY 14L
#endif
#ifndef ERROR_HANDLE_EOF
#define ERROR_HANDLE_EOF 38L
#endif
#ifndef ERROR_INVALID_PARAMETER
#define ERROR_INVALID_PARAMETER 87L
#endif
#ifndef RPC_S_INVALID_BINDING
#define RPC_S_INVALID_BINDING 1702L
#endif
#ifndef RPC_S_UNKNOWN_IF
#define RPC_S_UNKNOWN_IF 1717L
#endif
#ifndef RPC_S_SERVER_TOO_BUSY
#define RPC_S_SERVER_TOO_BUSY 1723L
#endif
#ifndef RPC_S_CALL_FAILED
#define RPC_S_CALL_FAILED 1726L
#endif
#ifndef RPC_S_PROTOCOL_ERROR
#define RPC_S_PROTOCOL_ERROR 1728L
#endif
#ifndef RPC_S_INVALID_TAG
#define RPC_S_INVALID_TAG 1733L
#endif
#ifndef RPC_S_INVALID_BOUND
#define RPC_S_INVALID_BOUND 1734L
#endif
#ifndef RPC_S_PROCNUM_OUT_OF_RANGE
#define RPC_S_PROCNUM_OUT_OF_RANGE 1745L
#endif
#ifndef RPC_S_ZERO_DIVIDE
#define RPC_S_ZERO_DIVIDE 1767L
#endif
#ifndef RPC_S_ADDRESS_ERROR
#define RPC_S_ADDRESS_ERROR 1768L
#endif
#ifndef RPC_S_FP_DIV_ZERO
#define RPC_S_FP_DIV_ZERO 1769L
#endif
#ifndef RPC_S_FP_UNDERFLOW
#define RPC_S_FP_UNDERFLOW 1770L
#endif
#ifndef RPC_S_FP_OVERFLOW
#define RPC_S_FP_OVERFLOW 1771L
#endif
#ifndef RPC_X_BAD_STUB_DATA
#define RPC_X_BAD_STUB_DATA 1783L
#endif
#ifndef RPC_S_CALL_CANCELLED
#define RPC_S_CALL_CANCELLED 1818L
#endif
#ifndef RPC_S_UNSUPPORTED_AUTHN_LEVEL
#define RPC_S_UNSUPPORTED_AUTHN_LEVEL 1821L
#endif
#ifndef E_UNEXPECTED
#define E_UNEXPECTED ((HRESULT)0x8000FFFFL)
#endif
#ifndef E_FAIL
#define E_FAIL ((HRESULT)0x80004005L)
#endif
#ifndef SEC_E_MESSAGE_ALTERED
#define SEC_E_MESSAGE_ALTERED ((HRESULT)0x8009030FL)
#endif

/* ---- ntdsbcli.h ------------------------------------------------------------------------------ */
#define NTDSBCLI_API
#define BACKUP_TYPE_FULL 0x01
#define BACKUP_TYPE_LOGS_ONLY 0x02
#define BACKUP_TYPE_INCREMENTAL 0x04
#define RESTORE_TYPE_AUTHORATATIVE 0x01
#define RESTORE_TYPE_ONLINE 0x02
#define RESTORE_TYPE_CATCHUP 0x04
#define BACKUP_DISABLE_INCREMENTAL 0xffffffff

#define g_aszBackupAnnotation "NTDS Backup Interface"
#define g_aszRestoreAnnotation "NTDS Restore Interface"
#define g_wszBackupAnnotation u"NTDS Backup Interface"
#define g_wszRestoreAnnotation u"NTDS Restore Interface"

/* The character before each path of a name list: what the file is. */
#define BFT_DIRECTORY 0x80
#define BFT_DATABASE_DIRECTORY 0x40
#define BFT_LOG_DIRECTORY 0x20
#define BFT_LOG ('\x01' | BFT_LOG_DIRECTORY)
#define BFT_LOG_DIR ('\x02' | BFT_DIRECTORY)
#define BFT_CHECKPOINT_DIR ('\x03' | BFT_DIRECTORY)
#define BFT_NTDS_DATABASE ('\x04' | BFT_DATABASE_DIRECTORY)
#define BFT_PATCH_FILE ('\x05' | BFT_LOG_DIRECTORY)
#define BFT_UNKNOWN ('\x0f')

#ifdef UNICODE
typedef WCHAR BFT;
#else
typedef CHAR BFT;
#endif

/* A backup or restore context. */
typedef void *HBC;

typedef struct tagEDB_RSTMAPA {
    LPSTR szDatabaseName;
    LPSTR szNewDatabaseName;
} EDB_RSTMAPA, *PEDB_RSTMAPA;

typedef struct tagEDB_RSTMAPW {
    LPWSTR szDatabaseName;
    LPWSTR szNewDatabaseName;
} EDB_RSTMAPW, *PEDB_RSTMAPW;

HRESULT DsIsNTDSOnlineA(LPCSTR szServerName, BOOL *pfNTDSOnline);
HRESULT DsIsNTDSOnlineW(LPCWSTR szServerName, BOOL *pfNTDSOnline);

HRESULT DsBackupPrepareA(LPCSTR szBackupServer, ULONG grbit, ULONG btFlag,
                         PVOID *ppvExpiryToken, LPDWORD pcbExpiryTokenSize, HBC *phbc);
HRESULT DsBackupPrepareW(LPCWSTR szBackupServer, ULONG grbit, ULONG btFlag,
                         PVOID *ppvExpiryToken, LPDWORD pcbExpiryTokenSize, HBC *phbc);

HRESULT DsBackupGetDatabaseNamesA(HBC hbc, LPSTR *pszAttachmentInfo, LPDWORD pcbSize);
HRESULT DsBackupGetDatabaseNamesW(HBC hbc, LPWSTR *pszAttachmentInfo, LPDWORD pcbSize);

HRESULT DsBackupOpenFileA(HBC hbc, LPCSTR szAttachmentName, DWORD cbReadHintSize,
                          LARGE_INTEGER *pliFileSize);
HRESULT DsBackupOpenFileW(HBC hbc, LPCWSTR szAttachmentName, DWORD cbReadHintSize,
                          LARGE_INTEGER *pliFileSize);

HRESULT DsBackupRead(HBC hbc, PVOID pvBuffer, DWORD cbBuffer, PDWORD pcbRead);
HRESULT DsBackupClose(HBC hbc);

HRESULT DsBackupGetBackupLogsA(HBC hbc, LPSTR *pszBackupLogFiles, LPDWORD pcbSize);
HRESULT DsBackupGetBackupLogsW(HBC hbc, LPWSTR *pszBackupLogFiles, LPDWORD pcbSize);

HRESULT DsBackupTruncateLogs(HBC hbc);
HRESULT DsBackupEnd(HBC hbc);
VOID DsBackupFree(PVOID pvBuffer);

HRESULT DsRestoreGetDatabaseLocationsA(HBC hbc, LPSTR *pszDatabaseLocationList,
                                       LPDWORD pcbSize);
HRESULT DsRestoreGetDatabaseLocationsW(HBC hbc, LPWSTR *pszDatabaseLocationList,
                                       LPDWORD pcbSize);

HRESULT DsRestorePrepareA(LPCSTR szServerName, ULONG rtFlag, PVOID pvExpiryToken,
                          DWORD cbExpiryTokenSize, HBC *phbc);
HRESULT DsRestorePrepareW(LPCWSTR szServerName, ULONG rtFlag, PVOID pvExpiryToken,
                          DWORD cbExpiryTokenSize, HBC *phbc);

HRESULT DsRestoreRegisterA(HBC hbc, LPCSTR szCheckPointFilePath, LPCSTR szLogPath,
                           EDB_RSTMAPA rgrstmap[], LONG crstmap, LPCSTR szBackupLogPath,
                           ULONG genLow, ULONG genHigh);
HRESULT DsRestoreRegisterW(HBC hbc, LPCWSTR szCheckPointFilePath, LPCWSTR szLogPath,
                           EDB_RSTMAPW rgrstmap[], LONG crstmap, LPCWSTR szBackupLogPath,
                           ULONG genLow, ULONG genHigh);

HRESULT DsRestoreRegisterComplete(HBC hbc, HRESULT hrRestoreState);
HRESULT DsRestoreEnd(HBC hbc);

HRESULT DsSetCurrentBackupLogA(LPCSTR szServerName, DWORD dwCurrentLog);
HRESULT DsSetCurrentBackupLogW(LPCWSTR szServerName, DWORD dwCurrentLog);

HRESULT DsSetAuthIdentityA(LPCSTR szUserName, LPCSTR szDomainName, LPCSTR szPassword);
HRESULT DsSetAuthIdentityW(LPCWSTR szUserName, LPCWSTR szDomainName, LPCWSTR szPassword);

#ifdef UNICODE
#define EDB_RSTMAP EDB_RSTMAPW
#define PEDB_RSTMAP PEDB_RSTMAPW
#define DsIsNTDSOnline DsIsNTDSOnlineW
#define DsBackupPrepare DsBackupPrepareW
#define DsBackupGetDatabaseNames DsBackupGetDatabaseNamesW
#define DsBackupOpenFile DsBackupOpenFileW
#define DsBackupGetBackupLogs DsBackupGetBackupLogsW
#define DsRestoreGetDatabaseLocations DsRestoreGetDatabaseLocationsW
#define DsRestorePrepare DsRestorePrepareW
#define DsRestoreRegister DsRestoreRegisterW
#define DsSetCurrentBackupLog DsSetCurrentBackupLogW
#define DsSetAuthIdentity DsSetAuthIdentityW
#else
#define EDB_RSTMAP EDB_RSTMAPA
#define PEDB_RSTMAP PEDB_RSTMAPA
#define DsIsNTDSOnline DsIsNTDSOnlineA
#define DsBackupPrepare DsBackupPrepareA
#define DsBackupGetDatabaseNames DsBackupGetDatabaseNamesA
#define DsBackupOpenFile DsBackupOpenFileA
#define DsBackupGetBackupLogs DsBackupGetBackupLogsA
#define DsRestoreGetDatabaseLocations DsRestoreGetDatabaseLocationsA
#define DsRestorePrepare DsRestorePrepareA
#define DsRestoreRegister DsRestoreRegisterA
#define DsSetCurrentBackupLog DsSetCurrentBackupLogA
#define DsSetAuthIdentity DsSetAuthIdentityA
#endif

#ifdef __cplusplus
}
#endif

#endif /* NTDSBCLI_H */
