/*
 * ztctl: ztgate administration.  It opens trustd's store directly (LMDB
 * allows several processes); trustd sees a change at its next decision.
 *
 * Commands are grouped ("device enroll", "audit tail"); a group is a
 * table of commands and the groups are a table too, so a new group
 * (users, sessions, policy) is one table and its handlers.
 *
 * Exit status: 0 ok, 1 operation failed, 2 usage error, 3 not found.
 */

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "certs/ca.h"
#include "trustd/config.h"
#include "trustd/store.h"


#define ZTCTL_OK            0
#define ZTCTL_FAILED        1
#define ZTCTL_USAGE         2
#define ZTCTL_NOTFOUND      3

#define ZTCTL_MIN_PREFIX    8

typedef struct ztctl_s      ztctl_t;
typedef struct ztctl_cmd_s  ztctl_cmd_t;

typedef int (*ztctl_handler_pt)(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);

struct ztctl_cmd_s {
    const char          *name;
    ztctl_handler_pt     handler;
    const char          *args;      /* synopsis after the command name */
    const char          *help;      /* what it does, options */
};

typedef struct {
    const char          *name;
    const ztctl_cmd_t   *cmds;
    const char          *summary;
} ztctl_group_t;

struct ztctl_s {
    const char          *config_path;
    int                  config_given;
    const char          *store_dir;
    const char          *actor;
    char                 actor_buf[64];
    const char          *group;
    store_t             *store;
};

typedef struct {
    char                 prefix[2 * STORE_FP_LEN + 1];
    size_t               len;
    store_device_t      *out;
    unsigned             matches;
} ztctl_prefix_t;


static void ztctl_usage(FILE *f);
static void ztctl_group_usage(const ztctl_group_t *g, FILE *f);
static void ztctl_cmd_usage(const ztctl_t *ctl, const ztctl_cmd_t *cmd,
    FILE *f);
static int ztctl_usage_error(const ztctl_t *ctl, const ztctl_cmd_t *cmd,
    const char *msg);
static int ztctl_open(ztctl_t *ctl, int write);
static int ztctl_other_opt(const ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int ch);
static int ztctl_store_failed(const store_err_t *err);
static int ztctl_open_device(ztctl_t *ctl, int write, const char *arg,
    store_device_t *dev);
