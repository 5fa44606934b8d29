/*
 * trustd: the ztgate trust-inference daemon (policy decision point).
 *
 * Start-up order matters: the configuration is read and checked while
 * errors can still reach the terminal; the daemon forks before it opens
 * the store (an LMDB environment must never cross a fork), and the parent
 * exits only once the child reports that it is serving, so a failed
 * start is a non-zero exit status, not a silent death.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "identity.h"
#include "log.h"
#include "policy/policy.h"
#include "server.h"
#include "store.h"


static int trustd_check(const char *path, const config_t *cfg);
static void trustd_usage(void) __attribute__((noreturn));
static int trustd_daemonize(int *status_fd);
static int trustd_write_pid(const char *path);
static void trustd_detach_stdio(int keep_stderr);


static void
trustd_usage(void)
{
    fprintf(stderr, "usage: trustd [-f] [-n] [-v] [-c file]\n");
    exit(1);
}


/*
 * Fork; the parent waits for one byte on a pipe from the child (sent
 * when it serves) and exits 0, or exits 1 if the pipe closes without it.
 * Returns 0 in the child with *status_fd the pipe's write end.
 */
static int
trustd_daemonize(int *status_fd)
{
    int      fds[2];
    pid_t    pid;
    char     c;
    ssize_t  n;

    if (pipe2(fds, O_CLOEXEC) == -1) {
        log_error("pipe: %s", strerror(errno));
        return -1;
    }

    pid = fork();
    if (pid == -1) {
        log_error("fork: %s", strerror(errno));
        return -1;
    }

    if (pid > 0) {
        close(fds[1]);

        do {
            n = read(fds[0], &c, 1);
        } while (n == -1 && errno == EINTR);

        _exit(n == 1 && c == 'Y' ? 0 : 1);
    }

    close(fds[0]);

    if (setsid() == -1) {
        log_error("setsid: %s", strerror(errno));
        return -1;
    }

    if (chdir("/") == -1) {
        log_error("chdir /: %s", strerror(errno));
        return -1;
    }

    *status_fd = fds[1];

    return 0;
}


static void
trustd_detach_stdio(int keep_stderr)
{
    int  fd;

    fd = open("/dev/null", O_RDWR);
    if (fd == -1) {
        return;
    }

    (void) dup2(fd, STDIN_FILENO);
    (void) dup2(fd, STDOUT_FILENO);
    if (!keep_stderr) {
        (void) dup2(fd, STDERR_FILENO);
    }

    if (fd > STDERR_FILENO) {
        close(fd);
    }
}


