/*
 * ztctl store backup/restore and keys rotate-secret: the operator's
 * maintenance of the store and of the key that seals TOTP secrets
 * (docs/operations.md, "Backup and restore" and "Key rotation").
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "trustd/config.h"
#include "trustd/identity.h"
#include "trustd/journal_fmt.h"
#include "trustd/store.h"
#include "ztctl.h"


static int maint_store_backup(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int maint_store_restore(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int maint_check_copy(const char *dir, store_journal_check_t *chk);
static int maint_copy_file(const char *from, const char *to);
static int maint_reseal_cb(const char *user, const uint8_t *sealed,
    size_t len, uint8_t *out, size_t size, size_t *outlen, char *msg,
    size_t msglen, void *arg);


const ztctl_cmd_t  ztctl_store_cmds[] = {
    { "backup", maint_store_backup, ztctl_opts_help, "DIR",
      "Copy the store, consistently, while trustd runs: one snapshot,\n"
      "compacted, into DIR/data.mdb (DIR is created; an existing\n"
      "data.mdb is never overwritten).  The copy is then opened and its\n"
      "audit journal verified; its head is printed.  Needs read access\n"
      "to the store." },
    { "restore", maint_store_restore, ztctl_opts_help, "DIR",
      "Put the backup DIR/data.mdb in place of the store.  Refused while\n"
      "trustd runs (stop it first) and when the backup does not open or\n"
      "its journal does not verify.  The store's current data.mdb is\n"
      "kept beside it as data.mdb.before-restore-TIME.  Needs write\n"
      "access to the store directory." },
    { NULL, NULL, NULL, NULL, NULL }
};


/* ---- backup --------------------------------------------------------- */

static int
maint_store_backup(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    store_journal_check_t   chk;
    store_err_t             err;
    struct stat             sb;
    const char             *dir;
    char                    file[4096], hex[2 * STORE_HASH_LEN + 1];
    int                     rc;

    if (ztctl_simple_opts(ctl, cmd, argc, argv, NULL, &rc)) {
        return rc;
    }

    if (argc - optind != 1) {
        return ztctl_usage_error(ctl, cmd, "expected the backup directory");
    }

    dir = argv[optind];

    if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
        fprintf(stderr, "ztctl: cannot create %s: %s\n", dir,
                strerror(errno));
        return ZTCTL_FAILED;
    }

    rc = ztctl_open(ctl, 0);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    if (store_backup(ctl->store, dir, &err) != 0) {
        return ztctl_store_failed(&err);
    }

    snprintf(file, sizeof(file), "%s/data.mdb", dir);
    if (stat(file, &sb) != 0) {
        fprintf(stderr, "ztctl: %s: %s\n", file, strerror(errno));
        return ZTCTL_FAILED;
    }

    rc = maint_check_copy(dir, &chk);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    journal_hex(chk.head, STORE_HASH_LEN, hex);
    printf("backup of %s in %s (%.1f MiB)\n", ctl->store_path, file,
           (double) sb.st_size / (1024.0 * 1024.0));
    printf("journal intact: records %llu to %llu\nhead %llu:%s\n",
           (unsigned long long) chk.first, (unsigned long long) chk.last,
           (unsigned long long) chk.last, hex);

    return ZTCTL_OK;
}


/* Open a copy read-only and verify its journal.  A ZTCTL_* status. */
static int
maint_check_copy(const char *dir, store_journal_check_t *chk)
{
    store_t      *st;
    store_err_t   err;
    int           rc;

    if (store_open(&st, dir, 0, STORE_RDONLY, &err) != 0) {
        fprintf(stderr, "ztctl: the copy in %s does not open: %s\n", dir,
                err.msg);
        return ZTCTL_FAILED;
    }

    rc = store_journal_verify(st, chk, &err);
    store_close(st);

    if (rc < 0) {
        fprintf(stderr, "ztctl: the copy in %s: %s\n", dir, err.msg);
        return ZTCTL_FAILED;
    }

    if (rc == 1) {
        fprintf(stderr, "ztctl: the copy in %s has a broken journal at "
                "record %llu: %s\n", dir, (unsigned long long) chk->bad_seq,
                chk->problem);
        return ZTCTL_FAILED;
    }

    return ZTCTL_OK;
}


/* ---- restore -------------------------------------------------------- */