static int ztctl_default_actor(ztctl_t *ctl);
static int ztctl_text_ok(const char *s, size_t max, int allow_empty);
static int ztctl_name_ok(const char *s, size_t max);
static void ztctl_time(int64_t t, char *buf, size_t size);
static int ztctl_resolve(ztctl_t *ctl, const char *arg, store_device_t *dev);
static int ztctl_prefix_cb(const store_device_t *dev, void *arg);
static int ztctl_hex_fp(const char *s, char *hex, size_t size);
static int ztctl_device_enroll(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_device_list(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_device_list_cb(const store_device_t *dev, void *arg);
static int ztctl_device_show(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_device_status(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_audit_tail(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_audit_cb(const store_audit_t *rec, void *arg);
static int ztctl_trustd(ztctl_t *ctl, const char *command);
static int ztctl_policy_reload(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_policy_status(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);


static const ztctl_cmd_t  ztctl_device_cmds[] = {
    { "enroll", ztctl_device_enroll,
      "--cert FILE --owner USER [--name NAME] [--platform P]",
      "Enroll the device that holds the certificate FILE (PEM) for USER.\n"
      "The certificate must carry a urn:ztgate:device: URI SAN; its\n"
      "expiry becomes the enrollment's expiry." },
    { "list", ztctl_device_list, "",
      "List enrolled devices." },
    { "show", ztctl_device_show, "FP|ID",
      "Show one device.  FP is the certificate's SHA-256 fingerprint\n"
      "(64 hex digits, or a unique prefix of at least 8); ID is the\n"
      "device urn." },
    { "revoke", ztctl_device_status, "FP|ID [--reason TEXT]",
      "Revoke a device: its requests are denied from trustd's next\n"
      "decision on (cached allow decisions expire within allow_ttl)." },
    { "quarantine", ztctl_device_status, "FP|ID [--reason TEXT]",
      "Quarantine a device: its requests are denied until it is\n"
      "activated again." },
    { "activate", ztctl_device_status, "FP|ID [--reason TEXT]",
      "Activate a quarantined or revoked device." },
    { NULL, NULL, NULL, NULL }
};

static const ztctl_cmd_t  ztctl_audit_cmds[] = {
    { "tail", ztctl_audit_tail, "[-n N]",
      "Show the last N audit records (default 20): time, actor, action,\n"
      "subject, detail." },
    { NULL, NULL, NULL, NULL }
};

static const ztctl_cmd_t  ztctl_policy_cmds[] = {
    { "reload", ztctl_policy_reload, "",
      "Ask the running trustd to reload its configuration and policy.\n"
      "The reload is atomic: if the policy does not load, trustd keeps\n"
      "the running one and the errors are printed here (exit 1).\n"
      "Needs admin_listen in trustd.conf (-c)." },
    { "status", ztctl_policy_status, "",
      "Show the running trustd's pid and loaded policy version." },
    { NULL, NULL, NULL, NULL }
};

static const ztctl_group_t  ztctl_groups[] = {
    { "device", ztctl_device_cmds, "enroll and manage devices" },
    { "audit", ztctl_audit_cmds, "read the audit log" },
    { "policy", ztctl_policy_cmds, "reload the running trustd's policy" },
    { NULL, NULL, NULL }
};


static void
ztctl_usage(FILE *f)
{
    const ztctl_group_t  *g;
    const ztctl_cmd_t    *c;

    fprintf(f,
        "usage: ztctl [-c trustd.conf | -s store_dir] [--actor NAME] "
        "COMMAND ...\n"
        "\n"
        "  -c FILE        take the store from trustd's configuration FILE\n"
        "                 (default %s)\n"
        "  -s DIR         use the store in DIR\n"
        "  --actor NAME   name recorded in the audit log (default: your "
        "login name)\n"
        "\n"
        "commands:\n", CONFIG_DEFAULT_PATH);

    for (g = ztctl_groups; g->name != NULL; g++) {
        for (c = g->cmds; c->name != NULL; c++) {
            fprintf(f, "  %s %s%s%s\n", g->name, c->name,
                    c->args[0] != '\0' ? " " : "", c->args);
        }
    }

    fprintf(f, "\n'ztctl GROUP COMMAND --help' describes a command.\n");
}


static void
ztctl_group_usage(const ztctl_group_t *g, FILE *f)
{
    const ztctl_cmd_t  *c;

    fprintf(f, "ztctl %s: %s\n\ncommands:\n", g->name, g->summary);

    for (c = g->cmds; c->name != NULL; c++) {
        fprintf(f, "  ztctl %s %s%s%s\n", g->name, c->name,
                c->args[0] != '\0' ? " " : "", c->args);
    }
}


static void
ztctl_cmd_usage(const ztctl_t *ctl, const ztctl_cmd_t *cmd, FILE *f)
{
    fprintf(f, "usage: ztctl %s %s%s%s\n\n%s\n", ctl->group, cmd->name,
            cmd->args[0] != '\0' ? " " : "", cmd->args, cmd->help);
}


static int
ztctl_usage_error(const ztctl_t *ctl, const ztctl_cmd_t *cmd,
    const char *msg)
{
    fprintf(stderr, "ztctl: %s\n", msg);
    fprintf(stderr, "usage: ztctl %s %s%s%s\n", ctl->group, cmd->name,
            cmd->args[0] != '\0' ? " " : "", cmd->args);

    return ZTCTL_USAGE;
}


/* Open the store (lazily), from -s or the config file's "store". */
static int
ztctl_open(ztctl_t *ctl, int write)
{
    config_t       cfg;
    config_err_t   cerr;
    store_err_t    err;
    const char    *dir;
    size_t         map_size;

    map_size = 0;

    if (ctl->store_dir != NULL) {
        dir = ctl->store_dir;

    } else {
        if (config_load(ctl->config_path, &cfg, &cerr) != 0) {
            fprintf(stderr, "ztctl: %s\n", cerr.msg);
            return ZTCTL_FAILED;
        }

        dir = cfg.store;
        map_size = cfg.store_map_size;
    }

    if (store_open(&ctl->store, dir, map_size, write ? 0 : STORE_RDONLY,
                   &err)
        != 0)
    {
        fprintf(stderr, "ztctl: %s\n", err.msg);
        return ZTCTL_FAILED;
    }

    return ZTCTL_OK;
}


/*
 * An option that no case of a command's getopt loop took: --help, or one
 * the command does not know.  Returns the exit status.
 */
static int
ztctl_other_opt(const ztctl_t *ctl, const ztctl_cmd_t *cmd, int ch)
{
    if (ch == 'h') {
        ztctl_cmd_usage(ctl, cmd, stdout);
        return ZTCTL_OK;
    }

    return ztctl_usage_error(ctl, cmd, "invalid option");
}


/* Report a failed store call; returns ZTCTL_FAILED. */
static int
ztctl_store_failed(const store_err_t *err)
{
    fprintf(stderr, "ztctl: %s\n", err->msg);

    return ZTCTL_FAILED;
}


/*
 * Open the store and find the device named by arg (see ztctl_resolve()).
 * Returns a ZTCTL_* exit status, having reported any problem.
 */
static int
ztctl_open_device(ztctl_t *ctl, int write, const char *arg,
    store_device_t *dev)
{
    int  rc;

    rc = ztctl_open(ctl, write);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    return ztctl_resolve(ctl, arg, dev);
}


static int
ztctl_default_actor(ztctl_t *ctl)
{
    struct passwd  *pw;

    pw = getpwuid(getuid());

    if (pw != NULL && strlen(pw->pw_name) < sizeof(ctl->actor_buf)) {
        snprintf(ctl->actor_buf, sizeof(ctl->actor_buf), "%s",
                 pw->pw_name);
    } else {
        snprintf(ctl->actor_buf, sizeof(ctl->actor_buf), "uid:%ld",
                 (long) getuid());
    }

    ctl->actor = ctl->actor_buf;

    return 0;
}


/* Printable text of at most max - 1 bytes (UTF-8 allowed). */
static int
ztctl_text_ok(const char *s, size_t max, int allow_empty)
{
    size_t  len;

    len = strlen(s);

    if (len >= max || (len == 0 && !allow_empty)) {
        return 0;
    }

    for (; *s != '\0'; s++) {
        if ((unsigned char) *s < 0x20 || *s == 0x7f) {
            return 0;
        }
    }

    return 1;
}


/* A user name: letters, digits and . _ @ - only. */
static int
ztctl_name_ok(const char *s, size_t max)
{
    size_t  len;

    len = strlen(s);

    if (len == 0 || len >= max) {
        return 0;
    }

    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789._@-") == len;
}


static void
ztctl_time(int64_t t, char *buf, size_t size)
{
    struct tm  tm;
    time_t     tt;

    if (t == 0) {
        snprintf(buf, size, "never");
        return;
    }

    tt = (time_t) t;
    if (gmtime_r(&tt, &tm) == NULL
        || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    {
        snprintf(buf, size, "%lld", (long long) t);
    }
}


/*
 * Normalize a fingerprint or fingerprint prefix: hex digits with optional
 * ':' separators, any case.  Returns the number of digits, or -1.
 */
static int
ztctl_hex_fp(const char *s, char *hex, size_t size)
{
    size_t  n;

    for (n = 0; *s != '\0'; s++) {
        if (*s == ':') {
            continue;
        }

        if (!isxdigit((unsigned char) *s) || n + 1 >= size) {
            return -1;
        }

        hex[n++] = (char) tolower((unsigned char) *s);
    }

    hex[n] = '\0';

    return (int) n;
}


static int
ztctl_prefix_cb(const store_device_t *dev, void *arg)
{
    ztctl_prefix_t  *p = arg;
    char             hex[2 * STORE_FP_LEN + 1];

    store_fp_hex(dev->fp, hex);

    if (strncmp(hex, p->prefix, p->len) == 0) {
        if (p->matches == 0) {
            *p->out = *dev;
        }

        p->matches++;
    }

    return 0;
}


/*
 * Find the device named by arg (urn, full fingerprint, or unique prefix).
 * Returns a ZTCTL_* exit status, having reported any problem.
 */
static int
ztctl_resolve(ztctl_t *ctl, const char *arg, store_device_t *dev)
{
    ztctl_prefix_t   p;
    store_err_t      err;
    store_view_t    *view;
    uint8_t          fp[STORE_FP_LEN];
    unsigned         hi, lo;
    size_t           i;
    int              n, rc;

    if (strncmp(arg, STORE_DEVICE_URN, sizeof(STORE_DEVICE_URN) - 1) == 0) {
        rc = store_device_find_id(ctl->store, arg, dev, &err);
        goto result;
    }

    n = ztctl_hex_fp(arg, p.prefix, sizeof(p.prefix));
    if (n < ZTCTL_MIN_PREFIX) {
        fprintf(stderr, "ztctl: \"%s\" is neither a device id (%s...) nor "
                "a fingerprint (64 hex digits, or a prefix of at least "
                "%d)\n", arg, STORE_DEVICE_URN, ZTCTL_MIN_PREFIX);
        return ZTCTL_USAGE;
    }

    if (n == 2 * STORE_FP_LEN) {
        for (i = 0; i < STORE_FP_LEN; i++) {
            hi = (unsigned) (isdigit((unsigned char) p.prefix[2 * i])
                             ? p.prefix[2 * i] - '0'
                             : p.prefix[2 * i] - 'a' + 10);
            lo = (unsigned) (isdigit((unsigned char) p.prefix[2 * i + 1])
                             ? p.prefix[2 * i + 1] - '0'
                             : p.prefix[2 * i + 1] - 'a' + 10);
            fp[i] = (uint8_t) (hi << 4 | lo);
        }

        view = NULL;
        rc = store_view_begin(ctl->store, &view, &err);
        if (rc == 0) {
            rc = store_device_get(view, fp, dev, &err);
        }

        store_view_free(view);
        goto result;
    }

    p.len = (size_t) n;
    p.out = dev;
    p.matches = 0;

    rc = store_device_list(ctl->store, ztctl_prefix_cb, &p, &err);
    if (rc == 0 && p.matches == 0) {
        rc = STORE_NOTFOUND;
    }

    if (rc == 0 && p.matches > 1) {
        fprintf(stderr, "ztctl: fingerprint prefix \"%s\" matches %u "
                "devices; give more digits\n", arg, p.matches);
        return ZTCTL_FAILED;
    }

result:

    if (rc == STORE_NOTFOUND) {
        fprintf(stderr, "ztctl: no device \"%s\"\n", arg);
        return ZTCTL_NOTFOUND;
    }

    if (rc != 0) {
        fprintf(stderr, "ztctl: %s\n", err.msg);
        return ZTCTL_FAILED;
    }

    return ZTCTL_OK;
}


static int
ztctl_device_enroll(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    static const struct option  longopts[] = {
        { "cert", required_argument, NULL, 'C' },
        { "owner", required_argument, NULL, 'o' },
        { "name", required_argument, NULL, 'N' },
        { "platform", required_argument, NULL, 'p' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    store_device_t   dev;
    store_err_t      err;
    ca_cert_info_t   info;
    ca_err_t         cerr;
    const char      *cert, *owner, *name, *platform;
    char             hex[2 * STORE_FP_LEN + 1], when[32];
    int              ch, rc;

    cert = NULL;
    owner = NULL;
    name = "";
    platform = "";

    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'C':
            cert = optarg;
            break;
        case 'o':
            owner = optarg;
            break;
        case 'N':
            name = optarg;
            break;
        case 'p':
            platform = optarg;
            break;
        default:
            return ztctl_other_opt(ctl, cmd, ch);
        }
    }

    if (optind != argc) {
        return ztctl_usage_error(ctl, cmd, "unexpected argument");
    }

    if (cert == NULL || owner == NULL) {
        return ztctl_usage_error(ctl, cmd, "--cert and --owner are "
                                 "required");
    }

    memset(&dev, 0, sizeof(dev));

    if (!ztctl_name_ok(owner, sizeof(dev.owner))) {
        return ztctl_usage_error(ctl, cmd, "--owner: a user name of "
                                 "letters, digits and . _ @ - (at most "
                                 "63)");
    }

    if (!ztctl_text_ok(name, sizeof(dev.name), 1)
        || !ztctl_text_ok(platform, sizeof(dev.platform), 1))
    {
        return ztctl_usage_error(ctl, cmd, "--name (at most 127 bytes) and "
                                 "--platform (at most 63) must be "
                                 "printable text");
    }

    if (ca_cert_info_file(cert, &info, &cerr) != 0) {
        fprintf(stderr, "ztctl: %s: %s\n", cert, cerr.msg);
        return ZTCTL_FAILED;
    }

    if (info.device_id[0] == '\0') {
        fprintf(stderr, "ztctl: %s: the certificate has no %s URI SAN; "
                "it is not a ztgate device certificate\n", cert,
                CA_DEVICE_URN);
        return ZTCTL_FAILED;
    }

    /* accept the id with or without its urn prefix */
    if (strncmp(info.device_id, CA_DEVICE_URN, sizeof(CA_DEVICE_URN) - 1)
        == 0)
    {
        rc = snprintf(dev.id, sizeof(dev.id), "%s", info.device_id);
    } else {
        rc = snprintf(dev.id, sizeof(dev.id), "%s%s", CA_DEVICE_URN,
                      info.device_id);
    }

    if (rc < 0 || (size_t) rc >= sizeof(dev.id)) {
        fprintf(stderr, "ztctl: %s: device id too long\n", cert);
        return ZTCTL_FAILED;
    }

    if (info.not_after != 0 && info.not_after < (int64_t) time(NULL)) {
        ztctl_time(info.not_after, when, sizeof(when));
        fprintf(stderr, "ztctl: %s: the certificate expired on %s\n", cert,
                when);
        return ZTCTL_FAILED;
    }

    memcpy(dev.fp, info.fp, STORE_FP_LEN);
    snprintf(dev.owner, sizeof(dev.owner), "%s", owner);
    snprintf(dev.name, sizeof(dev.name), "%s", name);
    snprintf(dev.platform, sizeof(dev.platform), "%s", platform);
    dev.expires_at = info.not_after;
    dev.status = STORE_DEVICE_ACTIVE;

    rc = ztctl_open(ctl, 1);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    if (store_device_enroll(ctl->store, &dev, ctl->actor, &err) != 0) {
        return ztctl_store_failed(&err);
    }

    store_fp_hex(dev.fp, hex);
    ztctl_time(dev.expires_at, when, sizeof(when));

    printf("enrolled %s\nfingerprint %s\nowner %s\nexpires %s\n", dev.id,
           hex, dev.owner, when);

    return ZTCTL_OK;
}


static int
ztctl_device_list_cb(const store_device_t *dev, void *arg)
{
    char     hex[2 * STORE_FP_LEN + 1], when[32];
    int64_t  now = *(int64_t *) arg;

    store_fp_hex(dev->fp, hex);
    hex[16] = '\0';
    ztctl_time(dev->expires_at, when, sizeof(when));

    printf("%-16s  %-54s  %-16s  %-20s  %-11s  %s%s\n", hex, dev->id,
           dev->owner, dev->name[0] != '\0' ? dev->name : "-",
           store_device_status_name(dev->status), when,
           dev->expires_at != 0 && dev->expires_at < now ? " (expired)"
                                                         : "");

    return 0;
}


static int
ztctl_device_list(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    static const struct option  longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    store_err_t  err;
    int64_t      now;
    int          ch, rc;

    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        return ztctl_other_opt(ctl, cmd, ch);
    }

    if (optind != argc) {
        return ztctl_usage_error(ctl, cmd, "unexpected argument");
    }

    rc = ztctl_open(ctl, 0);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    now = (int64_t) time(NULL);

    printf("%-16s  %-54s  %-16s  %-20s  %-11s  %s\n", "FINGERPRINT", "ID",
           "OWNER", "NAME", "STATUS", "EXPIRES");

    if (store_device_list(ctl->store, ztctl_device_list_cb, &now, &err)
        != 0)
    {
        return ztctl_store_failed(&err);
    }

    return ZTCTL_OK;
}


static int
ztctl_device_show(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    static const struct option  longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    store_device_t  dev;
    char            hex[2 * STORE_FP_LEN + 1], enrolled[32], expires[32];
    char            updated[32];
    int             ch, rc;

    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        return ztctl_other_opt(ctl, cmd, ch);
    }

    if (argc - optind != 1) {
        return ztctl_usage_error(ctl, cmd, "expected one FP or ID");
    }

    rc = ztctl_open_device(ctl, 0, argv[optind], &dev);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    store_fp_hex(dev.fp, hex);
    ztctl_time(dev.enrolled_at, enrolled, sizeof(enrolled));
    ztctl_time(dev.expires_at, expires, sizeof(expires));
    ztctl_time(dev.updated_at, updated, sizeof(updated));

    printf("fingerprint  %s\n"
           "id           %s\n"
           "owner        %s\n"
           "name         %s\n"
           "platform     %s\n"
           "status       %s\n"
           "enrolled     %s by %s\n"
           "expires      %s%s\n"
           "updated      %s\n",
           hex, dev.id, dev.owner, dev.name, dev.platform,
           store_device_status_name(dev.status), enrolled, dev.enrolled_by,
           expires,
           dev.expires_at != 0 && dev.expires_at < (int64_t) time(NULL)
           ? " (expired)" : "",
           updated);

    return ZTCTL_OK;
}


/* revoke, quarantine and activate */
static int
ztctl_device_status(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    static const struct option  longopts[] = {
        { "reason", required_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    store_device_status_t   status;
    store_device_t          dev;
    store_err_t             err;
    const char             *reason;
    int                     ch, rc;

    if (strcmp(cmd->name, "revoke") == 0) {
        status = STORE_DEVICE_REVOKED;
    } else if (strcmp(cmd->name, "quarantine") == 0) {
        status = STORE_DEVICE_QUARANTINED;
    } else {
        status = STORE_DEVICE_ACTIVE;
    }

    reason = NULL;

    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'r':
            reason = optarg;
            break;
        default:
            return ztctl_other_opt(ctl, cmd, ch);
        }
    }

    if (argc - optind != 1) {
        return ztctl_usage_error(ctl, cmd, "expected one FP or ID");
    }

    if (reason != NULL && !ztctl_text_ok(reason, 200, 1)) {
        return ztctl_usage_error(ctl, cmd, "--reason must be printable "
                                 "text of at most 199 bytes");
    }

    rc = ztctl_open_device(ctl, 1, argv[optind], &dev);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    rc = store_device_set_status(ctl->store, dev.fp, status, ctl->actor,
                                 reason, &err);
    if (rc == STORE_NOTFOUND) {
        fprintf(stderr, "ztctl: device %s disappeared\n", dev.id);
        return ZTCTL_NOTFOUND;
    }

    if (rc != 0) {
        return ztctl_store_failed(&err);
    }

    printf("%s: %s -> %s\n", dev.id, store_device_status_name(dev.status),
           store_device_status_name(status));

    return ZTCTL_OK;
}


static int
ztctl_audit_cb(const store_audit_t *rec, void *arg)
{
    char  when[32];

    (void) arg;

    ztctl_time(rec->time, when, sizeof(when));

    printf("%s  %-12s  %-18s  %s  %s\n", when, rec->actor, rec->action,
           rec->subject, rec->detail);

    return 0;
}


static int
ztctl_audit_tail(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    static const struct option  longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    store_err_t     err;
    uint64_t        last, from;
    unsigned long   n;
    char           *end;
    int             ch, rc;

    n = 20;

    while ((ch = getopt_long(argc, argv, "hn:", longopts, NULL))
           != -1)
    {
        switch (ch) {
        case 'n':
            errno = 0;
            n = strtoul(optarg, &end, 10);
            if (!isdigit((unsigned char) optarg[0]) || *end != '\0'
                || errno != 0 || n == 0 || n > 1000000)
            {
                return ztctl_usage_error(ctl, cmd, "-n: expected a number "
                                         "from 1 to 1000000");
            }
            break;
        default:
            return ztctl_other_opt(ctl, cmd, ch);
        }
    }

    if (optind != argc) {
        return ztctl_usage_error(ctl, cmd, "unexpected argument");
    }

    rc = ztctl_open(ctl, 0);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    if (store_audit_last_seq(ctl->store, &last, &err) != 0) {
        return ztctl_store_failed(&err);
    }

    from = last >= n ? last - n + 1 : 1;

    if (store_audit_list(ctl->store, from, n, ztctl_audit_cb, NULL, &err)
        != 0)
    {
        return ztctl_store_failed(&err);
    }

    return ZTCTL_OK;
}


int
main(int argc, char **argv)
{
    static const struct option  longopts[] = {
        { "actor", required_argument, NULL, 'a' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    ztctl_t               ctl;
    const ztctl_group_t  *g;
    const ztctl_cmd_t    *c;
    int                   ch, rc;

    memset(&ctl, 0, sizeof(ctl));
    ctl.config_path = CONFIG_DEFAULT_PATH;

    /* '+': stop at the command; its options are its own */
    while ((ch = getopt_long(argc, argv, "+c:s:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            ctl.config_path = optarg;
            ctl.config_given = 1;
            break;
        case 's':
            ctl.store_dir = optarg;
            break;
        case 'a':
            if (!ztctl_name_ok(optarg, sizeof(ctl.actor_buf))) {
                fprintf(stderr, "ztctl: --actor: a name of letters, digits "
                        "and . _ @ - (at most 63)\n");
                return ZTCTL_USAGE;
            }
            ctl.actor = optarg;
            break;
        case 'h':
            ztctl_usage(stdout);
            return ZTCTL_OK;
        default:
            ztctl_usage(stderr);
            return ZTCTL_USAGE;
        }
    }

    if (ctl.store_dir != NULL && ctl.config_given) {
        fprintf(stderr, "ztctl: -c and -s exclude each other\n");
        return ZTCTL_USAGE;
    }

    if (optind >= argc) {
        ztctl_usage(stderr);
        return ZTCTL_USAGE;
    }

    for (g = ztctl_groups; g->name != NULL; g++) {
        if (strcmp(g->name, argv[optind]) == 0) {
            break;
        }
    }

    if (g->name == NULL) {
        fprintf(stderr, "ztctl: unknown command \"%s\"\n", argv[optind]);
        ztctl_usage(stderr);
        return ZTCTL_USAGE;
    }

    ctl.group = g->name;
    optind++;

    if (optind >= argc) {
        ztctl_group_usage(g, stderr);
        return ZTCTL_USAGE;
    }

    if (strcmp(argv[optind], "--help") == 0
        || strcmp(argv[optind], "-h") == 0)
    {
        ztctl_group_usage(g, stdout);
        return ZTCTL_OK;
    }

    for (c = g->cmds; c->name != NULL; c++) {
        if (strcmp(c->name, argv[optind]) == 0) {
            break;
        }
    }

    if (c->name == NULL) {
        fprintf(stderr, "ztctl: unknown command \"%s %s\"\n", g->name,
                argv[optind]);
        ztctl_group_usage(g, stderr);
        return ZTCTL_USAGE;
    }

    if (ctl.actor == NULL) {
        ztctl_default_actor(&ctl);
    }

    /* the command parses its own options from its name on */
    argc -= optind;
    argv += optind;
    optind = 0;
    opterr = 1;

    rc = c->handler(&ctl, c, argc, argv);

    store_close(ctl.store);

    if (fflush(stdout) != 0 && rc == ZTCTL_OK) {
        fprintf(stderr, "ztctl: write error: %s\n", strerror(errno));
        rc = ZTCTL_FAILED;
    }

    return rc;
}


/*
 * Send one command to the running trustd's admin socket (admin_listen in
 * the configuration) and print its reply.  Returns ZTCTL_OK when the
 * reply starts with "ok".
 */
static int
ztctl_trustd(ztctl_t *ctl, const char *command)
{
    struct sockaddr_un   sun;
    config_t             cfg;
    config_err_t         cerr;
    char                 buf[8192];
    size_t               len;
    ssize_t              n;
    int                  fd, rc;

    if (ctl->store_dir != NULL) {
        fprintf(stderr, "ztctl: %s %s talks to trustd: give its "
                "configuration with -c, not a store with -s\n", ctl->group,
                command);
        return ZTCTL_USAGE;
    }

    if (config_load(ctl->config_path, &cfg, &cerr) != 0) {
        fprintf(stderr, "ztctl: %s\n", cerr.msg);
        return ZTCTL_FAILED;
    }

    if (cfg.admin_listen[0] == '\0') {
        fprintf(stderr, "ztctl: %s has no admin_listen: trustd offers no "
                "admin socket (send it SIGHUP to reload instead)\n",
                ctl->config_path);
        return ZTCTL_FAILED;
    }

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, cfg.admin_listen, strlen(cfg.admin_listen) + 1);

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        fprintf(stderr, "ztctl: socket: %s\n", strerror(errno));
        return ZTCTL_FAILED;
    }

    if (connect(fd, (struct sockaddr *) &sun, sizeof(sun)) == -1) {
        fprintf(stderr, "ztctl: trustd is not reachable at %s: %s\n",
                cfg.admin_listen, strerror(errno));
        close(fd);
        return ZTCTL_FAILED;
    }

    len = strlen(command);
    if (write(fd, command, len) != (ssize_t) len
        || write(fd, "\n", 1) != 1)
    {
        fprintf(stderr, "ztctl: write to trustd: %s\n", strerror(errno));
        close(fd);
        return ZTCTL_FAILED;
    }

    len = 0;
    while (len < sizeof(buf) - 1) {
        n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        len += (size_t) n;
    }

    close(fd);
    buf[len] = '\0';

    if (len == 0) {
        fprintf(stderr, "ztctl: trustd closed the connection without a "
                "reply (is this user allowed by admin_user?)\n");
        return ZTCTL_FAILED;
    }

    rc = strncmp(buf, "ok", 2) == 0 ? ZTCTL_OK : ZTCTL_FAILED;
    fputs(buf, rc == ZTCTL_OK ? stdout : stderr);

    return rc;
}


static int
ztctl_policy_reload(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    if (argc > 1) {
        return ztctl_usage_error(ctl, cmd, "unexpected arguments");
    }

    (void) argv;

    return ztctl_trustd(ctl, "reload");
}


static int
ztctl_policy_status(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    if (argc > 1) {
        return ztctl_usage_error(ctl, cmd, "unexpected arguments");
    }

    (void) argv;

    return ztctl_trustd(ctl, "status");
}