static int
trustd_write_pid(const char *path)
{
    char  buf[32];
    int   fd, n;

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
              0644);
    if (fd == -1) {
        log_error("pid_file %s: %s", path, strerror(errno));
        return -1;
    }

    n = snprintf(buf, sizeof(buf), "%ld\n", (long) getpid());

    if (write(fd, buf, (size_t) n) != n) {
        log_error("pid_file %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }

    close(fd);

    return 0;
}



/*
 * trustd -n: everything start-up would load, without starting - the
 * configuration (already parsed), the policy and the identity keys.
 * Prints each problem as file:line:col or file: message; exit 0 or 1.
 */
static int
trustd_check(const char *path, const config_t *cfg)
{
    pol_diags_t  *diags;
    pol_t        *pol;
    id_keys_t    *keys;
    id_err_t      ierr;
    char          line[600];
    unsigned      i;
    int           rc;

    rc = 0;
    pol = NULL;
    keys = NULL;

    if (cfg->policy[0] != '\0') {
        diags = calloc(1, sizeof(*diags));
        if (diags == NULL) {
            fprintf(stderr, "trustd: out of memory\n");
            return 1;
        }

        if (pol_load(cfg->policy, &pol, diags) != 0) {
            rc = 1;
        }

        for (i = 0; i < diags->ndiags; i++) {
            pol_diag_format(&diags->diags[i], line, sizeof(line));
            fprintf(stderr, "%s\n", line);
        }

        pol_free(pol);
        free(diags);
    }

    if (cfg->identity_keys[0] != '\0') {
        if (id_keys_load(cfg->identity_keys, (id_alg_t) cfg->token_alg,
                         (int64_t) (cfg->key_grace_ms / 1000), 0, &keys,
                         &ierr)
            != 0)
        {
            /* missing keys are created at start; anything else is wrong */
            if (access(cfg->identity_keys, F_OK) == 0) {
                fprintf(stderr, "trustd: identity keys: %s\n", ierr.msg);
                rc = 1;
            }
        }

        id_keys_free(keys);
    }

    if (rc == 0) {
        printf("configuration OK (%s)\n", path);
    }

    return rc;
}

int
main(int argc, char **argv)
{
    config_t        cfg;
    config_err_t    cerr;
    server_err_t    serr;
    store_err_t     sterr;
    server_opts_t   opts;
    server_t       *srv;
    store_t        *st;
    sigset_t        mask;
    const char     *path;
    int             ch, foreground, check, verbose, to_syslog, level;
    int             status_fd, rc, pid_written;
    char            ok, abspath[PATH_MAX];

    path = CONFIG_DEFAULT_PATH;
    foreground = 0;
    check = 0;
    verbose = 0;

    while ((ch = getopt(argc, argv, "c:fnv")) != -1) {
        switch (ch) {
        case 'c':
            path = optarg;
            break;
        case 'f':
            foreground = 1;
            break;
        case 'n':
            check = 1;
            break;
        case 'v':
            verbose = 1;
            break;
        default:
            trustd_usage();
        }
    }

    if (optind != argc) {
        trustd_usage();
    }

    if (config_load(path, &cfg, &cerr) != 0) {
        fprintf(stderr, "trustd: %s\n", cerr.msg);
        return 1;
    }

    if (check) {
        return trustd_check(path, &cfg);
    }

    /* SIGHUP re-reads it after chdir("/") */
    if (realpath(path, abspath) == NULL) {
        fprintf(stderr, "trustd: %s: %s\n", path, strerror(errno));
        return 1;
    }

    path = abspath;

    level = verbose ? LOG_LEVEL_DEBUG : cfg.log_level;
    to_syslog = cfg.log_target == CONFIG_LOG_TARGET_SYSLOG
                || (cfg.log_target == CONFIG_LOG_TARGET_DEFAULT
                    && !foreground);

    log_init("trustd", to_syslog, level);
    log_set_format(cfg.log_format);

    /* these arrive through the server's signalfd */
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);

    if (sigprocmask(SIG_BLOCK, &mask, NULL) == -1) {
        fatal("sigprocmask: %s", strerror(errno));
    }

    signal(SIGPIPE, SIG_IGN);

    /*
     * A full file system or a file size limit makes the store's write
     * fail with EFBIG/ENOSPC, which trustd reports and survives (the
     * journal fails closed); the signal would kill it instead.
     */
    signal(SIGXFSZ, SIG_IGN);

    status_fd = -1;

    if (!foreground) {
        if (to_syslog) {
            log_set_startup_stderr(1);
        }

        if (trustd_daemonize(&status_fd) != 0) {
            return 1;
        }
    }

    srv = NULL;
    st = NULL;
    pid_written = 0;
    rc = 1;

    opts.config_path = path;
    opts.verbose = verbose;

    if (server_init(&srv, &cfg, &opts, &serr) != 0) {
        log_error("%s", serr.msg);
        goto done;
    }

    if (cfg.pid_file[0] != '\0') {
        if (trustd_write_pid(cfg.pid_file) != 0) {
            goto done;
        }

        pid_written = 1;
    }

    /* only now, in the process that serves: never across a fork */
    if (store_open(&st, cfg.store, cfg.store_map_size, 0, &sterr) != 0) {
        log_error("%s", sterr.msg);
        goto done;
    }

    log_info("store %s open (map size %zu MiB)", cfg.store,
             store_map_size(st) / (1024 * 1024));

    if (server_attach_store(srv, st, &serr) != 0) {
        log_error("%s", serr.msg);
        goto done;
    }

    if (status_fd != -1) {
        ok = 'Y';
        if (write(status_fd, &ok, 1) != 1) {
            log_error("cannot report start-up to the parent: %s",
                      strerror(errno));
        }

        close(status_fd);
        status_fd = -1;

        log_set_startup_stderr(0);
        trustd_detach_stdio(cfg.log_target == CONFIG_LOG_TARGET_STDERR);
    }

    rc = server_run(srv, st) == 0 ? 0 : 1;

done:

    server_free(srv);
    store_close(st);

    if (pid_written) {
        unlink(cfg.pid_file);
    }

    if (rc == 0) {
        log_info("stopped");
    }

    return rc;
}
