/*
 * ztca: the ztgate device CA on the command line.  A thin layer over
 * certs/ca.h: parse arguments, read the passphrase file, print results.
 *
 * Exit status: 0 success, 1 failure, 2 usage error.
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "certs/ca.h"

#define ZTCA_EXIT_OK        0
#define ZTCA_EXIT_FAIL      1
#define ZTCA_EXIT_USAGE     2

#define ZTCA_MAX_NAMES      64
#define ZTCA_MAX_DAYS       36500
#define ZTCA_PASS_MAX       1024

/* Long-only options get values above any character. */
enum {
    ZTCA_OPT_CN = 256,
    ZTCA_OPT_RSA,
    ZTCA_OPT_DAYS,
    ZTCA_OPT_PASSFILE,
    ZTCA_OPT_KEY,
    ZTCA_OPT_CERT,
    ZTCA_OPT_DNS,
    ZTCA_OPT_IP,
    ZTCA_OPT_CSR,
    ZTCA_OPT_ID,
    ZTCA_OPT_OUT,
    ZTCA_OPT_P12,
    ZTCA_OPT_EXPIRING
};

typedef struct {
    const char  *name;
    int        (*run)(int argc, char **argv);
    const char  *usage;
} ztca_cmd_t;

/* What the commands that open a CA directory share on the command line. */
typedef struct {
    const ztca_cmd_t  *cmd;
    const char        *dir;
    const char        *passfile;
    int                days;
} ztca_args_t;

/* ztca list: what ztca_list_entry() selects by. */
typedef struct {
    int64_t  now;
    int64_t  until;                 /* 0: every entry */
} ztca_list_t;

/* ztca_common_opt(): the option was taken, go on parsing. */
#define ZTCA_OPT_NEXT       -1

static void ztca_verror(const char *fmt, va_list ap)
    __attribute__((format(printf, 1, 0)));