static int
maint_store_restore(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    store_journal_check_t   chk;
    const char             *src;
    char                    store_dir[CONFIG_PATH_MAX], why[512];
    char                    from[4096], cur[CONFIG_PATH_MAX + 64];
    char                    tmp[CONFIG_PATH_MAX + 64];
    char                    keep[CONFIG_PATH_MAX + 64];
    char                    lock[CONFIG_PATH_MAX + 64];
    struct stat             sb;
    time_t                  now;
    int                     rc, fd;

    if (ztctl_simple_opts(ctl, cmd, argc, argv, NULL, &rc)) {
        return rc;
    }

    if (argc - optind != 1) {
        return ztctl_usage_error(ctl, cmd, "expected the backup directory");
    }

    src = argv[optind];

    /* where the store is, then let go of it */
    rc = ztctl_open(ctl, 0);
    if (rc != ZTCTL_OK) {
        return rc;
    }
    snprintf(store_dir, sizeof(store_dir), "%s", ctl->store_path);
    ztctl_close_store(ctl);

    if (ztctl_trustd_running(ctl, store_dir, why, sizeof(why))) {
        fprintf(stderr, "ztctl: trustd is running (%s); stop it before "
                "restoring\n", why);
        return ZTCTL_FAILED;
    }

    rc = maint_check_copy(src, &chk);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    now = time(NULL);
    if (snprintf(from, sizeof(from), "%s/data.mdb", src)
        >= (int) sizeof(from))
    {
        return ztctl_usage_error(ctl, cmd, "backup path too long");
    }
    snprintf(cur, sizeof(cur), "%s/data.mdb", store_dir);
    snprintf(tmp, sizeof(tmp), "%s/.data.mdb.restore", store_dir);
    snprintf(lock, sizeof(lock), "%s/lock.mdb", store_dir);
    snprintf(keep, sizeof(keep), "%s/data.mdb.before-restore-%lld",
             store_dir, (long long) now);

    if (maint_copy_file(from, tmp) != 0) {
        unlink(tmp);
        return ZTCTL_FAILED;
    }

    /* the current store stays, under another name: nothing is lost */
    if (stat(cur, &sb) == 0 && link(cur, keep) != 0) {
        fprintf(stderr, "ztctl: cannot keep %s as %s: %s\n", cur, keep,
                strerror(errno));
        unlink(tmp);
        return ZTCTL_FAILED;
    }

    if (rename(tmp, cur) != 0) {
        fprintf(stderr, "ztctl: cannot put %s in place: %s\n", cur,
                strerror(errno));
        unlink(tmp);
        return ZTCTL_FAILED;
    }

    /* the reader table belongs to the old file; LMDB makes a new one */
    (void) unlink(lock);

    fd = open(store_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd != -1) {
        (void) fsync(fd);
        close(fd);
    }

    printf("restored %s from %s (journal records %llu to %llu)\n", cur, from,
           (unsigned long long) chk.first, (unsigned long long) chk.last);
    printf("the previous store is kept as %s\n", keep);

    return ZTCTL_OK;
}


/*
 * Whether trustd (or anything else) is using the store: its admin socket
 * answers, or its pid file names a live process.  1 with why, or 0.
 */
int
ztctl_trustd_running(ztctl_t *ctl, const char *store_dir, char *why,
    size_t size)
{
    config_t        cfg;
    config_err_t    cerr;
    char            path[CONFIG_PATH_MAX], reply[ZTCTL_REPLY_MAX], msg[256];
    FILE           *f;
    long            pid;

    (void) store_dir;

    if (ztctl_admin_socket(ctl, path, sizeof(path), msg, sizeof(msg))
        == ZTCTL_OK
        && ztctl_admin_ask(path, "status", 2, reply, sizeof(reply), msg,
                           sizeof(msg)) == ZTCTL_OK)
    {
        snprintf(why, size, "its admin socket %.400s answers", path);
        return 1;
    }

    if (ctl->store_dir != NULL
        || config_load(ctl->config_path, &cfg, &cerr) != 0
        || cfg.pid_file[0] == '\0')
    {
        return 0;
    }

    f = fopen(cfg.pid_file, "r");
    if (f == NULL) {
        return 0;
    }

    if (fscanf(f, "%ld", &pid) == 1 && pid > 0
        && (kill((pid_t) pid, 0) == 0 || errno == EPERM))
    {
        fclose(f);
        snprintf(why, size, "pid %ld from %.400s", pid, cfg.pid_file);
        return 1;
    }

    fclose(f);

    return 0;
}


