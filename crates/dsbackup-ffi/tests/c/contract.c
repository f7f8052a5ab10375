/*
 * The handle contract and the documented error paths of libntdsbcli, checked from C.
 *
 *   contract SERVER   (with NTBACKUP_USER/NTBACKUP_DOMAIN/NTBACKUP_PASSWORD of a backup
 *                      operator, NTBACKUP_NOBODY of a user without the privilege, and the
 *                      endpoint in NTDSBCLI_EPM_PORT; run by tests/c.rs against a mock DC)
 *
 * Prints one line per failed check and exits 1 if any failed.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ntdsbcli.h>

#include "check.h"

#define KIB (1024)

/* Every function that takes an HBC, with a handle that is not a live backup handle. */
static void every_call_refuses(HBC hbc)
{
    LPSTR names = NULL;
    LPWSTR wnames = NULL;
    DWORD size = 0;
    LARGE_INTEGER file_size;
    char buffer[64 * KIB];
    DWORD got = 0;
    EDB_RSTMAPA map = {"a", "b"};
    EDB_RSTMAPW wmap = {u"a", u"b"};
    CHECK_HR(DsBackupGetDatabaseNamesA(hbc, &names, &size), ERROR_INVALID_PARAMETER);
    CHECK_HR(DsBackupGetDatabaseNamesW(hbc, &wnames, &size), ERROR_INVALID_PARAMETER);
    CHECK_HR(DsBackupGetBackupLogsA(hbc, &names, &size), ERROR_INVALID_PARAMETER);
    CHECK_HR(DsBackupGetBackupLogsW(hbc, &wnames, &size), ERROR_INVALID_PARAMETER);
    CHECK_HR(DsBackupOpenFileA(hbc, "\\\\DC1\\x", 64 * KIB, &file_size), ERROR_INVALID_PARAMETER);
    CHECK_HR(DsBackupOpenFileW(hbc, u"\\\\DC1\\x", 64 * KIB, &file_size), ERROR_INVALID_PARAMETER);
    CHECK_HR(DsBackupRead(hbc, buffer, sizeof buffer, &got), ERROR_INVALID_PARAMETER);
    CHECK_HR(DsBackupClose(hbc), ERROR_INVALID_PARAMETER);
    CHECK_HR(DsBackupTruncateLogs(hbc), ERROR_INVALID_PARAMETER);
    CHECK_HR(DsRestoreGetDatabaseLocationsA(hbc, &names, &size), ERROR_INVALID_PARAMETER);
    CHECK_HR(DsRestoreGetDatabaseLocationsW(hbc, &wnames, &size), ERROR_INVALID_PARAMETER);
    CHECK_HR(DsRestoreRegisterA(hbc, "c", "l", &map, 1, "b", 1, 2), ERROR_INVALID_PARAMETER);
    CHECK_HR(DsRestoreRegisterW(hbc, u"c", u"l", &wmap, 1, u"b", 1, 2), ERROR_INVALID_PARAMETER);
    CHECK_HR(DsRestoreRegisterComplete(hbc, S_OK), ERROR_INVALID_PARAMETER);
    CHECK_HR(DsRestoreEnd(hbc), ERROR_INVALID_PARAMETER);
    CHECK_HR(DsBackupEnd(hbc), ERROR_INVALID_PARAMETER);
    CHECK(names == NULL && wnames == NULL);
}

static HBC prepare(const char *server)
{
    PVOID token = NULL;
    DWORD token_size = 0;
    HBC hbc = NULL;
    CHECK_HR(DsBackupPrepareA(server, 0, BACKUP_TYPE_FULL, &token, &token_size, &hbc), S_OK);
    CHECK(token != NULL && token_size > 0);
    DsBackupFree(token);
    return hbc;
}

/* Handles that are not handles: NULL, small numbers, pointers to anything. */
static void invalid_handles(void)
{
    int local = 0;
    char *heap = malloc(16);
    every_call_refuses(NULL);
    every_call_refuses((HBC)1);
    every_call_refuses((HBC)(uintptr_t)0xdeadbeef);
    every_call_refuses((HBC)&local);
    every_call_refuses((HBC)heap);
    /* DsBackupFree leaves alone what the library did not hand out. */
    DsBackupFree(NULL);
    DsBackupFree(&local);
    DsBackupFree(heap);
    free(heap);
}

