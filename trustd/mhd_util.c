/*
 * libmicrohttpd helpers shared by the portal, the metrics endpoint and
 * ztconsole.  See mhd_util.h.
 */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "mhd_util.h"


void
zt_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char    buf[512];
    size_t  n;

    vsnprintf(buf, sizeof(buf), fmt, ap);

    n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        buf[--n] = '\0';
    }

    log_warn("%s: libmicrohttpd: %s", cls != NULL ? (const char *) cls
                                                  : "http", buf);
}


int
zt_mhd_peer(struct MHD_Connection *c, const char *who, struct ucred *uc)
{
    const union MHD_ConnectionInfo  *ci;
    socklen_t                        len;

    ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci == NULL) {
        log_warn("%s: cannot get the connection's socket", who);
        return -1;
    }

    len = sizeof(*uc);
    if (getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, uc, &len) == -1)
    {
        log_warn("%s: SO_PEERCRED: %s", who, strerror(errno));
        return -1;
    }

    return 0;
}


struct MHD_Daemon *
zt_mhd_start(int fd, const zt_mhd_conf_t *conf)
{
    struct MHD_OptionItem   opts[8];
    struct MHD_Daemon      *d;
    sigset_t                all, old;
    size_t                  n;

    n = 0;
    opts[n++] = (struct MHD_OptionItem) {
        MHD_OPTION_EXTERNAL_LOGGER, (intptr_t) zt_mhd_log,
        (void *) (uintptr_t) conf->name };
    opts[n++] = (struct MHD_OptionItem) {
        MHD_OPTION_LISTEN_SOCKET, (intptr_t) fd, NULL };
    opts[n++] = (struct MHD_OptionItem) {
        MHD_OPTION_CONNECTION_LIMIT, (intptr_t) conf->conn_limit, NULL };
    opts[n++] = (struct MHD_OptionItem) {
        MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t) conf->conn_timeout, NULL };

    if (conf->threads > 0) {
        opts[n++] = (struct MHD_OptionItem) {
            MHD_OPTION_THREAD_POOL_SIZE, (intptr_t) conf->threads, NULL };
    }

    if (conf->conn_memory > 0) {
        opts[n++] = (struct MHD_OptionItem) {
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t) conf->conn_memory,
            NULL };
    }

    if (conf->completed != NULL) {
        opts[n++] = (struct MHD_OptionItem) {
            MHD_OPTION_NOTIFY_COMPLETED, (intptr_t) conf->completed,
            conf->cls };
    }

    opts[n] = (struct MHD_OptionItem) { MHD_OPTION_END, 0, NULL };

    /* the threads inherit this mask */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);

    d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG,
        0, NULL, NULL, conf->access, conf->cls,
        MHD_OPTION_ARRAY, opts, MHD_OPTION_END);

    pthread_sigmask(SIG_SETMASK, &old, NULL);

    return d;
}
