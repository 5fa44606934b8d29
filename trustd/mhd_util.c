/*
 * libmicrohttpd helpers shared by the portal, the metrics endpoint and
 * ztconsole.  See mhd_util.h.
 */

#include <errno.h>
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
