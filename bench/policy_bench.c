/*
 * Policy evaluation benchmark: generates a realistic 1,000-rule policy
 * (10 apps x 100 rules: prefixes, globs, methods, conditions on groups,
 * posture, MFA age, networks and time, some deny rules), compiles it, and
 * times pol_eval() over a few thousand varied requests in batches.
 *
 *     policy_bench [evaluations]
 *
 * Prints the compile time and the median and p99 cost per decision over
 * the batches; exits 1 if the median exceeds 2,000 ns.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy.h"

#define BENCH_APPS          10
#define BENCH_RULES         100
#define BENCH_INPUTS        4096
#define BENCH_BATCH         10000
#define BENCH_DEFAULT_N     2000000
#define BENCH_LIMIT_NS      2000.0

typedef struct {
    char     host[64];
    char     path[96];
    char     user[16];
    char     grp[2][16];
} bench_strs_t;

static char *bench_policy(size_t *len);
static void bench_inputs(pol_input_t *in, bench_strs_t *s, size_t n);
static uint32_t bench_rand(uint32_t *state);
static int64_t bench_ns(void);
static int bench_cmp(const void *a, const void *b);

static const char  *bench_methods[] = {
    "GET", "GET", "GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"
};


static uint32_t
bench_rand(uint32_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    return *state;
}


static int64_t
bench_ns(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}


static int
bench_cmp(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return (x > y) - (x < y);
}


/* The policy text, malloc'd. */
static char *
bench_policy(size_t *len)
{
    char    *buf;
    size_t   cap, n;
    int      a, r;

    cap = 1024 * 1024;
    buf = malloc(cap);
    if (buf == NULL) {
        return NULL;
    }

    n = (size_t) snprintf(buf, cap,
        "timezone \"+08:00\"\n"
        "network office = 10.20.0.0/16, 2001:db8:20::/48\n"
        "network vpn = 10.99.0.0/16\n"
        "group staff = \"staff\", \"contractors\"\n"
        "group admins = \"hr-admins\", \"it-security\", \"finance-admins\"\n"
        "condition managed = device.status == active\n"
        "    and device.posture.disk_encrypted and device.posture.firewall\n"
        "    and device.posture.age < 24h\n"
        "condition fresh_mfa = auth.mfa_age < 15m\n"
        "condition office_hours = time.weekday in (mon, tue, wed, thu, fri)\n"
        "    and time.hour >= 7 and time.hour < 20\n"
        "condition trusted_net = source in office or source in vpn\n\n");

    for (a = 0; a < BENCH_APPS; a++) {
        n += (size_t) snprintf(buf + n, cap - n,
                               "app \"app%d\" {\n"
                               "    host \"app%d.agency.example\", "
                               "\"*.app%d.agency.example\"\n", a, a, a);
        for (r = 0; r < BENCH_RULES; r++) {
            n += (size_t) snprintf(buf + n, cap - n,
                                   "    rule \"r%d\" { ", r);
            switch (r % 10) {
            case 0:
                n += (size_t) snprintf(buf + n, cap - n,
                    "path prefix \"/s%d/admin\" when not managed "
                    "deny 403 \"Managed devices only\"", r);
                break;
            case 1:
                n += (size_t) snprintf(buf + n, cap - n,
                    "path \"/s%d/docs/*.pdf\" method GET, HEAD "
                    "when user.groups in staff allow cache 30s", r);
                break;
            case 2:
                n += (size_t) snprintf(buf + n, cap - n,
                    "path prefix \"/s%d/admin\" when user.groups in admins "
                    "and managed and fresh_mfa allow "
                    "header \"X-Role\" = \"admin\" "
                    "header \"X-User\" = user.name", r - 2);
                break;
            case 3:
                n += (size_t) snprintf(buf + n, cap - n,
                    "path \"/s%d/api/**\" method GET, POST "
                    "when trusted_net and user.authenticated allow", r);
                break;
            case 4:
                n += (size_t) snprintf(buf + n, cap - n,
                    "path \"/s%d/reports/*\" when office_hours and "
                    "trust.score >= 50 allow", r);
                break;
            case 5:
                n += (size_t) snprintf(buf + n, cap - n,
                    "path prefix \"/s%d\" when user.authenticated and "
                    "not fresh_mfa step-up", r);
                break;
            case 6:
                n += (size_t) snprintf(buf + n, cap - n,
                    "path \"/s%d/upload\" method PUT, POST when "
                    "device.known and device.bound allow", r);
                break;
            case 7:
                n += (size_t) snprintf(buf + n, cap - n,
                    "path prefix \"/s%d\" path \"/s%d/?/index.html\" "
                    "when user.groups contains \"staff\" allow", r, r - 1);
                break;
            case 8:
                n += (size_t) snprintf(buf + n, cap - n,
                    "path \"/s%d/export/**\" when context.new_address "
                    "deny", r);
                break;
            default:
                n += (size_t) snprintf(buf + n, cap - n,
                    "path \"/s%d/public/**\" allow", r);
                break;
            }
            n += (size_t) snprintf(buf + n, cap - n, " }\n");
        }
        n += (size_t) snprintf(buf + n, cap - n, "}\n");
        if (n >= cap - 4096) {
            free(buf);
            return NULL;
        }
    }

    *len = n;
    return buf;
}


