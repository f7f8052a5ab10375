/*
 * ntbackup: a full backup of a domain controller's directory through the ntdsbcli C API,
 * written as a Windows backup agent would write it.
 *
 *   cc -Wall -Wextra -Werror -o ntbackup ntbackup.c $(pkg-config --cflags --libs ntdsbcli)
 *   NTBACKUP_USER=svc-backup NTBACKUP_DOMAIN=CORP NTBACKUP_PASSWORD=... ./ntbackup dc1 /backups/dc1
 *
 * Writes every database, log and patch file under OUTDIR (by the last component of its path)
 * and the expiry token as OUTDIR/expiry-token.bin; prints one line per file:
 * "<BFT character in hex> <size> <name>". With -t it truncates the logs afterwards.
 * Exits 0 on success, 1 with the failing call and its HRESULT otherwise.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ntdsbcli.h>

#define READ_SIZE (64 * 1024) /* a multiple of 8 KiB, at least 24 KiB */

static int fail(const char *call, HRESULT hr)
{
    fprintf(stderr, "ntbackup: %s failed: 0x%08x\n", call, (unsigned)hr);
    return 1;
}

/* Writes `len` bytes of `data` to dir/name. */
static int write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *out = fopen(path, "wb");
    if (out == NULL) {
        perror(path);
        return 1;
    }
    int failed = len > 0 && fwrite(data, 1, len, out) != len;
    failed |= fclose(out) != 0;
    if (failed) {
        perror(path);
    }
    return failed;
}

/* Copies one file of the backup set (its UNC path) to dir. */
static int copy_file(HBC hbc, const char *unc, char bft, const char *dir, char *buffer)
{
    LARGE_INTEGER size;
    HRESULT hr = DsBackupOpenFileA(hbc, unc, READ_SIZE, &size);
    if (hr != S_OK) {
        return fail("DsBackupOpenFile", hr);
    }
    const char *name = strrchr(unc, '\\');
    name = name != NULL ? name + 1 : unc;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *out = fopen(path, "wb");
    if (out == NULL) {
        perror(path);
        DsBackupClose(hbc);
        return 1;
    }
    long long total = 0;
    int status = 0;
    for (;;) {
        DWORD got = 0;
        hr = DsBackupRead(hbc, buffer, READ_SIZE, &got);
        if (hr == ERROR_HANDLE_EOF) {
            break;
        }
        if (hr != S_OK) {
            status = fail("DsBackupRead", hr);
            break;
        }
        if (fwrite(buffer, 1, got, out) != got) {
            perror(path);
            status = 1;
            break;
        }
        total += got;
    }
    if (fclose(out) != 0) {
        perror(path);
        status = 1;
    }
    hr = DsBackupClose(hbc);
    if (status == 0 && hr != S_OK) {
        status = fail("DsBackupClose", hr);
    }
    if (status == 0 && total != size.QuadPart) {
        fprintf(stderr, "ntbackup: %s: %lld bytes of %lld\n", unc, total, (long long)size.QuadPart);
        status = 1;
    }
    if (status == 0) {
        printf("%02x %lld %s\n", (unsigned char)bft, total, name);
    }
    return status;
}

/* Copies every file of a double-NUL list: a BFT character, then the path, for each. */
static int copy_list(HBC hbc, const char *list, DWORD size, const char *dir, char *buffer)
{
    const char *end = list + size;
    for (const char *entry = list; entry < end && *entry != '\0'; entry += strlen(entry) + 1) {
        if (copy_file(hbc, entry + 1, entry[0], dir, buffer) != 0) {
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    int truncate = argc > 1 && strcmp(argv[1], "-t") == 0;
    if (argc != 3 + truncate) {
        fprintf(stderr, "usage: ntbackup [-t] SERVER OUTDIR\n");
        return 2;
    }
    const char *server = argv[1 + truncate];
    const char *dir = argv[2 + truncate];

    const char *user = getenv("NTBACKUP_USER");
    if (user != NULL) {
        HRESULT hr = DsSetAuthIdentityA(user, getenv("NTBACKUP_DOMAIN"), getenv("NTBACKUP_PASSWORD"));
        if (hr != S_OK) {
            return fail("DsSetAuthIdentity", hr);
        }
    }

    BOOL online = FALSE;
    HRESULT hr = DsIsNTDSOnlineA(server, &online);
    if (hr != S_OK) {
        return fail("DsIsNTDSOnline", hr);
    }
    if (!online) {
        fprintf(stderr, "ntbackup: the directory service of %s is not online\n", server);
        return 1;
    }

    PVOID token = NULL;
    DWORD token_size = 0;
    HBC hbc = NULL;
    hr = DsBackupPrepareA(server, 0, BACKUP_TYPE_FULL, &token, &token_size, &hbc);
    if (hr != S_OK) {
        return fail("DsBackupPrepare", hr);
    }

    int status = write_file(dir, "expiry-token.bin", token, token_size);
    DsBackupFree(token);

    char *buffer = malloc(READ_SIZE);
    if (buffer == NULL) {
        status = 1;
    }
    LPSTR names = NULL;
    DWORD names_size = 0;
    if (status == 0) {
        hr = DsBackupGetDatabaseNamesA(hbc, &names, &names_size);
        status = hr == S_OK ? copy_list(hbc, names, names_size, dir, buffer)
                            : fail("DsBackupGetDatabaseNames", hr);
        DsBackupFree(names);
    }
    LPSTR logs = NULL;
    DWORD logs_size = 0;
    if (status == 0) {
        hr = DsBackupGetBackupLogsA(hbc, &logs, &logs_size);
        status = hr == S_OK ? copy_list(hbc, logs, logs_size, dir, buffer)
                            : fail("DsBackupGetBackupLogs", hr);
        DsBackupFree(logs);
    }
    if (status == 0 && truncate) {
        hr = DsBackupTruncateLogs(hbc);
        status = hr == S_OK ? 0 : fail("DsBackupTruncateLogs", hr);
    }
    free(buffer);

    /* Always, after a failure too: closes every binding of the backup. */
    hr = DsBackupEnd(hbc);
    if (status == 0 && hr != S_OK) {
        status = fail("DsBackupEnd", hr);
    }
    return status;
}