/* Copy from to a new file to (0600), synced.  0 or -1 (reported). */
static int
maint_copy_file(const char *from, const char *to)
{
    char     buf[65536];
    ssize_t  n, w, off;
    int      in, out;

    in = open(from, O_RDONLY | O_CLOEXEC);
    if (in == -1) {
        fprintf(stderr, "ztctl: %s: %s\n", from, strerror(errno));
        return -1;
    }

    out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out == -1) {
        fprintf(stderr, "ztctl: cannot create %s: %s\n", to,
                strerror(errno));
        close(in);
        return -1;
    }

    while ((n = read(in, buf, sizeof(buf))) > 0) {
        for (off = 0; off < n; off += w) {
            w = write(out, buf + off, (size_t) (n - off));
            if (w <= 0) {
                fprintf(stderr, "ztctl: cannot write %s: %s\n", to,
                        strerror(errno));
                close(in);
                close(out);
                return -1;
            }
        }
    }

    if (n < 0 || fsync(out) != 0 || close(out) != 0) {
        fprintf(stderr, "ztctl: cannot copy %s to %s: %s\n", from, to,
                strerror(errno));
        close(in);
        return -1;
    }

    close(in);

    return 0;
}


/* ---- keys rotate-secret --------------------------------------------- */

int
ztctl_keys_rotate_secret(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    config_t       cfg;
    id_keys_t     *keys;
    id_err_t       ierr;
    store_err_t    err;
    unsigned       n;
    char           path[CONFIG_PATH_MAX], reply[ZTCTL_REPLY_MAX], msg[256];
    int            rc, resumed;

    if (ztctl_simple_opts(ctl, cmd, argc, argv, NULL, &rc)) {
        return rc;
    }

    if (optind != argc) {
        return ztctl_usage_error(ctl, cmd, "unexpected argument");
    }

    rc = ztctl_identity_conf(ctl, "keys rotate-secret", &cfg);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    if (id_keys_load(cfg.identity_keys, (id_alg_t) cfg.token_alg,
                     cfg.key_grace_ms / 1000, 0, &keys, &ierr) != 0)
    {
        fprintf(stderr, "ztctl: %s\n", ierr.msg);
        return ZTCTL_FAILED;
    }

    /* step 1, unless an earlier run stopped after it */
    resumed = id_keys_has_prev_secret(keys);

    if (!resumed) {
        id_keys_free(keys);
        keys = NULL;

        if (id_keys_rotate_secret(cfg.identity_keys, &ierr) != 0
            || id_keys_load(cfg.identity_keys, (id_alg_t) cfg.token_alg,
                            cfg.key_grace_ms / 1000, 0, &keys, &ierr) != 0)
        {
            fprintf(stderr, "ztctl: %s\n", ierr.msg);
            return ZTCTL_FAILED;
        }
    }

    /* a running trustd must know both keys before anything is re-sealed */
    if (ztctl_admin_socket(ctl, path, sizeof(path), msg, sizeof(msg))
        == ZTCTL_OK)
    {
        rc = ztctl_admin_ask(path, "reload", 10, reply, sizeof(reply), msg,
                             sizeof(msg));
        if (rc == ZTCTL_OK && strncmp(reply, "ok", 2) != 0) {
            fprintf(stderr, "ztctl: trustd did not reload: %s", reply);
            fprintf(stderr, "ztctl: nothing re-sealed; run this again once "
                    "trustd reloads\n");
            id_keys_free(keys);
            return ZTCTL_FAILED;
        }
        if (rc != ZTCTL_OK) {
            printf("trustd is not running (%s); it loads the keys when it "
                   "starts\n", msg);
        }
    }

    /* step 2: every sealed secret, in one transaction */
    rc = ztctl_open(ctl, 1);
    if (rc != ZTCTL_OK) {
        id_keys_free(keys);
        return rc;
    }

    if (store_user_reseal(ctl->store, maint_reseal_cb, keys, ctl->actor, &n,
                          &err) != 0)
    {
        fprintf(stderr, "ztctl: %s\nztctl: secret.key.prev is kept; "
                "nothing was re-sealed; run this again to finish\n",
                err.msg);
        id_keys_free(keys);
        return ZTCTL_FAILED;
    }

    id_keys_free(keys);

    /* step 3 */
    if (id_keys_drop_prev_secret(cfg.identity_keys, &ierr) != 0) {
        fprintf(stderr, "ztctl: %s\n", ierr.msg);
        return ZTCTL_FAILED;
    }

    printf("%s the secret key in %s: %u TOTP secrets re-sealed, the old "
           "key removed\n", resumed ? "finished rotating" : "rotated",
           cfg.identity_keys, n);

    return ZTCTL_OK;
}


static int
maint_reseal_cb(const char *user, const uint8_t *sealed, size_t len,
    uint8_t *out, size_t size, size_t *outlen, char *msg, size_t msglen,
    void *arg)
{
    id_err_t  ierr;

    if (id_reseal(arg, sealed, len, user, out, size, outlen, &ierr) != 0) {
        snprintf(msg, msglen, "%s", ierr.msg);
        return -1;
    }

    return 0;
}