static void
bench_inputs(pol_input_t *in, bench_strs_t *s, size_t n)
{
    static const char  *tails[] = {
        "/admin/users", "/docs/a.pdf", "/api/v1/items/7", "/reports/q3",
        "/upload", "/x/index.html", "/export/all.csv", "/public/logo.png",
        "/other", ""
    };
    static const unsigned  fit[10] = { 0, 1, 0, 2, 3, 8, 4, 5, 6, 7 };
    uint32_t  rng;
    size_t    i;
    int       app, seg;

    rng = 2463534242u;

    for (i = 0; i < n; i++) {
        pol_input_init(&in[i]);
        app = (int) (bench_rand(&rng) % (BENCH_APPS + 1));
        if (bench_rand(&rng) % 4 == 0) {
            snprintf(s[i].host, sizeof(s[i].host),
                     "www.app%d.agency.example:443", app);
        } else {
            snprintf(s[i].host, sizeof(s[i].host), "APP%d.agency.example",
                     app);
        }
        /* mostly a tail that the segment's rule is about */
        seg = (int) (bench_rand(&rng) % 110);
        snprintf(s[i].path, sizeof(s[i].path), "/s%d%s", seg,
                 tails[bench_rand(&rng) % 10 < 7 ? fit[seg % 10]
                                                 : bench_rand(&rng) % 10]);

        in[i].method.data = bench_methods[bench_rand(&rng) % 8];
        in[i].method.len = strlen(in[i].method.data);
        in[i].host.data = s[i].host;
        in[i].host.len = strlen(s[i].host);
        in[i].path.data = s[i].path;
        in[i].path.len = strlen(s[i].path);
        in[i].now = 1795485600 + (int64_t) (bench_rand(&rng) % 604800);

        if (bench_rand(&rng) % 5 != 0) {
            snprintf(s[i].user, sizeof(s[i].user), "user%u",
                     bench_rand(&rng) % 1000);
            snprintf(s[i].grp[0], sizeof(s[i].grp[0]), "%s",
                     bench_rand(&rng) % 3 ? "staff" : "hr-admins");
            snprintf(s[i].grp[1], sizeof(s[i].grp[1]), "team%u",
                     bench_rand(&rng) % 50);
            in[i].authenticated = 1;
            in[i].user.data = s[i].user;
            in[i].user.len = strlen(s[i].user);
            in[i].groups[0].data = s[i].grp[0];
            in[i].groups[0].len = strlen(s[i].grp[0]);
            in[i].groups[1].data = s[i].grp[1];
            in[i].groups[1].len = strlen(s[i].grp[1]);
            in[i].ngroups = 2;
            in[i].auth_methods = POL_AUTH_PASSWORD
                                 | (bench_rand(&rng) % 2 ? POL_AUTH_TOTP : 0);
            in[i].mfa_time = in[i].now
                             - (int64_t) (bench_rand(&rng) % 3600);
        }
        if (bench_rand(&rng) % 3 != 0) {
            in[i].device_status = POL_DEVICE_ACTIVE;
            in[i].device_owner = in[i].user;
            in[i].posture_time = in[i].now
                                 - (int64_t) (bench_rand(&rng) % 172800);
            in[i].disk_encrypted = POL_TRUE;
            in[i].firewall = bench_rand(&rng) % 4 ? POL_TRUE : POL_FALSE;
        }
        in[i].addr_family = 4;
        in[i].addr[0] = 10;
        in[i].addr[1] = (uint8_t) (bench_rand(&rng) % 2 ? 20 : 30);
        in[i].addr[2] = (uint8_t) bench_rand(&rng);
        in[i].addr[3] = (uint8_t) bench_rand(&rng);
        in[i].new_address = (bench_rand(&rng) % 10 == 0);
        in[i].trust_score = (int) (bench_rand(&rng) % 101);
    }
}


