/*
 * The checks of the C tests: each failed one prints where and what, and counts in `failures`
 * (the program exits 1 when any failed).
 */
#ifndef NTDSBCLI_TESTS_CHECK_H
#define NTDSBCLI_TESTS_CHECK_H

#include <stdio.h>

#include <ntdsbcli.h>

static int failures;

#define CHECK_HR(expr, expected)                                                             \
    do {                                                                                     \
        HRESULT got_ = (expr);                                                               \
        if (got_ != (HRESULT)(expected)) {                                                   \
            fprintf(stderr, "%s:%d: %s = 0x%08x, expected %s (0x%08x)\n", __FILE__, __LINE__, \
                    #expr, (unsigned)got_, #expected, (unsigned)(expected));                 \
            failures++;                                                                      \
        }                                                                                    \
    } while (0)

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "%s:%d: %s is false\n", __FILE__, __LINE__, #cond);             \
            failures++;                                                                      \
        }                                                                                    \
    } while (0)

#endif
