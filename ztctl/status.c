/*
 * ztctl status: the store and the running trustd at a glance, for an
 * operator or a monitoring check.  The store part only reads the store
 * (counts walk the devices, users and sessions in short read
 * transactions; the journal's chain is not verified, which takes a walk
 * of every record: "ztctl audit verify" does that).  The trustd part asks
 * the admin socket, when the configuration has one, for "status", "stats"
 * and "journal".
 *
 * Both are gathered into one JSON object, which --json prints and the
 * text form is written from, so that the two cannot differ.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ztctl.h"


#define ZTCTL_STATUS_TIMEOUT    5       /* seconds for each admin command */


typedef struct {
    int64_t     now;
    json_int_t  devices, active, quarantined, revoked;
    json_int_t  users, disabled, locked;
    json_int_t  sessions, live;
} ztctl_status_count_t;


static int ztctl_status(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv);
static int ztctl_status_store(ztctl_t *ctl, json_t *root);
static int ztctl_status_size(const char *dir, json_int_t *bytes);
static int ztctl_status_device_cb(const store_device_t *dev, void *arg);
static int ztctl_status_user_cb(const store_user_t *u, void *arg);
static int ztctl_status_session_cb(const store_session_t *s, void *arg);
static int ztctl_status_trustd(ztctl_t *ctl, json_t *root);
static void ztctl_status_text(json_t *root);
static void ztctl_status_pairs(const char *title, json_t *obj);
static json_int_t ztctl_status_int(const json_t *obj, const char *key);


const ztctl_cmd_t  ztctl_status_cmds[] = {
    { "status", ztctl_status, ztctl_opts_json, "[--json]",
      "The store and the running trustd at a glance: the store's\n"
      "directory, its size on disk and map size, devices by status,\n"
      "users, active sessions and the journal's last record; then, when\n"
      "trustd.conf (-c) has admin_listen, the running trustd's pid,\n"
      "policy version and connections, its decision statistics and its\n"
      "journal writer.  Exit 1 if trustd has an admin socket that does\n"
      "not answer (\"trustd: not reachable\"), or the store cannot be\n"
      "read; the rest is printed all the same.  --json prints one object\n"
      "(keys in ztctl(8))." },
    { NULL, NULL, NULL, NULL, NULL }
};


static int
ztctl_status(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc, char **argv)
{
    json_t  *root;
    int      json, rc, trc;

    if (ztctl_simple_opts(ctl, cmd, argc, argv, &json, &rc)) {
        return rc;
    }

    if (optind != argc) {
        return ztctl_usage_error(ctl, cmd, "unexpected argument");
    }

    root = json_object();
    if (root == NULL) {
        return ztctl_json_print(NULL);
    }

    rc = ztctl_status_store(ctl, root);
    trc = ztctl_status_trustd(ctl, root);

    if (rc == -1 || trc == -1) {
        json_decref(root);
        return ztctl_json_print(NULL);
    }

    if (json) {
        if (ztctl_json_print(root) != ZTCTL_OK) {
            return ZTCTL_FAILED;
        }

    } else {
        ztctl_status_text(root);
        json_decref(root);
    }

    return rc == ZTCTL_OK && trc == ZTCTL_OK ? ZTCTL_OK : ZTCTL_FAILED;
}


/*
 * The store's members of root: "store", and unless it cannot be read,
 * "devices", "users", "sessions" and "journal".  Returns ZTCTL_OK,
 * ZTCTL_FAILED (the store cannot be read: "store" says why) or -1 when
 * out of memory.
 */
static int
ztctl_status_store(ztctl_t *ctl, json_t *root)
{
    ztctl_status_count_t   n;
    store_err_t            err;
    json_int_t             bytes, map;
    uint64_t               last;
    json_t                *obj;
    char                   msg[CONFIG_PATH_MAX + 256];

    if (ztctl_open_quiet(ctl, 0, msg, sizeof(msg)) != ZTCTL_OK) {
        obj = json_pack("{s:o, s:o}",
                        "path", ctl->store_path[0] != '\0'
                                ? ztctl_json_text(ctl->store_path)
                                : json_null(),
                        "error", ztctl_json_text(msg));
        return obj == NULL || json_object_set_new(root, "store", obj) != 0
               ? -1 : ZTCTL_FAILED;
    }

    memset(&n, 0, sizeof(n));
    n.now = (int64_t) time(NULL);

    if (store_device_list(ctl->store, ztctl_status_device_cb, &n, &err) != 0
        || store_user_list(ctl->store, ztctl_status_user_cb, &n, &err) != 0
        || store_session_list(ctl->store, NULL, ztctl_status_session_cb, &n,
                              &err) != 0
        || store_audit_last_seq(ctl->store, &last, &err) != 0)
    {
        obj = json_pack("{s:o, s:o}",
                        "path", ztctl_json_text(ctl->store_path),
                        "error", ztctl_json_text(err.msg));
        return obj == NULL || json_object_set_new(root, "store", obj) != 0
               ? -1 : ZTCTL_FAILED;
    }

    map = (json_int_t) store_map_size(ctl->store);

    if (ztctl_status_size(ctl->store_path, &bytes) != 0) {
        bytes = -1;
    }

    obj = json_pack("{s:o, s:o, s:I, s:o}",
                    "path", ztctl_json_text(ctl->store_path),
                    "size_bytes", bytes >= 0 ? json_integer(bytes)
                                             : json_null(),
                    "map_size_bytes", map,
                    "map_used_percent",
                    bytes >= 0 && map > 0
                    ? json_integer(bytes * 100 / map) : json_null());

    if (obj == NULL || json_object_set_new(root, "store", obj) != 0) {
        return -1;
    }

    obj = json_pack("{s:{s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I},"
                    " s:{s:I, s:I}, s:{s:I}}",
                    "devices", "total", n.devices, "active", n.active,
                    "quarantined", n.quarantined, "revoked", n.revoked,
                    "users", "total", n.users, "disabled", n.disabled,
                    "locked", n.locked,
                    "sessions", "active", n.live, "total", n.sessions,
                    "journal", "last_seq", (json_int_t) last);

    if (obj == NULL || json_object_update(root, obj) != 0) {
        json_decref(obj);
        return -1;
    }

    json_decref(obj);

    return ZTCTL_OK;
}