int
main(int argc, char **argv)
{
    pol_diags_t      diags;
    pol_decision_t   d;
    pol_t           *pol;
    pol_input_t     *in;
    bench_strs_t    *strs;
    double          *batches, median, p99;
    char            *text, line[700];
    size_t           len, nbatches, b, k, i;
    long             total;
    int64_t          t0, t1;
    unsigned         outcomes[5];
    volatile unsigned  sink;

    total = (argc > 1) ? atol(argv[1]) : BENCH_DEFAULT_N;
    if (total < BENCH_BATCH) {
        total = BENCH_BATCH;
    }
    nbatches = (size_t) total / BENCH_BATCH;

    text = bench_policy(&len);
    if (text == NULL) {
        fprintf(stderr, "policy_bench: cannot generate the policy\n");
        return 1;
    }

    t0 = bench_ns();
    if (pol_load_string("bench.policy", text, len, &pol, &diags) != 0) {
        for (i = 0; i < diags.ndiags; i++) {
            pol_diag_format(&diags.diags[i], line, sizeof(line));
            fprintf(stderr, "%s\n", line);
        }
        free(text);
        return 1;
    }
    t1 = bench_ns();

    printf("policy compile: %u apps, %u rules, %zu bytes in %.2f ms\n",
           pol_napps(pol), pol_nrules(pol), len, (double) (t1 - t0) / 1e6);

    in = calloc(BENCH_INPUTS, sizeof(pol_input_t));
    strs = calloc(BENCH_INPUTS, sizeof(bench_strs_t));
    batches = calloc(nbatches, sizeof(double));
    if (in == NULL || strs == NULL || batches == NULL) {
        fprintf(stderr, "policy_bench: out of memory\n");
        return 1;
    }
    bench_inputs(in, strs, BENCH_INPUTS);

    memset(outcomes, 0, sizeof(outcomes));
    for (i = 0; i < BENCH_INPUTS; i++) {
        pol_eval(pol, &in[i], &d);
        outcomes[d.outcome]++;
    }
    printf("decisions over %d inputs: %u allow, %u deny, %u login, "
           "%u step-up\n", BENCH_INPUTS, outcomes[POL_ALLOW],
           outcomes[POL_DENY], outcomes[POL_LOGIN], outcomes[POL_STEP_UP]);

    sink = 0;
    k = 0;
    for (b = 0; b < nbatches; b++) {
        t0 = bench_ns();
        for (i = 0; i < BENCH_BATCH; i++) {
            pol_eval(pol, &in[k], &d);
            sink += d.outcome;
            k = (k + 1) & (BENCH_INPUTS - 1);
        }
        t1 = bench_ns();
        batches[b] = (double) (t1 - t0) / BENCH_BATCH;
    }
    (void) sink;

    qsort(batches, nbatches, sizeof(double), bench_cmp);
    median = batches[nbatches / 2];
    p99 = batches[(nbatches * 99) / 100 < nbatches ? (nbatches * 99) / 100
                                                   : nbatches - 1];

    printf("policy eval: %u rules, median %.0f ns/decision (p99 %.0f ns) "
           "over %zu batches\n", pol_nrules(pol), median, p99, nbatches);

    pol_free(pol);
    free(text);
    free(in);
    free(strs);
    free(batches);

    if (median > BENCH_LIMIT_NS) {
        fprintf(stderr, "policy_bench: median %.0f ns exceeds %.0f ns\n",
                median, BENCH_LIMIT_NS);
        return 1;
    }
    return 0;
}