static void ztca_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static int ztca_usage_error(const ztca_cmd_t *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void ztca_usage(FILE *fp, const ztca_cmd_t *cmd);
static const ztca_cmd_t *ztca_find(const char *name);
static int ztca_parse_days(const char *s, int *out);
static void ztca_args_init(ztca_args_t *args, const char *name);
static int ztca_common_opt(ztca_args_t *args, int c);
static int ztca_no_operands(const ztca_args_t *args, int argc, char **argv);
static int ztca_passphrase(const ztca_args_t *args, char *pass, size_t size,
    const char **passphrase);
static int ztca_result(int rc, const ca_err_t *err, char *pass, size_t size);
static int ztca_read_passphrase(const char *path, char *buf, size_t size);
static void ztca_time(int64_t t, char *buf, size_t size);
static void ztca_print_info(const ca_cert_info_t *info);
static void ztca_print_issued(const ca_cert_info_t *info,
    const char *p12_pass);
static int ztca_list_entry(const ca_entry_t *e, void *arg);
static int ztca_init(int argc, char **argv);
static int ztca_server(int argc, char **argv);
static int ztca_device(int argc, char **argv);
static int ztca_renew(int argc, char **argv);
static int ztca_list(int argc, char **argv);
static int ztca_revoke(int argc, char **argv);
static int ztca_crl(int argc, char **argv);
static int ztca_show(int argc, char **argv);

static const ztca_cmd_t  ztca_cmds[] = {
    { "init", ztca_init,
      "init -d DIR [--cn NAME] [--rsa] [--days N] [--passphrase-file FILE]" },
    { "server", ztca_server,
      "server -d DIR --key OUT --cert OUT [--dns NAME]... [--ip ADDR]...\n"
      "            [--days N] [--passphrase-file FILE]" },
    { "device", ztca_device,
      "device -d DIR --cert OUT --csr FILE [--id ID] [--cn NAME]\n"
      "            [--days N] [--passphrase-file FILE]\n"
      "       ztca device -d DIR --p12 OUT [--id ID] [--cn NAME] [--days N]\n"
      "            [--passphrase-file FILE]\n"
      "       ztca device -d DIR --cert OUT --key OUT [--id ID] [--cn NAME]\n"
      "            [--days N] [--passphrase-file FILE]" },
    { "renew", ztca_renew,
      "renew -d DIR CERTFILE (--csr FILE | --key OUT | --p12 OUT)\n"
      "            --cert OUT [--days N] [--passphrase-file FILE]" },
    { "list", ztca_list,
      "list -d DIR [--expiring DAYS]" },
    { "revoke", ztca_revoke,
      "revoke -d DIR SERIAL|CERTFILE" },
    { "crl", ztca_crl,
      "crl -d DIR --out FILE [--days N] [--passphrase-file FILE]" },
    { "show", ztca_show,
      "show CERTFILE" },
    { NULL, NULL, NULL }
};

static char  ztca_progname[] = "ztca";


static void
ztca_verror(const char *fmt, va_list ap)
{
    fputs("ztca: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}


static void
ztca_error(const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    ztca_verror(fmt, ap);
    va_end(ap);
}


static int
ztca_usage_error(const ztca_cmd_t *cmd, const char *fmt, ...)
{
    va_list  ap;

    if (fmt != NULL) {
        va_start(ap, fmt);
        ztca_verror(fmt, ap);
        va_end(ap);
    }

    ztca_usage(stderr, cmd);

    return ZTCA_EXIT_USAGE;
}


static void
ztca_usage(FILE *fp, const ztca_cmd_t *cmd)
{
    const ztca_cmd_t  *c;

    if (cmd != NULL) {
        fprintf(fp, "usage: ztca %s\n", cmd->usage);
        return;
    }

    fputs("usage: ztca command [options]\n", fp);
    for (c = ztca_cmds; c->name != NULL; c++) {
        fprintf(fp, "       ztca %s\n", c->usage);
    }
    fputs("Run \"ztca command --help\" for one command.\n", fp);
}


static const ztca_cmd_t *
ztca_find(const char *name)
{
    const ztca_cmd_t  *c;

    for (c = ztca_cmds; c->name != NULL; c++) {
        if (strcmp(c->name, name) == 0) {
            return c;
        }
    }

    return NULL;
}


static int
ztca_parse_days(const char *s, int *out)
{
    char  *end;
    long   v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 1
        || v > ZTCA_MAX_DAYS)
    {
        return -1;
    }

    *out = (int) v;

    return 0;
}


static void
ztca_args_init(ztca_args_t *args, const char *name)
{
    args->cmd = ztca_find(name);
    args->dir = NULL;
    args->passfile = NULL;
    args->days = 0;
}


/*
 * Take one of the options the commands share (-d, --days,
 * --passphrase-file, --help) or report an unknown one.  Returns
 * ZTCA_OPT_NEXT when parsing goes on, else the exit status.
 */
static int
ztca_common_opt(ztca_args_t *args, int c)
{
    switch (c) {
    case 'd':
        args->dir = optarg;
        return ZTCA_OPT_NEXT;
    case ZTCA_OPT_DAYS:
        if (ztca_parse_days(optarg, &args->days) == -1) {
            return ztca_usage_error(args->cmd, "bad --days \"%s\"", optarg);
        }
        return ZTCA_OPT_NEXT;
    case ZTCA_OPT_PASSFILE:
        args->passfile = optarg;
        return ZTCA_OPT_NEXT;
    case 'h':
        ztca_usage(stdout, args->cmd);
        return ZTCA_EXIT_OK;
    default:
        return ztca_usage_error(args->cmd, NULL);
    }
}


/* Returns ZTCA_OPT_NEXT when no operand follows the options. */
static int
ztca_no_operands(const ztca_args_t *args, int argc, char **argv)
{
    if (optind != argc) {
        return ztca_usage_error(args->cmd, "unexpected argument \"%s\"",
                                argv[optind]);
    }

    return ZTCA_OPT_NEXT;
}


/*
 * Read the --passphrase-file, if any, into pass and point *passphrase at
 * it.  Returns 0, or -1 with pass wiped.
 */
static int
ztca_passphrase(const ztca_args_t *args, char *pass, size_t size,
    const char **passphrase)
{
    if (args->passfile == NULL) {
        return 0;
    }

    if (ztca_read_passphrase(args->passfile, pass, size) == -1) {
        OPENSSL_cleanse(pass, size);
        return -1;
    }

    *passphrase = pass;

    return 0;
}


/*
 * The exit status for rc, the result of a CA call: reports err on
 * failure.  Wipes pass either way.
 */
static int
ztca_result(int rc, const ca_err_t *err, char *pass, size_t size)
{
    if (rc == -1) {
        ztca_error("%s", err->msg);
    }

    OPENSSL_cleanse(pass, size);

    return rc == -1 ? ZTCA_EXIT_FAIL : ZTCA_EXIT_OK;
}


/* The first line of the file, without its line end. */
static int
ztca_read_passphrase(const char *path, char *buf, size_t size)
{
    FILE    *fp;
    size_t   len;
    int      rc;

    fp = fopen(path, "re");
    if (fp == NULL) {
        ztca_error("%s: %s", path, strerror(errno));
        return -1;
    }

    rc = -1;

    if (fgets(buf, (int) size, fp) == NULL) {
        if (ferror(fp)) {
            ztca_error("%s: %s", path, strerror(errno));
        } else {
            ztca_error("%s: empty passphrase file", path);
        }
        goto cleanup;
    }

    len = strlen(buf);
    if (len == size - 1 && buf[len - 1] != '\n' && !feof(fp)) {
        ztca_error("%s: passphrase longer than %zu bytes", path, size - 2);
        goto cleanup;
    }

    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) {
        buf[--len] = '\0';
    }

    if (len == 0) {
        ztca_error("%s: empty passphrase", path);
        goto cleanup;
    }

    rc = 0;

cleanup:

    (void) fclose(fp);

    return rc;
}


static void
ztca_time(int64_t t, char *buf, size_t size)
{
    struct tm  tm;
    time_t     s;

    s = (time_t) t;
    if (gmtime_r(&s, &tm) == NULL
        || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    {
        snprintf(buf, size, "%" PRId64, t);
    }
}


static void
ztca_print_info(const ca_cert_info_t *info)
{
    char  nb[32], na[32];

    ztca_time(info->not_before, nb, sizeof(nb));
    ztca_time(info->not_after, na, sizeof(na));

    printf("fingerprint: %s\n", info->fp_hex);
    printf("device-id: %s\n",
           info->device_id[0] != '\0' ? info->device_id : "-");
    printf("subject-cn: %s\n",
           info->subject_cn[0] != '\0' ? info->subject_cn : "-");
    printf("serial: %s\n", info->serial_hex);
    printf("not-before: %s\n", nb);
    printf("not-after: %s\n", na);
}


/*
 * What ztca prints for a new certificate; the PKCS#12 passphrase last and
 * only here: it is shown once and kept nowhere.
 */
static void
ztca_print_issued(const ca_cert_info_t *info, const char *p12_pass)
{
    char  na[32];

    ztca_time(info->not_after, na, sizeof(na));

    printf("device-id: %s\n", info->device_id);
    printf("fingerprint: %s\n", info->fp_hex);
    printf("serial: %s\n", info->serial_hex);
    printf("not-after: %s\n", na);

    if (p12_pass != NULL) {
        printf("passphrase: %s\n", p12_pass);
    }
}


static int
ztca_init(int argc, char **argv)
{
    char             pass[ZTCA_PASS_MAX];
    ztca_args_t      args;
    ca_init_opts_t   opts;
    ca_err_t         err;
    int              c, rc;

    static const struct option  longopts[] = {
        { "dir", required_argument, NULL, 'd' },
        { "cn", required_argument, NULL, ZTCA_OPT_CN },
        { "rsa", no_argument, NULL, ZTCA_OPT_RSA },
        { "days", required_argument, NULL, ZTCA_OPT_DAYS },
        { "passphrase-file", required_argument, NULL, ZTCA_OPT_PASSFILE },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    memset(&opts, 0, sizeof(opts));
    ztca_args_init(&args, "init");

    while ((c = getopt_long(argc, argv, "d:h", longopts, NULL)) != -1) {
        switch (c) {
        case ZTCA_OPT_CN:
            opts.common_name = optarg;
            break;
        case ZTCA_OPT_RSA:
            opts.key_type = CA_KEY_RSA_3072;
            break;
        default:
            rc = ztca_common_opt(&args, c);
            if (rc != ZTCA_OPT_NEXT) {
                return rc;
            }
        }
    }

    rc = ztca_no_operands(&args, argc, argv);
    if (rc != ZTCA_OPT_NEXT) {
        return rc;
    }

    if (args.dir == NULL) {
        return ztca_usage_error(args.cmd, "-d DIR is required");
    }

    opts.days = args.days;

    if (ztca_passphrase(&args, pass, sizeof(pass), &opts.passphrase) == -1) {
        return ZTCA_EXIT_FAIL;
    }

    rc = ca_init(args.dir, &opts, &err);

    return ztca_result(rc, &err, pass, sizeof(pass));
}


static int
ztca_server(int argc, char **argv)
{
    char          pass[ZTCA_PASS_MAX];
    const char   *dns[ZTCA_MAX_NAMES], *ips[ZTCA_MAX_NAMES];
    const char   *key, *cert, *passphrase;
    ztca_args_t   args;
    size_t        ndns, nips;
    ca_err_t      err;
    int           c, rc;

    static const struct option  longopts[] = {
        { "dir", required_argument, NULL, 'd' },
        { "key", required_argument, NULL, ZTCA_OPT_KEY },
        { "cert", required_argument, NULL, ZTCA_OPT_CERT },
        { "dns", required_argument, NULL, ZTCA_OPT_DNS },
        { "ip", required_argument, NULL, ZTCA_OPT_IP },
        { "days", required_argument, NULL, ZTCA_OPT_DAYS },
        { "passphrase-file", required_argument, NULL, ZTCA_OPT_PASSFILE },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    ztca_args_init(&args, "server");
    passphrase = NULL;
    key = NULL;
    cert = NULL;
    ndns = 0;
    nips = 0;

    while ((c = getopt_long(argc, argv, "d:h", longopts, NULL)) != -1) {
        switch (c) {
        case ZTCA_OPT_KEY:
            key = optarg;
            break;
        case ZTCA_OPT_CERT:
            cert = optarg;
            break;
        case ZTCA_OPT_DNS:
            if (ndns == ZTCA_MAX_NAMES) {
                return ztca_usage_error(args.cmd, "more than %d --dns names",
                                        ZTCA_MAX_NAMES);
            }
            dns[ndns++] = optarg;
            break;
        case ZTCA_OPT_IP:
            if (nips == ZTCA_MAX_NAMES) {
                return ztca_usage_error(args.cmd, "more than %d --ip "
                                        "addresses", ZTCA_MAX_NAMES);
            }
            ips[nips++] = optarg;
            break;
        default:
            rc = ztca_common_opt(&args, c);
            if (rc != ZTCA_OPT_NEXT) {
                return rc;
            }
        }
    }

    rc = ztca_no_operands(&args, argc, argv);
    if (rc != ZTCA_OPT_NEXT) {
        return rc;
    }

    if (args.dir == NULL || key == NULL || cert == NULL) {
        return ztca_usage_error(args.cmd,
                                "-d DIR, --key and --cert are required");
    }

    if (ndns + nips == 0) {
        return ztca_usage_error(args.cmd,
                                "at least one --dns or --ip is required");
    }

    if (ztca_passphrase(&args, pass, sizeof(pass), &passphrase) == -1) {
        return ZTCA_EXIT_FAIL;
    }

    rc = ca_issue_server(args.dir, passphrase, dns, ndns, ips, nips,
                         args.days, key, cert, &err);

    return ztca_result(rc, &err, pass, sizeof(pass));
}


static int
ztca_device(int argc, char **argv)
{
    char             pass[ZTCA_PASS_MAX];
    char             p12_pass[CA_P12_PASS_SIZE];
    const char      *key, *cert, *csr, *p12, *id, *cn, *passphrase;
    ztca_args_t      args;
    ca_cert_info_t   info;
    ca_err_t         err;
    int              c, rc;

    static const struct option  longopts[] = {
        { "dir", required_argument, NULL, 'd' },
        { "cert", required_argument, NULL, ZTCA_OPT_CERT },
        { "key", required_argument, NULL, ZTCA_OPT_KEY },
        { "csr", required_argument, NULL, ZTCA_OPT_CSR },
        { "p12", required_argument, NULL, ZTCA_OPT_P12 },
        { "id", required_argument, NULL, ZTCA_OPT_ID },
        { "cn", required_argument, NULL, ZTCA_OPT_CN },
        { "days", required_argument, NULL, ZTCA_OPT_DAYS },
        { "passphrase-file", required_argument, NULL, ZTCA_OPT_PASSFILE },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    ztca_args_init(&args, "device");
    passphrase = NULL;
    key = NULL;
    cert = NULL;
    csr = NULL;
    p12 = NULL;
    id = NULL;
    cn = NULL;

    while ((c = getopt_long(argc, argv, "d:h", longopts, NULL)) != -1) {
        switch (c) {
        case ZTCA_OPT_CERT:
            cert = optarg;
            break;
        case ZTCA_OPT_KEY:
            key = optarg;
            break;
        case ZTCA_OPT_CSR:
            csr = optarg;
            break;
        case ZTCA_OPT_P12:
            p12 = optarg;
            break;
        case ZTCA_OPT_ID:
            id = optarg;
            break;
        case ZTCA_OPT_CN:
            cn = optarg;
            break;
        default:
            rc = ztca_common_opt(&args, c);
            if (rc != ZTCA_OPT_NEXT) {
                return rc;
            }
        }
    }

    rc = ztca_no_operands(&args, argc, argv);
    if (rc != ZTCA_OPT_NEXT) {
        return rc;
    }

    if (args.dir == NULL) {
        return ztca_usage_error(args.cmd, "-d DIR is required");
    }

    if ((key != NULL) + (csr != NULL) + (p12 != NULL) != 1) {
        return ztca_usage_error(args.cmd, "exactly one of --csr, --p12 and "
                                "--key is required");
    }

    if (p12 != NULL && cert != NULL) {
        return ztca_usage_error(args.cmd, "--p12 holds the certificate; "
                                "--cert is not used with it");
    }

    if (p12 == NULL && cert == NULL) {
        return ztca_usage_error(args.cmd, "--cert is required");
    }

    if (ztca_passphrase(&args, pass, sizeof(pass), &passphrase) == -1) {
        return ZTCA_EXIT_FAIL;
    }

    if (p12 != NULL) {
        rc = ca_issue_device_p12(args.dir, passphrase, id, cn, args.days, p12,
                                 p12_pass, sizeof(p12_pass), &info, &err);
    } else {
        rc = ca_issue_device(args.dir, passphrase, id, cn, csr, args.days,
                             key, cert, &info, &err);
    }

    if (rc != -1) {
        ztca_print_issued(&info, p12 != NULL ? p12_pass : NULL);
    }

    OPENSSL_cleanse(p12_pass, sizeof(p12_pass));

    return ztca_result(rc, &err, pass, sizeof(pass));
}


static int
ztca_renew(int argc, char **argv)
{
    char             pass[ZTCA_PASS_MAX];
    char             p12_pass[CA_P12_PASS_SIZE];
    const char      *key, *cert, *csr, *p12, *old, *passphrase;
    ztca_args_t      args;
    ca_cert_info_t   info;
    ca_err_t         err;
    int              c, rc;

    static const struct option  longopts[] = {
        { "dir", required_argument, NULL, 'd' },
        { "cert", required_argument, NULL, ZTCA_OPT_CERT },
        { "key", required_argument, NULL, ZTCA_OPT_KEY },
        { "csr", required_argument, NULL, ZTCA_OPT_CSR },
        { "p12", required_argument, NULL, ZTCA_OPT_P12 },
        { "days", required_argument, NULL, ZTCA_OPT_DAYS },
        { "passphrase-file", required_argument, NULL, ZTCA_OPT_PASSFILE },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    ztca_args_init(&args, "renew");
    passphrase = NULL;
    key = NULL;
    cert = NULL;
    csr = NULL;
    p12 = NULL;

    while ((c = getopt_long(argc, argv, "d:h", longopts, NULL)) != -1) {
        switch (c) {
        case ZTCA_OPT_CERT:
            cert = optarg;
            break;
        case ZTCA_OPT_KEY:
            key = optarg;
            break;
        case ZTCA_OPT_CSR:
            csr = optarg;
            break;
        case ZTCA_OPT_P12:
            p12 = optarg;
            break;
        default:
            rc = ztca_common_opt(&args, c);
            if (rc != ZTCA_OPT_NEXT) {
                return rc;
            }
        }
    }

    if (args.dir == NULL || cert == NULL) {
        return ztca_usage_error(args.cmd, "-d DIR and --cert are required");
    }

    if (argc - optind != 1) {
        return ztca_usage_error(args.cmd, "one CERTFILE to renew is "
                                "required");
    }

    old = argv[optind];

    if ((key != NULL) + (csr != NULL) + (p12 != NULL) != 1) {
        return ztca_usage_error(args.cmd, "exactly one of --csr, --p12 and "
                                "--key is required");
    }

    if (ztca_passphrase(&args, pass, sizeof(pass), &passphrase) == -1) {
        return ZTCA_EXIT_FAIL;
    }

    if (p12 != NULL) {
        rc = ca_renew_p12(args.dir, passphrase, old, args.days, p12,
                          p12_pass, sizeof(p12_pass), cert, &info, &err);
    } else {
        rc = ca_renew(args.dir, passphrase, old, csr, args.days, key, cert,
                      &info, &err);
    }

    if (rc != -1) {
        ztca_print_issued(&info, p12 != NULL ? p12_pass : NULL);
    }

    OPENSSL_cleanse(p12_pass, sizeof(p12_pass));

    return ztca_result(rc, &err, pass, sizeof(pass));
}


static int
ztca_list_entry(const ca_entry_t *e, void *arg)
{
    char          na[32];
    const char   *status;
    ztca_list_t  *l;

    l = arg;

    if (e->status == 'R') {
        status = "revoked";
    } else if (e->not_after < l->now) {
        status = "expired";
    } else {
        status = "valid";
    }

    if (l->until != 0
        && (e->status != 'V' || e->not_after < l->now
            || e->not_after > l->until))
    {
        return 0;
    }

    ztca_time(e->not_after, na, sizeof(na));

    printf("%-7s %-32s %s %s %s\n", status, e->serial_hex, na,
           e->device_id[0] != '\0' ? e->device_id : "-",
           e->subject_cn[0] != '\0' ? e->subject_cn : "-");

    return 0;
}


static int
ztca_list(int argc, char **argv)
{
    ztca_args_t   args;
    ztca_list_t   l;
    ca_err_t      err;
    int           c, rc, days;

    static const struct option  longopts[] = {
        { "dir", required_argument, NULL, 'd' },
        { "expiring", required_argument, NULL, ZTCA_OPT_EXPIRING },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    ztca_args_init(&args, "list");
    days = 0;

    while ((c = getopt_long(argc, argv, "d:h", longopts, NULL)) != -1) {
        if (c == ZTCA_OPT_EXPIRING) {
            if (ztca_parse_days(optarg, &days) == -1) {
                return ztca_usage_error(args.cmd, "bad --expiring \"%s\"",
                                        optarg);
            }
            continue;
        }

        rc = ztca_common_opt(&args, c);
        if (rc != ZTCA_OPT_NEXT) {
            return rc;
        }
    }

    rc = ztca_no_operands(&args, argc, argv);
    if (rc != ZTCA_OPT_NEXT) {
        return rc;
    }

    if (args.dir == NULL) {
        return ztca_usage_error(args.cmd, "-d DIR is required");
    }

    l.now = (int64_t) time(NULL);
    l.until = days > 0 ? l.now + (int64_t) days * 86400 : 0;

    if (ca_list(args.dir, ztca_list_entry, &l, &err) == -1) {
        ztca_error("%s", err.msg);
        return ZTCA_EXIT_FAIL;
    }

    return ZTCA_EXIT_OK;
}


static int
ztca_revoke(int argc, char **argv)
{
    const char      *serial;
    ztca_args_t      args;
    ca_cert_info_t   info;
    ca_err_t         err;
    int              c, rc;

    static const struct option  longopts[] = {
        { "dir", required_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    ztca_args_init(&args, "revoke");

    while ((c = getopt_long(argc, argv, "d:h", longopts, NULL)) != -1) {
        rc = ztca_common_opt(&args, c);
        if (rc != ZTCA_OPT_NEXT) {
            return rc;
        }
    }

    if (args.dir == NULL) {
        return ztca_usage_error(args.cmd, "-d DIR is required");
    }

    if (argc - optind != 1) {
        return ztca_usage_error(args.cmd,
                                "one SERIAL or CERTFILE is required");
    }

    serial = argv[optind];

    /* An existing file is a certificate; anything else a serial. */
    if (access(serial, F_OK) == 0) {
        if (ca_cert_info_file(serial, &info, &err) == -1) {
            ztca_error("%s", err.msg);
            return ZTCA_EXIT_FAIL;
        }
        serial = info.serial_hex;
    }

    if (ca_revoke(args.dir, serial, &err) == -1) {
        ztca_error("%s", err.msg);
        return ZTCA_EXIT_FAIL;
    }

    return ZTCA_EXIT_OK;
}


static int
ztca_crl(int argc, char **argv)
{
    char          pass[ZTCA_PASS_MAX];
    const char   *out, *passphrase;
    ztca_args_t   args;
    ca_err_t      err;
    int           c, rc;

    static const struct option  longopts[] = {
        { "dir", required_argument, NULL, 'd' },
        { "out", required_argument, NULL, ZTCA_OPT_OUT },
        { "days", required_argument, NULL, ZTCA_OPT_DAYS },
        { "passphrase-file", required_argument, NULL, ZTCA_OPT_PASSFILE },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    ztca_args_init(&args, "crl");
    out = NULL;
    passphrase = NULL;

    while ((c = getopt_long(argc, argv, "d:h", longopts, NULL)) != -1) {
        if (c == ZTCA_OPT_OUT) {
            out = optarg;
            continue;
        }

        rc = ztca_common_opt(&args, c);
        if (rc != ZTCA_OPT_NEXT) {
            return rc;
        }
    }

    rc = ztca_no_operands(&args, argc, argv);
    if (rc != ZTCA_OPT_NEXT) {
        return rc;
    }

    if (args.dir == NULL || out == NULL) {
        return ztca_usage_error(args.cmd, "-d DIR and --out are required");
    }

    if (ztca_passphrase(&args, pass, sizeof(pass), &passphrase) == -1) {
        return ZTCA_EXIT_FAIL;
    }

    rc = ca_publish_crl(args.dir, passphrase, args.days, out, &err);

    return ztca_result(rc, &err, pass, sizeof(pass));
}


static int
ztca_show(int argc, char **argv)
{
    ztca_args_t      args;
    ca_cert_info_t   info;
    ca_err_t         err;
    int              c, rc;

    static const struct option  longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    ztca_args_init(&args, "show");

    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        rc = ztca_common_opt(&args, c);
        if (rc != ZTCA_OPT_NEXT) {
            return rc;
        }
    }

    if (argc - optind != 1) {
        return ztca_usage_error(args.cmd, "one CERTFILE is required");
    }

    if (ca_cert_info_file(argv[optind], &info, &err) == -1) {
        ztca_error("%s", err.msg);
        return ZTCA_EXIT_FAIL;
    }

    ztca_print_info(&info);

    return ZTCA_EXIT_OK;
}


int
main(int argc, char **argv)
{
    const ztca_cmd_t  *cmd;
    int                rc;

    if (argc < 2) {
        return ztca_usage_error(NULL, NULL);
    }

    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0
        || strcmp(argv[1], "help") == 0)
    {
        ztca_usage(stdout, NULL);
        return ZTCA_EXIT_OK;
    }

    cmd = ztca_find(argv[1]);
    if (cmd == NULL) {
        return ztca_usage_error(NULL, "unknown command \"%s\"", argv[1]);
    }

    /* getopt's own messages then read "ztca: unrecognized option". */
    argv[1] = ztca_progname;

    rc = cmd->run(argc - 1, argv + 1);

    if (fflush(stdout) == EOF || ferror(stdout)) {
        ztca_error("stdout: %s", strerror(errno));
        return ZTCA_EXIT_FAIL;
    }

    return rc;
}