/* DsBackupPrepare's arguments, and the server name with and without its leading \\. */
static void prepare_arguments(const char *server)
{
    PVOID token = NULL;
    DWORD token_size = 0;
    HBC hbc = NULL;
    CHECK_HR(DsBackupPrepareA(server, 0, BACKUP_TYPE_FULL, &token, &token_size, NULL),
             ERROR_INVALID_PARAMETER);
    CHECK_HR(DsBackupPrepareA(server, 0, BACKUP_TYPE_FULL, NULL, &token_size, &hbc),
             hrInvalidParam);
    CHECK_HR(DsBackupPrepareA(server, 0, BACKUP_TYPE_FULL, &token, NULL, &hbc), hrInvalidParam);
    CHECK_HR(DsBackupPrepareA(NULL, 0, BACKUP_TYPE_FULL, &token, &token_size, &hbc),
             ERROR_INVALID_PARAMETER);
    CHECK_HR(DsBackupPrepareA(server, 0, BACKUP_TYPE_INCREMENTAL, &token, &token_size, &hbc),
             ERROR_INVALID_PARAMETER);
    CHECK_HR(DsBackupPrepareA(server, 0, 0x40, &token, &token_size, &hbc), ERROR_INVALID_PARAMETER);
    CHECK(hbc == NULL && token == NULL);

    char unc[256];
    snprintf(unc, sizeof unc, "\\\\%s", server);
    hbc = prepare(unc);
    CHECK_HR(DsBackupEnd(hbc), S_OK);

    char16_t wide[256];
    size_t i = 0;
    for (; server[i] != '\0' && i + 1 < 256; i++) {
        wide[i] = (char16_t)(unsigned char)server[i];
    }
    wide[i] = 0;
    CHECK_HR(DsBackupPrepareW(wide, 0, BACKUP_TYPE_FULL, &token, &token_size, &hbc), S_OK);
    DsBackupFree(token);
    CHECK_HR(DsBackupEnd(hbc), S_OK);
}

/* The W list: sizes in bytes, a BFT character before each path, two NULs at the end. */
static void wide_lists(HBC hbc)
{
    LPWSTR names = NULL;
    DWORD size = 0;
    CHECK_HR(DsBackupGetDatabaseNamesW(hbc, &names, &size), S_OK);
    CHECK(names != NULL && size % 2 == 0 && size >= 4);
    if (names == NULL || size < 4) {
        return;
    }
    size_t units = size / 2;
    CHECK(names[units - 1] == 0 && names[units - 2] == 0);
    CHECK(names[0] == BFT_NTDS_DATABASE);
    CHECK(names[1] == u'\\' && names[2] == u'\\');
    DsBackupFree(names);

    LPSTR logs = NULL;
    CHECK_HR(DsBackupGetBackupLogsA(hbc, &logs, &size), S_OK);
    CHECK(logs != NULL && size >= 2 && logs[size - 1] == 0 && logs[size - 2] == 0);
    int saw_log = 0;
    for (const char *entry = logs; entry != NULL && *entry != '\0'; entry += strlen(entry) + 1) {
        CHECK(entry[0] == BFT_LOG || entry[0] == BFT_PATCH_FILE);
        saw_log |= entry[0] == BFT_LOG;
    }
    CHECK(saw_log);
    DsBackupFree(logs);
}

