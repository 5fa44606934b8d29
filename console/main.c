/*
 * ztconsole: the staff enrollment console (docs/console.md).
 *
 *     ztconsole [-n] [-c FILE]
 *
 * It runs in the foreground (systemd, or the test harness, supervises
 * it), as trustd's user: it opens trustd's store and identity keys as
 * ztctl does, through trustd's own configuration (trustd_config).  -n
 * checks both configuration files and exits.
 *
 * Signals: SIGTERM and SIGINT stop it; SIGHUP reloads the identity keys
 * (the assertion key it verifies with, the secret key it seals TOTP
 * secrets with).  The configuration files are read at start only.
 */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "console.h"
#include "trustd/log.h"


#define CONSOLE_PASSPHRASE_MAX  1024


static void console_usage(void);
static char *console_read_passphrase(const char *path);
static id_keys_t *console_keys(const config_t *tcfg);


static void
console_usage(void)
{
    fprintf(stderr, "usage: ztconsole [-n] [-c FILE]\n"
            "  -c FILE  configuration file (default %s)\n"
            "  -n       check the configuration and exit\n",
            CONSOLE_CONF_DEFAULT);
}


/* The CA key's passphrase: the first line of path (the caller's). */
static char *
console_read_passphrase(const char *path)
{
    FILE    *f;
    char     buf[CONSOLE_PASSPHRASE_MAX + 2], *p;
    size_t   len;

    f = fopen(path, "re");
    if (f == NULL) {
        log_error("%s: %s", path, strerror(errno));
        return NULL;
    }

    if (fgets(buf, sizeof(buf), f) == NULL) {
        log_error("%s: empty", path);
        fclose(f);
        return NULL;
    }

    fclose(f);

    len = strlen(buf);
    if (len > 0 && buf[len - 1] == '\n') {
        buf[--len] = '\0';
    }

    p = (len > 0) ? strdup(buf) : NULL;
    OPENSSL_cleanse(buf, sizeof(buf));

    if (p == NULL) {
        log_error("%s: no passphrase on its first line", path);
    }

    return p;
}


static id_keys_t *
console_keys(const config_t *tcfg)
{
    id_keys_t  *keys;
    id_err_t    ie;

    /* never create keys: they are trustd's */
    if (id_keys_load(tcfg->identity_keys, (id_alg_t) tcfg->token_alg,
                     (int64_t) (tcfg->key_grace_ms / 1000), 0, &keys, &ie)
        != 0)
    {
        log_error("identity keys: %s", ie.msg);
        return NULL;
    }

    return keys;
}


int
main(int argc, char **argv)
{
    console_conf_t   *cf;
    config_t         *tcfg;
    config_err_t      terr;
    console_t        *c;
    store_t          *st;
    cluster_t        *cl;
    cluster_conf_t    cc;
    store_err_t       se;
    id_keys_t        *keys;
    sigset_t          set;
    const char       *path;
    char             *ca_pass;
    char              err[1024];
    int               ch, check, sig, rc;

    path = CONSOLE_CONF_DEFAULT;
    check = 0;

    while ((ch = getopt(argc, argv, "c:nh")) != -1) {
        switch (ch) {
        case 'c':
            path = optarg;
            break;
        case 'n':
            check = 1;
            break;
        case 'h':
            console_usage();
            return 0;
        default:
            console_usage();
            return 2;
        }
    }

    if (optind != argc) {
        console_usage();
        return 2;
    }

    cf = calloc(1, sizeof(*cf));
    tcfg = calloc(1, sizeof(*tcfg));
    rc = 1;

    if (cf == NULL || tcfg == NULL) {
        fprintf(stderr, "ztconsole: out of memory\n");
        goto done;
    }

    if (console_conf_load(path, cf, err, sizeof(err)) != 0) {
        fprintf(stderr, "ztconsole: %s\n", err);
        goto done;
    }

    if (config_load(cf->trustd_config, tcfg, &terr) != 0) {
        fprintf(stderr, "ztconsole: %s\n", terr.msg);
        goto done;
    }

    if (tcfg->identity_keys[0] == '\0') {
        fprintf(stderr, "ztconsole: %s has no identity_keys: the console "
                "needs the identity stage (assertions, TOTP)\n",
                cf->trustd_config);
        goto done;
    }

    if (check) {
        printf("ztconsole: %s and %s are valid\n", path, cf->trustd_config);
        rc = 0;
        goto done;
    }

    log_init("ztconsole", cf->log_target == CONFIG_LOG_TARGET_SYSLOG,
             cf->log_level);

    /* the MHD thread inherits a full mask; this one waits for these */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (store_open(&st, tcfg->store, tcfg->store_map_size, 0, &se) != 0) {
        fatal("store %s: %s", tcfg->store, se.msg);
    }

    /* cluster mode: every change through the cluster database */
    cl = NULL;
    if (tcfg->cluster) {
        cluster_conf_init(&cc, tcfg, "ztconsole");
        cc.may_start_offline = 1;

        if (cluster_attach(&cl, &cc, st, err, sizeof(err)) != 0) {
            fatal("cluster: %s", err);
        }
    }

    keys = console_keys(tcfg);
    if (keys == NULL) {
        fatal("cannot start without trustd's identity keys");
    }

    ca_pass = NULL;

    if (cf->ca_passphrase_file[0] != '\0') {
        ca_pass = console_read_passphrase(cf->ca_passphrase_file);
        if (ca_pass == NULL) {
            fatal("cannot read the CA passphrase");
        }
    }

    if (console_start(&c, cf, tcfg->totp_window, st, keys, ca_pass, err,
                      sizeof(err))
        != 0)
    {
        fatal("%s", err);
    }

    c->cluster = cl;

    log_info("ztconsole: serving %s on %s (origin %s, group %s%s%s)",
             cf->base_path, cf->listen, cf->origins[0], cf->staff_group,
             cf->require_device ? ", own device" : "",
             cf->ca_dir[0] != '\0' ? ", device CA" : "");

    for ( ;; ) {
        if (sigwait(&set, &sig) != 0) {
            continue;
        }

        if (sig == SIGHUP) {
            keys = console_keys(tcfg);
            if (keys == NULL) {
                log_warn("ztconsole: keeping the old keys");
                continue;
            }

            console_set_keys(c, keys);
            log_info("ztconsole: identity keys reloaded");
            continue;
        }

        log_info("ztconsole: %s: stopping", sig == SIGTERM ? "SIGTERM"
                                                           : "SIGINT");
        break;
    }

    console_stop(c);
    rc = 0;

done:

    free(tcfg);
    free(cf);

    return rc;
}