/*
 * What the store's files take: the sum of the sizes of the regular files
 * in its directory (the data file and the lock file).  0 or -1.
 */
static int
ztctl_status_size(const char *dir, json_int_t *bytes)
{
    struct dirent  *de;
    struct stat     sb;
    DIR            *d;

    d = opendir(dir);
    if (d == NULL) {
        return -1;
    }

    *bytes = 0;

    while ((de = readdir(d)) != NULL) {
        if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0
            && S_ISREG(sb.st_mode))
        {
            *bytes += (json_int_t) sb.st_size;
        }
    }

    closedir(d);

    return 0;
}


static int
ztctl_status_device_cb(const store_device_t *dev, void *arg)
{
    ztctl_status_count_t  *n = arg;

    n->devices++;

    switch (dev->status) {
    case STORE_DEVICE_ACTIVE:      n->active++; break;
    case STORE_DEVICE_QUARANTINED: n->quarantined++; break;
    case STORE_DEVICE_REVOKED:     n->revoked++; break;
    default:                       break;
    }

    return 0;
}


static int
ztctl_status_user_cb(const store_user_t *u, void *arg)
{
    ztctl_status_count_t  *n = arg;

    n->users++;

    if (u->disabled) {
        n->disabled++;
    } else if (u->locked_until > n->now) {
        n->locked++;
    }

    return 0;
}


/* A session counts as active while not revoked and not expired. */
static int
ztctl_status_session_cb(const store_session_t *s, void *arg)
{
    ztctl_status_count_t  *n = arg;

    n->sessions++;

    if (!s->revoked && s->expires_at > n->now) {
        n->live++;
    }

    return 0;
}


/*
 * The member "trustd" of root: what the running trustd says on its admin
 * socket.  Returns ZTCTL_OK (asked, or there is no admin socket to ask),
 * ZTCTL_FAILED (the configuration cannot be read, or trustd does not
 * answer) or -1 when out of memory.
 */
static int
ztctl_status_trustd(ztctl_t *ctl, json_t *root)
{
    static const char  *asks[] = { "status", "stats", "journal", "cluster" };

    json_t   *obj, *part[4];
    size_t    i;
    char      path[CONFIG_LISTEN_MAX], reply[ZTCTL_REPLY_MAX];
    char      msg[CONFIG_PATH_MAX + 256];
    int       rc;

    rc = ztctl_admin_socket(ctl, path, sizeof(path), msg, sizeof(msg));

    if (rc != ZTCTL_OK) {
        obj = json_pack("{s:b, s:b, s:n, s:o}",
                        "configured", 0, "reachable", 0,
                        "socket", "error", ztctl_json_text(msg));
        if (obj == NULL || json_object_set_new(root, "trustd", obj) != 0) {
            return -1;
        }

        /* no admin socket to ask is not a failure of this command */
        return rc == ZTCTL_NOTFOUND ? ZTCTL_OK : ZTCTL_FAILED;
    }

    for (i = 0; i < 4; i++) {
        part[i] = NULL;
    }

    rc = ZTCTL_OK;

    for (i = 0; i < 4 && rc == ZTCTL_OK; i++) {
        if (ztctl_admin_ask(path, asks[i], ZTCTL_STATUS_TIMEOUT, reply,
                            sizeof(reply), msg, sizeof(msg))
            != ZTCTL_OK)
        {
            rc = ZTCTL_FAILED;
            break;
        }

        part[i] = ztctl_admin_json(reply, asks[i]);
        if (part[i] == NULL) {
            reply[strcspn(reply, "\n")] = '\0';
            snprintf(msg, sizeof(msg), "\"%s\" was answered with \"%.200s\"",
                     asks[i], reply);
            rc = ZTCTL_FAILED;
        }
    }

    if (rc != ZTCTL_OK) {
        for (i = 0; i < 4; i++) {
            json_decref(part[i]);
        }

        obj = json_pack("{s:b, s:b, s:o, s:o}",
                        "configured", 1, "reachable", 0,
                        "socket", ztctl_json_text(path),
                        "error", ztctl_json_text(msg));
        if (obj == NULL || json_object_set_new(root, "trustd", obj) != 0) {
            return -1;
        }

        return ZTCTL_FAILED;
    }

    /* "status" gives pid, policy and connections; then the other two */
    obj = json_pack("{s:b, s:b, s:o}", "configured", 1, "reachable", 1,
                    "socket", ztctl_json_text(path));

    if (obj == NULL
        || json_object_update(obj, part[0]) != 0
        || json_object_set(obj, "stats", part[1]) != 0
        || json_object_set(obj, "journal", part[2]) != 0
        || json_object_set(obj, "cluster", part[3]) != 0
        || json_object_set(root, "trustd", obj) != 0)
    {
        rc = -1;
    }

    json_decref(obj);

    for (i = 0; i < 4; i++) {
        json_decref(part[i]);
    }

    return rc;
}