/* Opening and reading: the 8 KiB / 24 KiB rule, end of file, one open file at a time. */
static void reads(HBC hbc)
{
    LPSTR names = NULL;
    DWORD size = 0;
    CHECK_HR(DsBackupGetDatabaseNamesA(hbc, &names, &size), S_OK);
    if (names == NULL) {
        return;
    }
    const char *dit = names + 1; /* after the BFT character */
    static char buffer[64 * KIB];
    DWORD got = 12345;
    LARGE_INTEGER file_size;

    CHECK_HR(DsBackupRead(hbc, buffer, sizeof buffer, &got), ERROR_INVALID_PARAMETER);
    CHECK_HR(DsBackupClose(hbc), hrInvalidHandle);
    CHECK_HR(DsBackupOpenFileA(hbc, dit, 16 * KIB, &file_size), ERROR_INVALID_PARAMETER);
    CHECK_HR(DsBackupOpenFileA(hbc, dit, 24 * KIB + 1, &file_size), ERROR_INVALID_PARAMETER);
    CHECK_HR(DsBackupOpenFileA(hbc, dit, 36 * KIB, &file_size), ERROR_INVALID_PARAMETER);
    CHECK_HR(DsBackupOpenFileA(hbc, dit, 64 * KIB, NULL), ERROR_INVALID_PARAMETER);
    CHECK_HR(DsBackupOpenFileA(hbc, NULL, 64 * KIB, &file_size), ERROR_INVALID_PARAMETER);
    CHECK(DsBackupOpenFileA(hbc, "\\\\DC1\\no\\such.file", 64 * KIB, &file_size) != S_OK);

    /* With its BFT character, as the list gives it, the name opens too. */
    CHECK_HR(DsBackupOpenFileA(hbc, names, 24 * KIB, &file_size), S_OK);
    CHECK(file_size.QuadPart > 0);
    CHECK_HR(DsBackupOpenFileA(hbc, dit, 24 * KIB, &file_size), hrAlreadyOpen);
    CHECK_HR(DsBackupRead(hbc, buffer, 16 * KIB, &got), ERROR_INVALID_PARAMETER);
    CHECK_HR(DsBackupRead(hbc, buffer, 36 * KIB, &got), ERROR_INVALID_PARAMETER);
    CHECK_HR(DsBackupRead(hbc, NULL, 24 * KIB, &got), ERROR_INVALID_PARAMETER);
    CHECK_HR(DsBackupRead(hbc, buffer, 24 * KIB, NULL), ERROR_INVALID_PARAMETER);
    /* Other calls while the file is open are refused; the file stays open. */
    LPSTR more = NULL;
    CHECK_HR(DsBackupGetBackupLogsA(hbc, &more, &size), ERROR_INVALID_PARAMETER);

    long long total = 0;
    HRESULT hr;
    while ((hr = DsBackupRead(hbc, buffer, 24 * KIB, &got)) == S_OK) {
        CHECK(got > 0 && got <= 24 * KIB);
        total += got;
    }
    CHECK_HR(hr, ERROR_HANDLE_EOF);
    CHECK(got == 0);
    CHECK(total == file_size.QuadPart);
    CHECK_HR(DsBackupRead(hbc, buffer, 24 * KIB, &got), ERROR_HANDLE_EOF);
    CHECK_HR(DsBackupClose(hbc), S_OK);
    CHECK_HR(DsBackupClose(hbc), hrInvalidHandle);
    CHECK_HR(DsBackupRead(hbc, buffer, 24 * KIB, &got), ERROR_INVALID_PARAMETER);

    /* A file left open is closed by DsBackupEnd (checked by the caller). */
    CHECK_HR(DsBackupOpenFileA(hbc, dit, 64 * KIB, &file_size), S_OK);
    CHECK_HR(DsBackupRead(hbc, buffer, 64 * KIB, &got), S_OK);
    DsBackupFree(names);
}

struct race {
    HBC hbc;
    HRESULT hr;
};

static void *end_it(void *arg)
{
    struct race *race = arg;
    race->hr = DsBackupEnd(race->hbc);
    return NULL;
}

/* Several threads end one handle at once: one succeeds, the others are refused. */
static void concurrent_ends(const char *server)
{
    enum { THREADS = 4 };
    HBC hbc = prepare(server);
    struct race races[THREADS];
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) {
        races[i].hbc = hbc;
        CHECK(pthread_create(&threads[i], NULL, end_it, &races[i]) == 0);
    }
    int ok = 0, refused = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        ok += races[i].hr == S_OK;
        refused += races[i].hr == ERROR_INVALID_PARAMETER;
    }
    CHECK(ok == 1 && refused == THREADS - 1);
    every_call_refuses(hbc);
}

static void *prepare_in_thread(void *arg)
{
    HBC hbc = prepare(arg);
    CHECK_HR(DsBackupEnd(hbc), S_OK);
    return NULL;
}

