/*
 * ztctl's client of trustd's admin socket (admin_listen in trustd.conf):
 * one command line per connection, one reply ("ok ..." or "error ...")
 * read until trustd closes it.  trustd admits root, its own user and the
 * admin_user users (SO_PEERCRED) and closes the connection without a
 * reply on anybody else.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "ztctl.h"


#define ZTCTL_ADMIN_TIMEOUT     60      /* seconds: a reload may be slow */


static int ztctl_admin_number(const char *s, json_t **value);


int
ztctl_admin_socket(const ztctl_t *ctl, char *path, size_t size, char *msg,
    size_t msg_size)
{
    config_t      *cfg;
    config_err_t   cerr;
    int            rc;

    path[0] = '\0';

    if (ctl->store_dir != NULL) {
        snprintf(msg, msg_size, "-s names a store, not trustd's "
                 "configuration: give it with -c");
        return ZTCTL_NOTFOUND;
    }

    /* config_t is large: not on the stack */
    cfg = malloc(sizeof(*cfg));
    if (cfg == NULL) {
        snprintf(msg, msg_size, "out of memory");
        return ZTCTL_FAILED;
    }

    if (config_load(ctl->config_path, cfg, &cerr) != 0) {
        snprintf(msg, msg_size, "%s", cerr.msg);
        rc = ZTCTL_FAILED;

    } else if (cfg->admin_listen[0] == '\0') {
        snprintf(msg, msg_size, "%s has no admin_listen: trustd offers no "
                 "admin socket", ctl->config_path);
        rc = ZTCTL_NOTFOUND;

    } else if (strlen(cfg->admin_listen) >= size) {
        snprintf(msg, msg_size, "admin_listen is too long");
        rc = ZTCTL_FAILED;

    } else {
        snprintf(path, size, "%s", cfg->admin_listen);
        rc = ZTCTL_OK;
    }

    free(cfg);

    return rc;
}


int
ztctl_admin_ask(const char *path, const char *command, int timeout,
    char *reply, size_t size, char *msg, size_t msg_size)
{
    struct sockaddr_un   sun;
    struct timeval       tv;
    size_t               len, plen;
    ssize_t              n;
    int                  fd, rc;

    plen = strlen(path);
    if (plen >= sizeof(sun.sun_path) || size == 0) {
        snprintf(msg, msg_size, "%s: path too long", path);
        return ZTCTL_FAILED;
    }

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, path, plen + 1);

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        snprintf(msg, msg_size, "socket: %s", strerror(errno));
        return ZTCTL_FAILED;
    }

    rc = ZTCTL_FAILED;

    /* a stopped or wedged trustd must not hang ztctl */
    tv.tv_sec = timeout;
    tv.tv_usec = 0;

    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1
        || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1)
    {
        snprintf(msg, msg_size, "setsockopt: %s", strerror(errno));
        goto done;
    }

    if (connect(fd, (struct sockaddr *) &sun, sizeof(sun)) == -1) {
        snprintf(msg, msg_size, "cannot connect to %s: %s", path,
                 strerror(errno));
        goto done;
    }

    len = strlen(command);
    if (send(fd, command, len, MSG_NOSIGNAL) != (ssize_t) len
        || send(fd, "\n", 1, MSG_NOSIGNAL) != 1)
    {
        snprintf(msg, msg_size, "cannot send to %s: %s", path,
                 strerror(errno));
        goto done;
    }

    len = 0;
    while (len < size - 1) {
        n = read(fd, reply + len, size - 1 - len);
        if (n == -1 && errno == EINTR) {
            continue;
        }

        if (n == -1) {
            snprintf(msg, msg_size, "%s: %s", path,
                     errno == EAGAIN || errno == EWOULDBLOCK
                     ? "no reply in time" : strerror(errno));
            goto done;
        }

        if (n == 0) {
            break;
        }

        len += (size_t) n;
    }

    reply[len] = '\0';

    if (len == 0) {
        snprintf(msg, msg_size, "trustd at %s closed the connection "
                 "without a reply (is this user root, trustd's user or an "
                 "admin_user?)", path);
        goto done;
    }

    rc = ZTCTL_OK;

