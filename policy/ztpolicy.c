/*
 * ztpolicy: check, test, explain and format ztgate policies.
 *
 *     ztpolicy check [-q] PATH
 *     ztpolicy test PATH CASES...
 *     ztpolicy explain PATH CASEFILE [--case NAME]
 *     ztpolicy fmt PATH
 *
 * Exit status: 0 success, 1 errors (or failed cases), 2 usage.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_int.h"
#include "cases.h"

#define ZTP_MAX_TRACE   4096

static void ztp_usage(void);
static void ztp_print_diags(const pol_diags_t *d, int errors_only);
static int ztp_check(int argc, char **argv);
static int ztp_test(int argc, char **argv);
static int ztp_explain(int argc, char **argv);
static int ztp_fmt(int argc, char **argv);
static void ztp_print_decision(const pol_case_t *c, const pol_decision_t *d);


int
main(int argc, char **argv)
{
    if (argc < 2) {
        ztp_usage();
        return 2;
    }

    if (strcmp(argv[1], "check") == 0) {
        return ztp_check(argc - 2, argv + 2);
    }
    if (strcmp(argv[1], "test") == 0) {
        return ztp_test(argc - 2, argv + 2);
    }
    if (strcmp(argv[1], "explain") == 0) {
        return ztp_explain(argc - 2, argv + 2);
    }
    if (strcmp(argv[1], "fmt") == 0) {
        return ztp_fmt(argc - 2, argv + 2);
    }

    ztp_usage();
    return 2;
}


static void
ztp_usage(void)
{
    fprintf(stderr,
            "usage: ztpolicy check [-q] PATH\n"
            "       ztpolicy test PATH CASES...\n"
            "       ztpolicy explain PATH CASEFILE [--case NAME]\n"
            "       ztpolicy fmt PATH\n");
}


static void
ztp_print_diags(const pol_diags_t *d, int errors_only)
{
    char      line[700];
    unsigned  i, total;

    for (i = 0; i < d->ndiags; i++) {
        if (errors_only && d->diags[i].warning) {
            continue;
        }
        pol_diag_format(&d->diags[i], line, sizeof(line));
        fprintf(stderr, "%s\n", line);
    }

    total = d->nerrors + d->nwarnings;
    if (total > d->ndiags) {
        fprintf(stderr, "ztpolicy: %u more diagnostics not shown\n",
                total - d->ndiags);
    }
}


static int
ztp_check(int argc, char **argv)
{
    pol_diags_t   diags;
    pol_counts_t  counts;
    pol_t        *pol;
    int           quiet, rc;

    quiet = 0;
    if (argc >= 1 && strcmp(argv[0], "-q") == 0) {
        quiet = 1;
        argc--;
        argv++;
    }
    if (argc != 1) {
        ztp_usage();
        return 2;
    }

    rc = pol_load_counts(argv[0], &pol, &diags, &counts);
    ztp_print_diags(&diags, quiet);

    if (!quiet) {
        printf("%s: %u apps, %u rules, %u errors, %u warnings\n", argv[0],
               counts.napps, counts.nrules, diags.nerrors, diags.nwarnings);
    }

    pol_free(pol);
    return (rc == 0) ? 0 : 1;
}


static int
ztp_test(int argc, char **argv)
{
    pol_diags_t        diags;
    pol_decision_t     d;
    pol_cases_t       *cs;
    pol_t             *pol;
    const pol_case_t  *c;
    char               why[600];
    unsigned           passed, failed;
    size_t             i;
    int                a, rc;

    if (argc < 2) {
        ztp_usage();
        return 2;
    }

    if (pol_load(argv[0], &pol, &diags) != 0) {
        ztp_print_diags(&diags, 0);
        fprintf(stderr, "%s: the policy has errors; no case was run\n",
                argv[0]);
        return 1;
    }
    ztp_print_diags(&diags, 0);

    passed = 0;
    failed = 0;
    rc = 0;

    for (a = 1; a < argc; a++) {
        if (pol_cases_load(argv[a], &cs, &diags) != 0) {
            ztp_print_diags(&diags, 0);
            fprintf(stderr, "%s: cannot load the cases\n", argv[a]);
            rc = 1;
            continue;
        }

        for (i = 0; i < pol_cases_count(cs); i++) {
            c = pol_cases_get(cs, i);
            pol_eval(pol, &c->input, &d);
            if (pol_case_check(c, &d, why, sizeof(why))) {
                printf("ok   %.*s\n", (int) c->name.len, c->name.data);
                passed++;
            } else {
                printf("FAIL %.*s: %s\n", (int) c->name.len, c->name.data,
                       why);
                failed++;
            }
        }

        pol_cases_free(cs);
    }

    printf("%u passed, %u failed\n", passed, failed);

    pol_free(pol);
    return (rc == 0 && failed == 0) ? 0 : 1;
}


static void
ztp_print_decision(const pol_case_t *c, const pol_decision_t *d)
{
    char      tmp[32];
    unsigned  i;

    printf("decision: %s", pol_outcome_name(d->outcome));
    if (d->outcome == POL_DENY) {
        printf(" %u \"%.*s\"", d->status, (int) d->reason.len,
               d->reason.data);
    }

    if (d->rule.len != 0) {
        printf(" by rule \"%.*s\" (%.*s:%u) in app \"%.*s\"\n",
               (int) d->rule.len, d->rule.data, (int) d->file.len,
               d->file.data, d->line, (int) d->app.len, d->app.data);
    } else if (d->app.len != 0) {
        printf(" (default deny) in app \"%.*s\"\n", (int) d->app.len,
               d->app.data);
    } else {
        printf(" (default deny): no app matches host \"%.*s\"\n",
               (int) c->input.host.len, c->input.host.data);
    }

    for (i = 0; i < d->nheaders; i++) {
        printf("header: %.*s: %.*s\n", (int) d->headers[i].name.len,
               d->headers[i].name.data, (int) d->headers[i].value.len,
               d->headers[i].value.data);
    }
    if (d->ttl_ms >= 0) {
        pol_fmt_duration(tmp, sizeof(tmp), d->ttl_ms / 1000);
        printf("cache: %s\n", tmp);
    }
    for (i = 0; i < d->nreports; i++) {
        printf("report-only: rule \"%.*s\" would decide %s\n",
               (int) d->reports[i].rule.len, d->reports[i].rule.data,
               pol_outcome_name(d->reports[i].outcome));
    }
}


static int
ztp_explain(int argc, char **argv)
{
    pol_diags_t        diags;
    pol_decision_t     d;
    pol_cases_t       *cs;
    pol_t             *pol;
    pol_trace_t       *trace;
    const pol_case_t  *c;
    const char        *only;
    size_t             i, j, n;
    unsigned           k, shown;

    only = NULL;
    if (argc == 4 && strcmp(argv[2], "--case") == 0) {
        only = argv[3];
    } else if (argc != 2) {
        ztp_usage();
        return 2;
    }

    if (pol_load(argv[0], &pol, &diags) != 0) {
        ztp_print_diags(&diags, 0);
        return 1;
    }

    if (pol_cases_load(argv[1], &cs, &diags) != 0) {
        ztp_print_diags(&diags, 0);
        pol_free(pol);
        return 1;
    }

    trace = malloc(ZTP_MAX_TRACE * sizeof(pol_trace_t));
    if (trace == NULL) {
        fprintf(stderr, "ztpolicy: out of memory\n");
        pol_cases_free(cs);
        pol_free(pol);
        return 1;
    }

    shown = 0;
    for (i = 0; i < pol_cases_count(cs); i++) {
        c = pol_cases_get(cs, i);
        if (only != NULL && (strlen(only) != c->name.len
                             || memcmp(only, c->name.data, c->name.len) != 0))
        {
            continue;
        }

        if (shown++) {
            printf("\n");
        }
        printf("case \"%.*s\" (%s:%u)\n", (int) c->name.len, c->name.data,
               c->file, c->line);

        n = pol_explain(pol, &c->input, &d, trace, ZTP_MAX_TRACE);
        ztp_print_decision(c, &d);

        for (j = 0; j < n; j++) {
            if (trace[j].depth == 0) {
                printf("%s: %s\n", trace[j].text, trace[j].seen);
                continue;
            }
            for (k = 0; k < trace[j].depth; k++) {
                printf("  ");
            }
            printf("%s: %s", trace[j].text, trace[j].result ? "true"
                                                            : "false");
            if (trace[j].seen[0] != '\0') {
                printf(" (saw %s)", trace[j].seen);
            }
            printf("\n");
        }
        if (n == ZTP_MAX_TRACE) {
            printf("(trace truncated)\n");
        }
    }

    free(trace);
    pol_cases_free(cs);
    pol_free(pol);

    if (only != NULL && shown == 0) {
        fprintf(stderr, "%s: no case named \"%s\"\n", argv[1], only);
        return 1;
    }
    return 0;
}


static int
ztp_fmt(int argc, char **argv)
{
    pol_diags_t   diags;
    char         *out;
    size_t        len;

    if (argc != 1) {
        ztp_usage();
        return 2;
    }

    if (pol_fmt(argv[0], &out, &len, &diags) != 0) {
        ztp_print_diags(&diags, 0);
        return 1;
    }

    if (fwrite(out, 1, len, stdout) != len || fflush(stdout) != 0) {
        perror("ztpolicy: stdout");
        free(out);
        return 1;
    }

    free(out);
    return 0;
}
