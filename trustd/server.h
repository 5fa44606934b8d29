/*
 * trustd server: the single-threaded epoll loop that owns the listening
 * Unix socket, the decision connections from the nginx module, the
 * signal handling (signalfd) and the periodic store maintenance
 * (timerfd).
 *
 * The caller blocks SIGTERM, SIGINT and SIGHUP (they are read from a
 * signalfd) and ignores SIGPIPE before server_init().
 */

#ifndef ZT_SERVER_H
#define ZT_SERVER_H

#include "config.h"
#include "store.h"

#define SERVER_OUT_CAP          (1024 * 1024)   /* back-pressure mark */
#define SERVER_MAINTAIN_SEC     30

typedef struct server_s  server_t;

typedef struct {
    char    msg[512];
} server_err_t;

typedef struct {
    const char  *config_path;   /* re-read on SIGHUP; kept by pointer */
    int          verbose;       /* -v: log level stays debug on reload */
} server_opts_t;

/*
 * Create the server: the listening socket (a stale socket file is
 * removed only if nothing answers on it; a live listener is an error),
 * the epoll set, the signalfd and the maintenance timer.  *cfg is copied.
 * On success *srv is owned by the caller (server_free()).
 */
int server_init(server_t **srv, const config_t *cfg,
    const server_opts_t *opts, server_err_t *err);

/*
 * Give the server its store (owned by the caller; it must outlive the
 * server) and start the sign-in portal if one is configured, so that a
 * portal that cannot start is a start-up error.  Call from the main
 * thread, after server_init() and before server_run().
 */
int server_attach_store(server_t *srv, store_t *st, server_err_t *err);

/*
 * Serve decisions from st until SIGTERM or SIGINT, then stop accepting,
 * answer the requests already received, flush answers for up to
 * shutdown_timeout and close every connection.  SIGHUP re-reads the
 * configuration.  Returns 0 after a clean stop, -1 if the loop itself
 * failed (logged).  st stays owned by the caller and must outlive the
 * call.
 */
int server_run(server_t *srv, store_t *st);

/*
 * Close everything the server owns, unlinking its socket file if it is
 * still the one it created.  srv may be NULL.
 */
void server_free(server_t *srv);

#endif /* ZT_SERVER_H */