done:

    close(fd);

    return rc;
}


int
ztctl_trustd(ztctl_t *ctl, const char *command, char *reply)
{
    char   path[CONFIG_LISTEN_MAX], msg[CONFIG_PATH_MAX + 256];
    char   buf[ZTCTL_REPLY_MAX];
    int    rc;

    rc = ztctl_admin_socket(ctl, path, sizeof(path), msg, sizeof(msg));

    if (rc == ZTCTL_NOTFOUND && ctl->store_dir != NULL) {
        fprintf(stderr, "ztctl: %s asks the running trustd: give its "
                "configuration with -c, not a store with -s\n",
                ctl->group);
        return ZTCTL_USAGE;
    }

    if (rc != ZTCTL_OK) {
        fprintf(stderr, "ztctl: %s\n", msg);
        return ZTCTL_FAILED;
    }

    if (ztctl_admin_ask(path, command, ZTCTL_ADMIN_TIMEOUT, buf, sizeof(buf),
                        msg, sizeof(msg))
        != ZTCTL_OK)
    {
        fprintf(stderr, "ztctl: trustd is not reachable: %s\n", msg);
        return ZTCTL_FAILED;
    }

    if (strncmp(buf, "ok", 2) != 0) {
        fputs(buf, stderr);
        return ZTCTL_FAILED;
    }

    if (reply != NULL) {
        memcpy(reply, buf, strlen(buf) + 1);
    } else {
        fputs(buf, stdout);
    }

    return ZTCTL_OK;
}


json_t *
ztctl_admin_json(const char *reply, const char *label)
{
    json_t       *obj, *value;
    const char   *p, *key, *val;
    size_t        klen, vlen;
    char          name[64], text[ZTCTL_REPLY_MAX];

    if (strncmp(reply, "ok ", 3) != 0) {
        return NULL;
    }

    p = reply + 3;

    if (label != NULL && strncmp(p, label, strlen(label)) == 0
        && p[strlen(label)] == ' ')
    {
        p += strlen(label) + 1;
    }

    obj = json_object();
    if (obj == NULL) {
        return NULL;
    }

    for ( ;; ) {
        p += strspn(p, " ");
        if (*p == '\0' || *p == '\n') {
            break;
        }

        key = p;
        klen = strcspn(p, " \n");
        p += klen;
        p += strspn(p, " ");

        /* "error" takes the rest of the line */
        val = p;
        if (klen == 5 && strncmp(key, "error", 5) == 0) {
            vlen = strcspn(p, "\n");
        } else {
            vlen = strcspn(p, " \n");
        }
        p += vlen;

        if (klen == 0 || klen >= sizeof(name) || vlen == 0) {
            goto failed;
        }

        memcpy(name, key, klen);
        name[klen] = '\0';
        memcpy(text, val, vlen);
        text[vlen] = '\0';

        value = NULL;

        /* a policy version may be all digits: it stays a string */
        if (strcmp(name, "policy") == 0 || strcmp(name, "error") == 0
            || ztctl_admin_number(text, &value) != 0)
        {
            value = ztctl_json_text(text);
        }

        if (json_object_set_new(obj, name, value) != 0) {
            goto failed;
        }
    }

    return obj;

failed:

    json_decref(obj);

    return NULL;
}


/* s as a JSON integer or real when it is a number; 0 or -1. */
static int
ztctl_admin_number(const char *s, json_t **value)
{
    long long   i;
    double      d;
    char       *end;

    if (s[0] == '\0' || strspn(s, "-0123456789.") != strlen(s)) {
        return -1;
    }

    errno = 0;
    i = strtoll(s, &end, 10);
    if (*end == '\0' && errno == 0) {
        *value = json_integer((json_int_t) i);
        return 0;
    }

    errno = 0;
    d = strtod(s, &end);
    if (*end == '\0' && errno == 0) {
        *value = json_real(d);
        return 0;
    }

    return -1;
}