static void
ztctl_status_text(json_t *root)
{
    json_t      *store, *trustd, *size, *dev, *users, *sess;
    const char  *path, *err, *policy;
    double       mib;

    store = json_object_get(root, "store");
    path = json_string_value(json_object_get(store, "path"));
    err = json_string_value(json_object_get(store, "error"));

    printf("store: %s\n", path != NULL ? path : "(unknown)");

    if (err != NULL) {
        printf("store: cannot be read (%s)\n", err);

    } else {
        size = json_object_get(store, "size_bytes");
        mib = (double) ztctl_status_int(store, "map_size_bytes")
              / (1024.0 * 1024.0);

        if (json_is_integer(size)) {
            printf("store size: %.1f MiB on disk, a %.1f MiB map (%lld%% "
                   "used)\n",
                   (double) json_integer_value(size) / (1024.0 * 1024.0),
                   mib,
                   (long long) ztctl_status_int(store, "map_used_percent"));
        } else {
            printf("store size: unknown on disk, a %.1f MiB map\n", mib);
        }

        dev = json_object_get(root, "devices");
        users = json_object_get(root, "users");
        sess = json_object_get(root, "sessions");

        printf("devices: %lld (%lld active, %lld quarantined, %lld "
               "revoked)\n"
               "users: %lld (%lld disabled, %lld locked)\n"
               "sessions: %lld active (%lld kept)\n"
               "journal: last record %lld\n",
               (long long) ztctl_status_int(dev, "total"),
               (long long) ztctl_status_int(dev, "active"),
               (long long) ztctl_status_int(dev, "quarantined"),
               (long long) ztctl_status_int(dev, "revoked"),
               (long long) ztctl_status_int(users, "total"),
               (long long) ztctl_status_int(users, "disabled"),
               (long long) ztctl_status_int(users, "locked"),
               (long long) ztctl_status_int(sess, "active"),
               (long long) ztctl_status_int(sess, "total"),
               (long long) ztctl_status_int(json_object_get(root,
                                                            "journal"),
                                            "last_seq"));
    }

    trustd = json_object_get(root, "trustd");
    err = json_string_value(json_object_get(trustd, "error"));

    if (!json_is_true(json_object_get(trustd, "configured"))) {
        printf("trustd: not asked (%s)\n", err != NULL ? err : "");
        return;
    }

    if (!json_is_true(json_object_get(trustd, "reachable"))) {
        printf("trustd: not reachable (%s)\n", err != NULL ? err : "");
        return;
    }

    policy = json_string_value(json_object_get(trustd, "policy"));

    printf("trustd: running, pid %lld, policy %s, %lld connections (admin "
           "socket %s)\n",
           (long long) ztctl_status_int(trustd, "pid"),
           policy != NULL ? policy : "?",
           (long long) ztctl_status_int(trustd, "connections"),
           json_string_value(json_object_get(trustd, "socket")));

    ztctl_status_pairs("trustd stats", json_object_get(trustd, "stats"));
    ztctl_status_pairs("trustd journal", json_object_get(trustd, "journal"));
    ztctl_status_pairs("trustd cluster", json_object_get(trustd, "cluster"));
}


/* "title: key value, key value ..." in the object's order. */
static void
ztctl_status_pairs(const char *title, json_t *obj)
{
    const char  *key, *sep;
    json_t      *v;

    printf("%s:", title);
    sep = " ";

    json_object_foreach(obj, key, v) {
        if (json_is_integer(v)) {
            printf("%s%s %lld", sep, key, (long long) json_integer_value(v));
        } else if (json_is_real(v)) {
            printf("%s%s %.2f", sep, key, json_real_value(v));
        } else if (json_is_string(v)) {
            printf("%s%s %s", sep, key, json_string_value(v));
        }
        sep = ", ";
    }

    printf("\n");
}


/* The integer member key of obj, 0 when it is missing. */
static json_int_t
ztctl_status_int(const json_t *obj, const char *key)
{
    return json_integer_value(json_object_get(obj, key));
}