/* Credentials: a user without the privilege, a wrong password, the identity process-wide. */
static void identities(const char *server)
{
    const char *user = getenv("NTBACKUP_USER");
    const char *domain = getenv("NTBACKUP_DOMAIN");
    const char *password = getenv("NTBACKUP_PASSWORD");
    PVOID token = NULL;
    DWORD token_size = 0;
    HBC hbc = NULL;

    CHECK_HR(DsSetAuthIdentityA(getenv("NTBACKUP_NOBODY"), domain, password), S_OK);
    CHECK_HR(DsBackupPrepareA(server, 0, BACKUP_TYPE_FULL, &token, &token_size, &hbc),
             ERROR_ACCESS_DENIED);
    CHECK_HR(DsSetAuthIdentityW(u"svc-backup", u"CORP", u"not the password"), S_OK);
    CHECK_HR(DsBackupPrepareA(server, 0, BACKUP_TYPE_FULL, &token, &token_size, &hbc),
             ERROR_ACCESS_DENIED);
    CHECK(hbc == NULL);

    /* Set on this thread, used by another. */
    CHECK_HR(DsSetAuthIdentityA(user, domain, password), S_OK);
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, prepare_in_thread, (void *)server) == 0);
    pthread_join(thread, NULL);
}

/* Nothing listens: hrCouldNotConnect. */
static void could_not_connect(const char *server)
{
    const char *saved = getenv("NTDSBCLI_EPM_PORT");
    char *copy = saved != NULL ? strdup(saved) : NULL;
    setenv("NTDSBCLI_EPM_PORT", "1", 1);
    BOOL online = FALSE;
    CHECK_HR(DsIsNTDSOnlineA(server, &online), hrCouldNotConnect);
    CHECK_HR(DsSetCurrentBackupLogA(server, 7), hrCouldNotConnect);
    if (copy != NULL) {
        setenv("NTDSBCLI_EPM_PORT", copy, 1);
        free(copy);
    }
    CHECK_HR(DsIsNTDSOnlineA(server, NULL), ERROR_INVALID_PARAMETER);
    CHECK_HR(DsIsNTDSOnlineW(u"\\\\", &online), ERROR_INVALID_PARAMETER);
    CHECK_HR(DsIsNTDSOnlineA(server, &online), S_OK);
    CHECK(online == TRUE);
}

/* A backup handle is not a restore handle: DsRestoreEnd refuses it and leaves it live. */
static void kinds(const char *server)
{
    HBC hbc = prepare(server);
    CHECK_HR(DsRestoreEnd(hbc), ERROR_INVALID_PARAMETER);
    CHECK_HR(DsRestoreRegisterComplete(hbc, S_OK), ERROR_INVALID_PARAMETER);
    LPSTR locations = NULL;
    DWORD size = 0;
    /* DsRestoreGetDatabaseLocations takes a backup handle too. */
    CHECK_HR(DsRestoreGetDatabaseLocationsA(hbc, &locations, &size), S_OK);
    CHECK(locations != NULL && size > 2);
    int saw_log_dir = 0;
    for (const char *e = locations; e != NULL && *e != '\0'; e += strlen(e) + 1) {
        saw_log_dir |= (unsigned char)e[0] == BFT_LOG_DIR;
    }
    CHECK(saw_log_dir);
    DsBackupFree(locations);
    /* Restore preparation on a DC that is not in restore mode is refused by the server. */
    HBC restore = NULL;
    CHECK(DsRestorePrepareA(server, RESTORE_TYPE_CATCHUP, NULL, 0, &restore) != S_OK);
    CHECK(restore == NULL);
    CHECK_HR(DsRestorePrepareA(server, 0, NULL, 5, &restore), ERROR_INVALID_PARAMETER);
    CHECK_HR(DsBackupEnd(hbc), S_OK);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: contract SERVER\n");
        return 2;
    }
    const char *server = argv[1];
    CHECK_HR(DsSetAuthIdentityA(getenv("NTBACKUP_USER"), getenv("NTBACKUP_DOMAIN"),
                                getenv("NTBACKUP_PASSWORD")),
             S_OK);

    invalid_handles();
    prepare_arguments(server);

    HBC hbc = prepare(server);
    wide_lists(hbc);
    reads(hbc);
    CHECK_HR(DsBackupEnd(hbc), S_OK);
    every_call_refuses(hbc);

    concurrent_ends(server);
    kinds(server);
    could_not_connect(server);
    identities(server);

    if (failures != 0) {
        fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    printf("every check passed\n");
    return 0;
}
