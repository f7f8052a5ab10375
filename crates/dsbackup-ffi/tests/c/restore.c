/*
 * The restore calls of libntdsbcli on their success path, from C, as a restore agent makes
 * them on a domain controller in Directory Services Restore Mode:
 * DsRestorePrepare (with the backup's expiry token) -> DsRestoreGetDatabaseLocations ->
 * DsRestoreRegister -> DsRestoreRegisterComplete -> DsRestoreEnd.
 *
 *   restore SERVER TOKEN_FILE GEN_LOW GEN_HIGH   (with NTBACKUP_USER/NTBACKUP_DOMAIN/
 *                      NTBACKUP_PASSWORD of a user with the restore privilege and the endpoint
 *                      in NTDSBCLI_EPM_PORT; run by tests/c.rs against a mock DC)
 *
 * Registers the database under the BFT_NTDS_DATABASE location, the logs in the BFT_LOG_DIR
 * location and the checkpoint in the BFT_CHECKPOINT_DIR one, and prints what it registered:
 *   checkpoint <path>
 *   logs <path>
 *   database <old name> <new name>
 * Prints one line per failed check and exits 1 if any failed.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ntdsbcli.h>

#include "check.h"

/* The whole of `path`, in a buffer of the library's size conventions (malloc'd). */
static unsigned char *read_token(const char *path, DWORD *size)
{
    FILE *in = fopen(path, "rb");
    if (in == NULL) {
        perror(path);
        return NULL;
    }
    unsigned char *token = malloc(4096);
    size_t got = token != NULL ? fread(token, 1, 4096, in) : 0;
    fclose(in);
    *size = (DWORD)got;
    return token;
}

/* The entry of a double-NUL location list whose BFT character is `bft`, without it. */
static const char *location(const char *list, char bft)
{
    for (const char *e = list; *e != '\0'; e += strlen(e) + 1) {
        if (e[0] == bft) {
            return e + 1;
        }
    }
    return NULL;
}

/* Entries in a double-NUL list of 16-bit characters; its size in bytes checked. */
static int count_wide(const WCHAR *list, DWORD size)
{
    int entries = 0;
    const WCHAR *e = list;
    while (*e != 0) {
        entries++;
        while (*e != 0) {
            e++;
        }
        e++;
    }
    CHECK((DWORD)((e - list + 1) * sizeof(WCHAR)) == size);
    return entries;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: restore SERVER TOKEN_FILE GEN_LOW GEN_HIGH\n");
        return 2;
    }
    const char *server = argv[1];
    ULONG gen_low = strtoul(argv[3], NULL, 10);
    ULONG gen_high = strtoul(argv[4], NULL, 10);
    CHECK_HR(DsSetAuthIdentityA(getenv("NTBACKUP_USER"), getenv("NTBACKUP_DOMAIN"),
                                getenv("NTBACKUP_PASSWORD")),
             S_OK);
    DWORD token_size = 0;
    unsigned char *token = read_token(argv[2], &token_size);
    if (token == NULL) {
        return 1;
    }

    BOOL online = TRUE;
    CHECK_HR(DsIsNTDSOnlineA(server, &online), S_OK);
    CHECK(online == FALSE);

    HBC hbc = NULL;
    CHECK_HR(DsRestorePrepareA(server, 0, token, token_size, &hbc), S_OK);
    free(token);
    if (hbc == NULL) {
        fprintf(stderr, "no restore handle\n");
        return 1;
    }
    /* A restore handle is not a backup handle. */
    CHECK_HR(DsBackupEnd(hbc), ERROR_INVALID_PARAMETER);
    CHECK_HR(DsBackupTruncateLogs(hbc), ERROR_INVALID_PARAMETER);

    LPSTR locations = NULL;
    DWORD size = 0;
    CHECK_HR(DsRestoreGetDatabaseLocationsA(hbc, &locations, &size), S_OK);
    if (locations == NULL) {
        fprintf(stderr, "no locations\n");
        return 1;
    }
    int entries = 0;
    const char *e = locations;
    for (; *e != '\0'; e += strlen(e) + 1) {
        entries++;
    }
    CHECK((DWORD)(e - locations + 1) == size);
    const char *checkpoint = location(locations, BFT_CHECKPOINT_DIR);
    const char *logs = location(locations, BFT_LOG_DIR);
    const char *database = location(locations, BFT_NTDS_DATABASE);
    CHECK(checkpoint != NULL && logs != NULL && database != NULL);

    LPWSTR wide = NULL;
    DWORD wide_size = 0;
    CHECK_HR(DsRestoreGetDatabaseLocationsW(hbc, &wide, &wide_size), S_OK);
    CHECK(wide != NULL && count_wide(wide, wide_size) == entries);
    DsBackupFree(wide);

    if (checkpoint != NULL && logs != NULL && database != NULL) {
        char old_name[1024];
        char new_name[1024];
        snprintf(old_name, sizeof old_name, "%s\\ntds.dit", database);
        snprintf(new_name, sizeof new_name, "%s\\ntds.dit", database);
        EDB_RSTMAPA map = {old_name, new_name};
        CHECK_HR(DsRestoreRegisterA(hbc, checkpoint, logs, &map, 1, logs, gen_low, gen_high),
                 S_OK);
        printf("checkpoint %s\nlogs %s\ndatabase %s %s\n", checkpoint, logs, old_name, new_name);
    }
    DsBackupFree(locations);
    CHECK_HR(DsRestoreRegisterComplete(hbc, S_OK), S_OK);
    CHECK_HR(DsRestoreEnd(hbc), S_OK);
    /* Ended: the handle is retired. */
    CHECK_HR(DsRestoreEnd(hbc), ERROR_INVALID_PARAMETER);
    CHECK_HR(DsRestoreRegisterComplete(hbc, S_OK), ERROR_INVALID_PARAMETER);

    if (failures != 0) {
        fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    printf("every check passed\n");
    return 0;
}
