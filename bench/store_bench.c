/*
 * Store scale benchmark: how the decision cost grows with the store.
 *
 *     store_bench [--devices N] [--users N] [--decisions N] [--keep DIR]
 *
 * Builds two real LMDB stores in a temporary directory - a small one
 * (1,000 devices, 100 users) and a large one (default 1,000,000 devices,
 * 100,000 users) - with the store's own bulk enrollment, then reopens each
 * as trustd would and times decide() for requests from randomly chosen
 * enrolled devices (one read transaction, a device lookup, the built-in
 * rule), after one warming pass over the devices as a serving trustd's
 * map would be.  Prints load time, on-disk size and decision p50/p99 for both,
 * and the large/small ratio against the target (at most 2x).
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "zt_wire.h"
#include "trustd/behaviour.h"
#include "trustd/blocklist.h"
#include "trustd/decide.h"
#include "trustd/score.h"
#include "trustd/log.h"
#include "trustd/store.h"

#define BENCH_BATCH     50000
#define BENCH_MAP       (4ull * 1024 * 1024 * 1024)
#define BENCH_CACHE     1048576     /* trustd's device_cache default */

typedef struct {
    size_t      devices;
    size_t      users;
    double      load_s;
    double      disk_mb;
    double      p50_ns;
    double      p99_ns;
} bench_result_t;


static double bench_now(void);
static void bench_device(store_device_t *dev, size_t i);
static int bench_cmp(const void *a, const void *b);
static int bench_build(const char *dir, size_t ndev, size_t nusers,
    bench_result_t *r);
static int bench_decide(const char *dir, size_t ndev, size_t active,
    size_t n, int inference, size_t cache, bench_result_t *r);
static int bench_rm(const char *dir);
static int bench_touch_cb(const store_device_t *dev, void *arg);


static double
bench_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}


/* Device i: a deterministic fingerprint and id, owner user<i % users>. */
static void
bench_device(store_device_t *dev, size_t i)
{
    uint64_t  x;
    unsigned  k;

    memset(dev, 0, sizeof(*dev));

    x = (uint64_t) i * 0x9E3779B97F4A7C15ull + 1;

    for (k = 0; k < STORE_FP_LEN; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        dev->fp[k] = (uint8_t) x;
    }

    snprintf(dev->id, sizeof(dev->id),
             STORE_DEVICE_URN "%08zx-0000-4000-8000-%012zx", i, i);
    snprintf(dev->owner, sizeof(dev->owner), "user%06zu", i % 100000);
    snprintf(dev->name, sizeof(dev->name), "laptop %zu", i);
    snprintf(dev->platform, sizeof(dev->platform), "linux");
    dev->expires_at = (int64_t) time(NULL) + 365 * 86400;
    dev->status = STORE_DEVICE_ACTIVE;
}


static int
bench_cmp(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return (x > y) - (x < y);
}


static int
bench_build(const char *dir, size_t ndev, size_t nusers, bench_result_t *r)
{
    store_t         *st;
    store_err_t      err;
    store_device_t  *batch;
    store_user_t     u;
    struct stat      sb;
    char             path[4096];
    size_t           i, n, bad;
    double           t0;

    /* bulk loading only: no fsync per commit */
    if (store_open(&st, dir, BENCH_MAP, STORE_NOSYNC, &err) != 0) {
        fprintf(stderr, "store_bench: %s\n", err.msg);
        return -1;
    }

    batch = calloc(BENCH_BATCH, sizeof(store_device_t));
    if (batch == NULL) {
        store_close(st);
        return -1;
    }

    t0 = bench_now();

    for (i = 0; i < ndev; i += n) {
        n = ndev - i < BENCH_BATCH ? ndev - i : BENCH_BATCH;

        for (size_t k = 0; k < n; k++) {
            bench_device(&batch[k], i + k);
        }

        if (store_device_enroll_batch(st, batch, n, "bench", &bad, &err)
            != 0)
        {
            fprintf(stderr, "store_bench: device %zu: %s\n", i + bad,
                    err.msg);
            free(batch);
            store_close(st);
            return -1;
        }
    }

    for (i = 0; i < nusers; i++) {
        memset(&u, 0, sizeof(u));
        snprintf(u.name, sizeof(u.name), "user%06zu", i);
        snprintf(u.display, sizeof(u.display), "User %zu", i);
        snprintf(u.groups[0], sizeof(u.groups[0]), "staff");
        u.ngroups = 1;

        if (store_user_create(st, &u, "bench", &err) != 0) {
            fprintf(stderr, "store_bench: user %zu: %s\n", i, err.msg);
            free(batch);
            store_close(st);
            return -1;
        }
    }

    r->load_s = bench_now() - t0;

    free(batch);
    store_close(st);

    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    if (stat(path, &sb) == 0) {
        r->disk_mb = (double) sb.st_blocks * 512.0 / (1024.0 * 1024.0);
    }

    r->devices = ndev;
    r->users = nusers;

    return 0;
}


/*
 * Time n decisions for devices drawn uniformly from the first `active` of
 * ndev enrolled devices (active == ndev: all of them).
 */
static int
bench_decide(const char *dir, size_t ndev, size_t active, size_t n,
    int inference, size_t cache, bench_result_t *r)
{
    score_weights_t  weights;
    blocklist_t     *bl, *tn;
    store_t         *st;
    store_err_t      err;
    store_device_t   dev;
    decide_conf_t    conf;
    decide_ctx_t    *ctx;
    wire_req_t       req;
    wire_resp_t      resp;
    double          *t, t0;
    uint64_t         x;
    size_t           i, allowed;

    /* as trustd opens it */
    if (store_open(&st, dir, BENCH_MAP, 0, &err) != 0) {
        fprintf(stderr, "store_bench: %s\n", err.msg);
        return -1;
    }

    ctx = calloc(1, sizeof(*ctx));
    t = malloc(n * sizeof(double));
    if (ctx == NULL || t == NULL) {
        free(ctx);
        free(t);
        store_close(st);
        return -1;
    }

    memset(&conf, 0, sizeof(conf));
    conf.allow_ttl_ms = 1000;
    conf.device_cache = cache;

    /* trust inference as trustd runs it: default weights, behaviour
     * state, the blocklist and trusted-network tables */
    bl = NULL;
    tn = NULL;

    if (inference) {
        score_weights_default(&weights);
        conf.trust = &weights;
        conf.behaviour = behaviour_create(10 * 60 * 1000);
        bl = blocklist_new();
        tn = blocklist_new();
        conf.blocklist = bl;
        conf.trusted = tn;
        if (conf.behaviour == NULL || bl == NULL || tn == NULL) {
            fprintf(stderr, "store_bench: out of memory\n");
            return -1;
        }
    }

    memset(&req, 0, sizeof(req));
    req.method.data = "GET";
    req.method.len = 3;
    req.scheme.data = "https";
    req.scheme.len = 5;
    req.host.data = "app.agency.example";
    req.host.len = strlen(req.host.data);
    req.path.data = "/records/42";
    req.path.len = strlen(req.path.data);
    req.client_addr.data = "10.20.1.5";
    req.client_addr.len = strlen(req.client_addr.data);
    req.cert_verify = WIRE_CERT_SUCCESS;
    req.has_cert_fp = 1;

    /*
     * Warm: a serving trustd has long since faulted its map in and seen
     * its devices; a store just opened has not, and first-touch page
     * faults would dominate.  One pass over every device record, and one
     * decision for each active device (which fills trustd's device cache
     * when it is on), for both stores alike.
     */
    if (store_device_list(st, bench_touch_cb, NULL, &err) != 0) {
        fprintf(stderr, "store_bench: %s\n", err.msg);
    }

    for (i = 0; i < (active < ndev ? active : ndev); i++) {
        bench_device(&dev, i);
        memcpy(req.cert_fp, dev.fp, STORE_FP_LEN);
        decide(st, &conf, &req, &resp, ctx);
    }

    x = 88172645463325252ull;
    allowed = 0;

    if (active > ndev) {
        active = ndev;
    }

    for (i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bench_device(&dev, (size_t) (x % active));
        memcpy(req.cert_fp, dev.fp, STORE_FP_LEN);

        t0 = bench_now();
        decide(st, &conf, &req, &resp, ctx);
        t[i] = (bench_now() - t0) * 1e9;

        allowed += (resp.decision == WIRE_ALLOW);
    }

    if (allowed != n) {
        fprintf(stderr, "store_bench: only %zu of %zu enrolled devices "
                "were allowed\n", allowed, n);
    }

    qsort(t, n, sizeof(double), bench_cmp);
    r->p50_ns = t[n / 2];
    r->p99_ns = t[(size_t) ((double) n * 0.99)];

    decide_ctx_free(ctx);
    free(ctx);
    free(t);
    store_close(st);

    if (inference) {
        behaviour_free(conf.behaviour);
        blocklist_free(bl);
        blocklist_free(tn);
    }

    return allowed == n ? 0 : -1;
}


static int
bench_touch_cb(const store_device_t *dev, void *arg)
{
    (void) dev;
    (void) arg;

    return 0;
}


static int
bench_rm(const char *dir)
{
    char  path[4096];

    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/lock.mdb", dir);
    unlink(path);

    return rmdir(dir);
}


int
main(int argc, char **argv)
{
    bench_result_t   small, large, hot, small_inf, large_inf, nocache;
    const char      *keep;
    char             base[] = "/tmp/ztgate-store-bench-XXXXXX";
    char             sdir[4096], ldir[4096];
    size_t           ndev, nusers, ndec;
    double           ratio;
    int              i;

    ndev = 1000000;
    nusers = 100000;
    ndec = 200000;
    keep = NULL;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--devices") == 0 && i + 1 < argc) {
            ndev = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--users") == 0 && i + 1 < argc) {
            nusers = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--decisions") == 0 && i + 1 < argc) {
            ndec = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--keep") == 0) {
            keep = "yes";
        } else {
            fprintf(stderr, "usage: store_bench [--devices N] [--users N] "
                    "[--decisions N] [--keep]\n");
            return 2;
        }
    }

    if (ndev < 1000 || ndec == 0) {
        fprintf(stderr, "store_bench: at least 1000 devices\n");
        return 2;
    }

    log_init("store_bench", 0, LOG_LEVEL_WARN);

    if (mkdtemp(base) == NULL) {
        fprintf(stderr, "store_bench: mkdtemp: %s\n", strerror(errno));
        return 1;
    }

    snprintf(sdir, sizeof(sdir), "%s/small", base);
    snprintf(ldir, sizeof(ldir), "%s/large", base);

    memset(&small, 0, sizeof(small));
    memset(&large, 0, sizeof(large));
    memset(&hot, 0, sizeof(hot));
    memset(&small_inf, 0, sizeof(small_inf));
    memset(&large_inf, 0, sizeof(large_inf));
    memset(&nocache, 0, sizeof(nocache));

    printf("building the stores in %s ...\n", base);
    fflush(stdout);

    if (bench_build(sdir, 1000, 100, &small) != 0
        || bench_build(ldir, ndev, nusers, &large) != 0
        || bench_decide(sdir, 1000, 1000, ndec, 0, BENCH_CACHE, &small) != 0
        || bench_decide(ldir, ndev, ndev, ndec, 0, BENCH_CACHE, &large) != 0
        || bench_decide(ldir, ndev, 10000, ndec, 0, BENCH_CACHE, &hot) != 0
        || bench_decide(sdir, 1000, 1000, ndec, 1, BENCH_CACHE, &small_inf)
           != 0
        || bench_decide(ldir, ndev, ndev, ndec, 1, BENCH_CACHE, &large_inf)
           != 0
        || bench_decide(ldir, ndev, ndev, ndec, 0, 0, &nocache) != 0)
    {
        return 1;
    }

    ratio = large.p50_ns / small.p50_ns;

    printf("\nstore       devices    users   load s  on disk MB  "
           "decide p50 ns  p99 ns\n");
    printf("small    %10zu %8zu %8.1f %11.1f %14.0f %7.0f\n", small.devices,
           small.users, small.load_s, small.disk_mb, small.p50_ns,
           small.p99_ns);
    printf("large    %10zu %8zu %8.1f %11.1f %14.0f %7.0f\n", large.devices,
           large.users, large.load_s, large.disk_mb, large.p50_ns,
           large.p99_ns);
    printf("large, 10000 active devices              %14.0f %7.0f\n",
           hot.p50_ns, hot.p99_ns);
    printf("\ndecision cost large/small (p50, uniform over all devices): "
           "%.2f   target <= 2.00   %s\n", ratio,
           ratio <= 2.0 ? "PASS" : "FAIL");
    printf("with 10,000 active devices among them: %.2f (context, not the "
           "target)\n", hot.p50_ns / small.p50_ns);
    printf("large with device_cache 0 (every lookup walks the B-tree): "
           "p50 %.0f ns, p99 %.0f ns, %.2f x small (context)\n",
           nocache.p50_ns, nocache.p99_ns, nocache.p50_ns / small.p50_ns);
    printf("\ntrust inference on (default weights, behaviour state, "
           "blocklists):\n");
    printf("small    decide p50 %6.0f ns (off %6.0f)  on/off %.2f   "
           "target <= 1.50   %s\n", small_inf.p50_ns, small.p50_ns,
           small_inf.p50_ns / small.p50_ns,
           small_inf.p50_ns / small.p50_ns <= 1.5 ? "PASS" : "FAIL");
    printf("large    decide p50 %6.0f ns (off %6.0f)  on/off %.2f   "
           "target <= 1.50   %s\n", large_inf.p50_ns, large.p50_ns,
           large_inf.p50_ns / large.p50_ns,
           large_inf.p50_ns / large.p50_ns <= 1.5 ? "PASS" : "FAIL");
    printf("(%zu decisions each, random enrolled devices, one read "
           "transaction per decision)\n", ndec);

    if (keep == NULL) {
        bench_rm(sdir);
        bench_rm(ldir);
        rmdir(base);
    } else {
        printf("stores kept in %s\n", base);
    }

    return 0;
}
