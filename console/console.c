/*
 * ztconsole's server: libmicrohttpd on a Unix socket, the checks every
 * request passes, routing and responses.  See console.h.
 *
 * Order of the checks, each one refusing with 403:
 *   1. the peer is nginx (SO_PEERCRED against peer_user): a local process
 *      cannot talk to the console directly;
 *   2. the staff member is who the X-ZT-Assertion JWT says, verified with
 *      trustd's assertion key (ES256 pinned, iss, aud = Host, exp); no
 *      other header is believed (X-ZT-User and friends are ignored);
 *   3. again, from the store: the session is live and bound to the
 *      member's own active device, its second factor is recent enough,
 *      and the member is still in the staff group and not disabled (the
 *      policy in front checks the same: defence in depth);
 *   4. for a POST, the browser's Origin is the console's, and the form's
 *      CSRF token is the HMAC of the session id and the member's name.
 *
 * One libmicrohttpd thread serves every request, and it holds c->lock
 * for the time of one: the store handle and the CA library (which
 * changes the umask) are not for concurrent use, and SIGHUP swaps the
 * keys only between requests.
 */

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "console.h"
#include "trustd/log.h"
#include "trustd/mhd_util.h"
#include "trustd/sock.h"


#define CONSOLE_CONN_LIMIT      64
#define CONSOLE_CONN_TIMEOUT    30          /* seconds */
#define CONSOLE_CONN_MEMORY     (128 * 1024)
#define CONSOLE_PAGE_SIZE       (512 * 1024)
#define CONSOLE_PP_BUFFER       16384
#define CONSOLE_DRAIN_MAX       (1024 * 1024)   /* read and dropped */
#define CONSOLE_LANG_COOKIE     "__Host-zt_console_lang"

#define CONSOLE_CSP  "default-src 'none'; style-src 'unsafe-inline'; "     \
                     "form-action 'self'; frame-ancestors 'none'; "        \
                     "base-uri 'none'"

/* Counting one header over all its occurrences. */
typedef struct {
    const char     *name;
    const char     *value;
    unsigned        count;
} console_header_t;


static void console_seterr(char *err, size_t errsize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum MHD_Result console_access(void *cls, struct MHD_Connection *conn,
    const char *url, const char *method, const char *version,
    const char *upload_data, size_t *upload_data_size, void **con_cls);
static void console_completed(void *cls, struct MHD_Connection *conn,
    void **con_cls, enum MHD_RequestTerminationCode toe);
static int console_peer_ok(console_t *c, struct MHD_Connection *conn);
static enum MHD_Result console_refuse(struct MHD_Connection *conn,
    unsigned status);
static console_req_t *console_req_new(console_t *c,
    struct MHD_Connection *conn, const char *url, const char *method);
static enum MHD_Result console_header_iter(void *cls,
    enum MHD_ValueKind kind, const char *key, size_t key_size,
    const char *value, size_t value_size);
static const char *console_header_once(struct MHD_Connection *conn,
    const char *name, unsigned *count);
static int console_auth(console_req_t *rq, char *why, size_t whysize);
static int console_auth_store(console_req_t *rq, char *why,
    size_t whysize);
static int console_csrf_token(console_t *c, const id_assertion_t *who,
    char *out);
static int console_post_ok(console_req_t *rq, char *why, size_t whysize);
static enum MHD_Result console_post_iter(void *cls,
    enum MHD_ValueKind kind, const char *key, const char *filename,
    const char *content_type, const char *transfer_encoding,
    const char *data, uint64_t off, size_t size);
static int console_dispatch(console_req_t *rq, const char *method);
static enum MHD_Result console_send(console_req_t *rq);
static void console_headers(struct MHD_Response *resp, portal_lang_t lang);
static enum MHD_Result console_run(console_req_t *rq, const char *method);


static void
console_seterr(char *err, size_t errsize, const char *fmt, ...)
{
    va_list  ap;

    if (err == NULL || errsize == 0) {
        return;
    }

    va_start(ap, fmt);
    vsnprintf(err, errsize, fmt, ap);
    va_end(ap);
}



int
console_start(console_t **out, const console_conf_t *cf,
    unsigned totp_window, store_t *st, id_keys_t *keys, char *ca_pass,
    char *err, size_t errsize)
{
    console_t  *c;
    int         fd;

    *out = NULL;

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        console_seterr(err, errsize, "out of memory");
        return -1;
    }

    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        console_seterr(err, errsize, "pthread_mutex_init failed");
        return -1;
    }

    c->conf = *cf;
    c->totp_window = totp_window;

    /* a key of this process: a restart makes open forms ask again */
    if (getrandom(c->csrf_key, sizeof(c->csrf_key), 0)
        != (ssize_t) sizeof(c->csrf_key))
    {
        console_seterr(err, errsize, "getrandom: %s", strerror(errno));
        goto failed;
    }

    if (sock_listen(c->conf.listen, c->conf.listen_mode, &fd, &c->sock_dev,
                    &c->sock_ino, err, errsize)
        != 0)
    {
        goto failed;
    }

    /* one thread: requests run one at a time (console.h) */
    c->daemon = zt_mhd_start(fd, &(zt_mhd_conf_t) {
        .name = "console", .access = console_access, .cls = c,
        .completed = console_completed, .conn_limit = CONSOLE_CONN_LIMIT,
        .conn_timeout = CONSOLE_CONN_TIMEOUT,
        .conn_memory = CONSOLE_CONN_MEMORY });

    if (c->daemon == NULL) {
        console_seterr(err, errsize, "cannot start libmicrohttpd on %s",
                       c->conf.listen);
        close(fd);
        sock_unlink(c->conf.listen, c->sock_dev, c->sock_ino);
        goto failed;
    }

    /* from here on the console owns them */
    c->st = st;
    c->keys = keys;
    c->ca_pass = ca_pass;

    *out = c;

    return 0;

failed:

    OPENSSL_cleanse(c->csrf_key, sizeof(c->csrf_key));
    pthread_mutex_destroy(&c->lock);
    free(c);

    return -1;
}


void
console_set_keys(console_t *c, id_keys_t *keys)
{
    id_keys_t  *old;

    pthread_mutex_lock(&c->lock);
    old = c->keys;
    c->keys = keys;
    pthread_mutex_unlock(&c->lock);

    id_keys_free(old);
}


void
console_stop(console_t *c)
{
    if (c == NULL) {
        return;
    }

    if (c->daemon != NULL) {
        MHD_stop_daemon(c->daemon);
    }

    sock_unlink(c->conf.listen, c->sock_dev, c->sock_ino);

    cluster_free(c->cluster);
    store_close(c->st);
    id_keys_free(c->keys);

    if (c->ca_pass != NULL) {
        OPENSSL_cleanse(c->ca_pass, strlen(c->ca_pass));
        free(c->ca_pass);
    }

    pthread_mutex_destroy(&c->lock);
    OPENSSL_cleanse(c, sizeof(*c));
    free(c);
}


/* ---- requests ------------------------------------------------------- */


static int
console_peer_ok(console_t *c, struct MHD_Connection *conn)
{
    struct ucred  uc;
    size_t  i;

    if (zt_mhd_peer(conn, "console", &uc) != 0) {
        return 0;
    }

    for (i = 0; i < c->conf.npeers; i++) {
        if (c->conf.peer_uids[i] == uc.uid) {
            return 1;
        }
    }

    log_warn("console: refused a connection from uid %u pid %d (not a "
             "peer_user)", (unsigned) uc.uid, (int) uc.pid);

    return 0;
}


/*
 * A plain answer before anything else is known (a peer that is not nginx,
 * an absurd body); the connection closes.
 */
static enum MHD_Result
console_refuse(struct MHD_Connection *conn, unsigned status)
{
    static char           body[] = "refused\n";     /* never written */
    struct MHD_Response  *resp;
    enum MHD_Result       ret;

    resp = MHD_create_response_from_buffer(sizeof(body) - 1, body,
                                           MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        return MHD_NO;
    }

    MHD_add_response_header(resp, "Content-Type", "text/plain");
    MHD_add_response_header(resp, "Connection", "close");

    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);

    return ret;
}


static console_req_t *
console_req_new(console_t *c, struct MHD_Connection *conn, const char *url,
    const char *method)
{
    console_req_t  *rq;
    const char     *v;
    char            lang[16];
    size_t          blen;
    int             rc;

    rq = calloc(1, sizeof(*rq));
    if (rq == NULL) {
        return NULL;
    }

    rq->c = c;
    rq->conn = conn;
    rq->now = (int64_t) time(NULL);
    rq->post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;

    /* the language switch's cookie, else the browser's preference */
    rc = PORTAL_MISSING;
    v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Cookie");
    if (v != NULL) {
        rc = portal_cookie_get(v, CONSOLE_LANG_COOKIE, lang, sizeof(lang),
                               NULL);
    }

    if (rc == PORTAL_FOUND && strcmp(lang, "zh-TW") == 0) {
        rq->lang = PORTAL_LANG_ZH_TW;

    } else if (rc == PORTAL_FOUND && strcmp(lang, "en") == 0) {
        rq->lang = PORTAL_LANG_EN;

    } else {
        rq->lang = portal_lang_pick(MHD_lookup_connection_value(conn,
                                        MHD_HEADER_KIND, "Accept-Language"));
    }

    blen = strlen(c->conf.base_path);

    if (strncmp(url, c->conf.base_path, blen) == 0
        && (url[blen] == '/' || url[blen] == '\0'))
    {
        rq->path = url + blen;
    } else {
        rq->path = NULL;
    }

    return rq;
}


static enum MHD_Result
console_header_iter(void *cls, enum MHD_ValueKind kind, const char *key,
    size_t key_size, const char *value, size_t value_size)
{
    console_header_t  *h = cls;

    (void) kind;
    (void) key_size;

    if (key == NULL || strcasecmp(key, h->name) != 0) {
        return MHD_YES;
    }

    h->count++;

    /* a NUL inside a value: treat it as a second, conflicting value */
    if (value == NULL || strlen(value) != value_size) {
        h->count++;
        return MHD_YES;
    }

    if (h->count == 1) {
        h->value = value;
    }

    return MHD_YES;
}


/* The value of a header sent exactly once, else NULL (*count says). */
static const char *
console_header_once(struct MHD_Connection *conn, const char *name,
    unsigned *count)
{
    console_header_t  h;

    memset(&h, 0, sizeof(h));
    h.name = name;

    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, console_header_iter,
                                &h);

    if (count != NULL) {
        *count = h.count;
    }

    return (h.count == 1) ? h.value : NULL;
}


/*
 * Who the staff member is, from the assertion alone, then the store.
 * 0 with rq->who and rq->csrf set, 1 refused (the reason in why, for the
 * log only), -1 on an internal failure.
 */
static int
console_auth(console_req_t *rq, char *why, size_t whysize)
{
    console_t    *c = rq->c;
    id_err_t      ie;
    const char   *host, *token;
    unsigned      n;
    size_t        i;
    int           rc, found;

    host = console_header_once(rq->conn, "Host", NULL);
    token = console_header_once(rq->conn, "X-ZT-Assertion", &n);

    found = 0;
    for (i = 0; host != NULL && i < c->conf.norigins; i++) {
        if (strcasecmp(host, c->conf.hosts[i]) == 0) {
            found = 1;
            break;
        }
    }

    if (!found) {
        console_seterr(why, whysize, "Host is not one of the console's "
                       "origins");
        return 1;
    }

    if (token == NULL) {
        console_seterr(why, whysize, n == 0 ? "no X-ZT-Assertion"
                                            : "X-ZT-Assertion sent %u times",
                       n);
        return 1;
    }

    rc = id_assertion_verify(c->keys, token, strlen(token), host, rq->now,
                             CONSOLE_LEEWAY, &rq->who, &ie);

    if (rc == -1) {
        console_seterr(why, whysize, "assertion check failed: %s", ie.msg);
        return -1;
    }

    if (rc != ID_ASSERTION_OK) {
        console_seterr(why, whysize, "assertion refused: %s", ie.msg);
        return 1;
    }

    found = 0;
    for (i = 0; i < rq->who.ngroups; i++) {
        if (strcmp(rq->who.groups[i], c->conf.staff_group) == 0) {
            found = 1;
            break;
        }
    }

    if (!found) {
        console_seterr(why, whysize, "%s is not in the group %s",
                       rq->who.sub, c->conf.staff_group);
        return 1;
    }

    found = 0;
    for (i = 0; i < rq->who.namr; i++) {
        if (strcmp(rq->who.amr[i], "otp") == 0) {
            found = 1;
            break;
        }
    }

    if (!found) {
        console_seterr(why, whysize, "the session of %s has no second "
                       "factor", rq->who.sub);
        return 1;
    }

    if (c->conf.require_device && rq->who.device[0] == '\0') {
        console_seterr(why, whysize, "the session of %s is not bound to a "
                       "device", rq->who.sub);
        return 1;
    }

    rc = console_auth_store(rq, why, whysize);
    if (rc != 0) {
        return rc;
    }

    if (console_csrf_token(c, &rq->who, rq->csrf) != 0) {
        console_seterr(why, whysize, "cannot compute the CSRF token");
        return -1;
    }

    return 0;
}


/* What the store says about the session, its device and the member. */
static int
console_auth_store(console_req_t *rq, char *why, size_t whysize)
{
    console_t        *c = rq->c;
    store_session_t   s;
    store_device_t    dev;
    store_user_t     *u;
    store_view_t     *view;
    store_err_t       se;
    unsigned          i;
    int               rc, found;

    rc = store_session_find(c->st, rq->who.sid, &s, &se);

    if (rc == -1) {
        console_seterr(why, whysize, "session lookup: %s", se.msg);
        return -1;
    }

    if (rc == STORE_NOTFOUND || strcmp(s.user, rq->who.sub) != 0
        || s.revoked || s.expires_at <= rq->now)
    {
        console_seterr(why, whysize, "the session of %s is not live",
                       rq->who.sub);
        return 1;
    }

    if (c->conf.mfa_max_age_ms > 0
        && (s.mfa_at == 0
            || rq->now - s.mfa_at >= (int64_t) (c->conf.mfa_max_age_ms
                                                / 1000)))
    {
        console_seterr(why, whysize, "the second factor of %s is older "
                       "than mfa_max_age", rq->who.sub);
        return 1;
    }

    if (c->conf.require_device) {
        if (!s.has_device) {
            console_seterr(why, whysize, "the session of %s is not bound "
                           "to a device", rq->who.sub);
            return 1;
        }

        view = NULL;
        rc = store_view_begin(c->st, &view, &se);
        if (rc == 0) {
            rc = store_device_get(view, s.device_fp, &dev, &se);
        }
        store_view_free(view);

        if (rc == -1) {
            console_seterr(why, whysize, "device lookup: %s", se.msg);
            return -1;
        }

        if (rc == STORE_NOTFOUND || dev.status != STORE_DEVICE_ACTIVE
            || strcmp(dev.owner, rq->who.sub) != 0
            || strcmp(dev.id, rq->who.device) != 0
            || (dev.expires_at != 0 && dev.expires_at <= rq->now))
        {
            console_seterr(why, whysize, "the device of %s's session is "
                           "not their own active enrolled device",
                           rq->who.sub);
            return 1;
        }
    }

    u = calloc(1, sizeof(*u));
    if (u == NULL) {
        console_seterr(why, whysize, "out of memory");
        return -1;
    }

    rc = store_user_find(c->st, rq->who.sub, u, &se);

    if (rc == -1) {
        console_seterr(why, whysize, "user lookup: %s", se.msg);
        goto done;
    }

    found = 0;
    for (i = 0; rc == 0 && i < u->ngroups; i++) {
        if (strcmp(u->groups[i], c->conf.staff_group) == 0) {
            found = 1;
            break;
        }
    }

    if (rc == STORE_NOTFOUND || u->disabled || !found) {
        console_seterr(why, whysize, "%s is no longer an enabled member of "
                       "%s", rq->who.sub, c->conf.staff_group);
        rc = 1;
        goto done;
    }

    rc = 0;

done:

    OPENSSL_cleanse(u, sizeof(*u));
    free(u);

    return rc;
}


/* The form token: HMAC-SHA256(process key, sid "\n" member) in hex. */
static int
console_csrf_token(console_t *c, const id_assertion_t *who, char *out)
{
    static const char  hex[] = "0123456789abcdef";
    unsigned char      mac[EVP_MAX_MD_SIZE];
    unsigned int       len;
    char               msg[ID_SID_LEN + ID_NAME_MAX + 32];
    size_t             i;
    int                n;

    n = snprintf(msg, sizeof(msg), "ztconsole csrf\n%s\n%s", who->sid,
                 who->sub);
    if (n < 0 || (size_t) n >= sizeof(msg)) {
        return -1;
    }

    if (HMAC(EVP_sha256(), c->csrf_key, (int) sizeof(c->csrf_key),
             (const unsigned char *) msg, (size_t) n, mac, &len) == NULL
        || len != CONSOLE_CSRF_LEN / 2)
    {
        return -1;
    }

    for (i = 0; i < len; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 0x0f];
    }

    out[2 * len] = '\0';

    return 0;
}


/*
 * A POST must come from a page of the console: Origin is one of the
 * configured origins (browsers send it with every POST; the console's
 * Referrer-Policy keeps it), Sec-Fetch-Site, when sent, says
 * same-origin, and the form's token is this session's.
 */
static int
console_post_ok(console_req_t *rq, char *why, size_t whysize)
{
    const char  *origin, *site, *token;
    size_t       i;
    int          found;

    origin = console_header_once(rq->conn, "Origin", NULL);

    found = 0;
    for (i = 0; origin != NULL && i < rq->c->conf.norigins; i++) {
        if (strcmp(origin, rq->c->conf.origins[i]) == 0) {
            found = 1;
            break;
        }
    }

    if (!found) {
        console_seterr(why, whysize, "Origin \"%.80s\" is not the "
                       "console's", origin != NULL ? origin : "(none)");
        return 0;
    }

    site = console_header_once(rq->conn, "Sec-Fetch-Site", NULL);
    if (site != NULL && strcmp(site, "same-origin") != 0) {
        console_seterr(why, whysize, "Sec-Fetch-Site is \"%.40s\"", site);
        return 0;
    }

    token = console_form(rq, "csrf");
    if (token == NULL || strlen(token) != CONSOLE_CSRF_LEN
        || !portal_ct_equal(token, rq->csrf, CONSOLE_CSRF_LEN))
    {
        console_seterr(why, whysize, "the form's CSRF token is missing or "
                       "not this session's");
        return 0;
    }

    return 1;
}


/*
 * Collect the form's fields into the arena: each value contiguous and
 * NUL-terminated.  A field sent twice, too many fields, a name too long
 * or a body over the limit spoil the form.
 */
static enum MHD_Result
console_post_iter(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *filename, const char *content_type,
    const char *transfer_encoding, const char *data, uint64_t off,
    size_t size)
{
    console_req_t    *rq = cls;
    console_field_t  *f;
    size_t            i;

    (void) kind;
    (void) filename;
    (void) content_type;
    (void) transfer_encoding;

    if (key == NULL || strlen(key) >= sizeof(rq->fields[0].name)) {
        log_debug("console: form field without a name or with a long one");
        rq->form_bad = 1;
        return MHD_YES;
    }

    if (off == 0) {
        for (i = 0; i < rq->nfields; i++) {
            if (strcmp(rq->fields[i].name, key) == 0) {
                log_debug("console: form field %.24s sent twice", key);
                rq->form_bad = 1;
                return MHD_YES;
            }
        }

        if (rq->nfields == CONSOLE_FIELDS_MAX
            || rq->used + 1 >= CONSOLE_BODY_MAX)
        {
            rq->form_bad = 1;
            return MHD_YES;
        }

        if (rq->nfields > 0) {
            rq->used++;                 /* past the previous value's NUL */
        }

        f = &rq->fields[rq->nfields++];
        memcpy(f->name, key, strlen(key) + 1);
        f->value = rq->arena + rq->used;
        f->len = 0;
        f->value[0] = '\0';

    } else {
        if (rq->nfields == 0) {
            rq->form_bad = 1;
            return MHD_YES;
        }

        f = &rq->fields[rq->nfields - 1];

        if (strcmp(f->name, key) != 0 || off != f->len) {
            log_debug("console: form field %.24s at %llu, expected %.24s at "
                      "%zu", key, (unsigned long long) off, f->name, f->len);
            rq->form_bad = 1;
            return MHD_YES;
        }
    }

    if (size >= CONSOLE_BODY_MAX - rq->used) {
        rq->too_large = 1;
        return MHD_YES;
    }

    memcpy(rq->arena + rq->used, data, size);
    rq->used += size;
    f->len += size;
    rq->arena[rq->used] = '\0';

    return MHD_YES;
}


const char *
console_form(const console_req_t *rq, const char *name)
{
    size_t  i;

    for (i = 0; i < rq->nfields; i++) {
        if (strcmp(rq->fields[i].name, name) == 0) {
            /* a NUL inside the value: not a text */
            if (strlen(rq->fields[i].value) != rq->fields[i].len) {
                return NULL;
            }
            return rq->fields[i].value;
        }
    }

    return NULL;
}


const char *
console_query(const console_req_t *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND,
                                       name);
}


static enum MHD_Result
console_access(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
    console_t      *c = cls;
    console_req_t  *rq;
    const char     *cl;
    char           *end;
    unsigned long   n;

    (void) version;

    rq = *con_cls;

    if (rq == NULL) {
        if (!console_peer_ok(c, conn)) {
            return console_refuse(conn, MHD_HTTP_FORBIDDEN);
        }

        rq = console_req_new(c, conn, url, method);
        if (rq == NULL) {
            log_warn("console: out of memory");
            return MHD_NO;
        }

        *con_cls = rq;

        if (!rq->post) {
            return MHD_YES;
        }

        cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                         "Content-Length");
        if (cl != NULL) {
            errno = 0;
            n = strtoul(cl, &end, 10);
            if (errno != 0 || *end != '\0' || n > CONSOLE_BODY_MAX) {
                rq->too_large = 1;
            }

            /* an absurd length is refused before it is read */
            if (errno != 0 || *end != '\0' || n > CONSOLE_DRAIN_MAX) {
                return console_refuse(conn, MHD_HTTP_CONTENT_TOO_LARGE);
            }
        }

        rq->arena = malloc(CONSOLE_BODY_MAX);
        if (rq->arena == NULL) {
            return MHD_NO;
        }
        rq->arena[0] = '\0';

        /* NULL for a body that is neither urlencoded nor multipart */
        rq->pp = MHD_create_post_processor(conn, CONSOLE_PP_BUFFER,
                                           console_post_iter, rq);
        if (rq->pp == NULL) {
            rq->form_bad = 1;
        }

        return MHD_YES;
    }

    if (*upload_data_size > 0) {
        if (rq->pp != NULL && !rq->too_large && !rq->form_bad
            && MHD_post_process(rq->pp, upload_data, *upload_data_size)
               != MHD_YES)
        {
            rq->form_bad = 1;
        }

        *upload_data_size = 0;

        return MHD_YES;
    }

    return console_run(rq, method);
}


/* The whole request is in: check, route, answer. */
static enum MHD_Result
console_run(console_req_t *rq, const char *method)
{
    enum MHD_Result  ret;
    char             why[320];
    int              rc;

    rq->page.p = malloc(CONSOLE_PAGE_SIZE);
    if (rq->page.p == NULL) {
        return MHD_NO;
    }
    rq->page.cap = CONSOLE_PAGE_SIZE;

    pthread_mutex_lock(&rq->c->lock);

    why[0] = '\0';
    rc = console_auth(rq, why, sizeof(why));

    if (rc != 0) {
        if (rc == -1) {
            log_error("console: %s", why);
            console_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                          CONSOLE_S_ERR_INTERNAL);
        } else {
            log_warn("console: refused %s %s: %s", method,
                     rq->path != NULL ? rq->path : "(outside base_path)",
                     why);
            memset(&rq->who, 0, sizeof(rq->who));
            console_error(rq, MHD_HTTP_FORBIDDEN, CONSOLE_S_ERR_FORBIDDEN);
        }

    } else if (rq->path == NULL) {
        console_error(rq, MHD_HTTP_NOT_FOUND, CONSOLE_S_ERR_NOT_FOUND);

    } else if (rq->post && rq->too_large) {
        console_error(rq, MHD_HTTP_CONTENT_TOO_LARGE,
                      CONSOLE_S_ERR_TOO_LARGE);

    } else if (rq->post && !console_post_ok(rq, why, sizeof(why))) {
        log_warn("console: refused a form of %s to %s: %s", rq->who.sub,
                 rq->path, why);
        console_error(rq, MHD_HTTP_FORBIDDEN, CONSOLE_S_ERR_CSRF);

    } else if (rq->post && rq->form_bad) {
        log_warn("console: refused a malformed form of %s to %s (%zu "
                 "fields read)", rq->who.sub, rq->path, rq->nfields);
        console_error(rq, MHD_HTTP_BAD_REQUEST, CONSOLE_S_ERR_BAD_REQUEST);

    } else if (console_dispatch(rq, method) != 0) {
        pthread_mutex_unlock(&rq->c->lock);
        return MHD_NO;
    }

    pthread_mutex_unlock(&rq->c->lock);

    if (rq->page.overflow) {
        /* a broken invariant (page sizes are bounded): serve nothing */
        log_error("console: page does not fit in %d bytes",
                  CONSOLE_PAGE_SIZE);
        return MHD_NO;
    }

    ret = console_send(rq);

    return ret;
}


static int
console_dispatch(console_req_t *rq, const char *method)
{
    const console_route_t  *r;
    int                     get, known;

    get = strcmp(method, MHD_HTTP_METHOD_GET) == 0
          || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;

    if (rq->path[0] == '\0') {
        return console_redirect(rq, "/");
    }

    known = 0;

    for (r = console_routes; r->path != NULL; r++) {
        if (strcmp(r->path, rq->path) != 0) {
            continue;
        }

        known = 1;

        if ((r->post && rq->post) || (!r->post && get)) {
            return r->handler(rq);
        }
    }

    if (known) {
        return console_error(rq, MHD_HTTP_METHOD_NOT_ALLOWED,
                             CONSOLE_S_ERR_METHOD);
    }

    return console_error(rq, MHD_HTTP_NOT_FOUND, CONSOLE_S_ERR_NOT_FOUND);
}


static void
console_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
    console_req_t  *rq;

    (void) cls;
    (void) conn;
    (void) toe;

    rq = *con_cls;
    if (rq == NULL) {
        return;
    }

    if (rq->pp != NULL) {
        MHD_destroy_post_processor(rq->pp);
    }

    /* the form may have held a password or a CSR */
    if (rq->arena != NULL) {
        OPENSSL_cleanse(rq->arena, CONSOLE_BODY_MAX);
        free(rq->arena);
    }

    /* a page still unsent (an error path) may hold a secret */
    if (rq->page.p != NULL) {
        OPENSSL_cleanse(rq->page.p, rq->page.cap);
        free(rq->page.p);
    }

    OPENSSL_cleanse(rq, sizeof(*rq));
    free(rq);
    *con_cls = NULL;
}


/* ---- responses ------------------------------------------------------ */


static void
console_headers(struct MHD_Response *resp, portal_lang_t lang)
{
    MHD_add_response_header(resp, "Content-Security-Policy", CONSOLE_CSP);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    /* not no-referrer: browsers would send "Origin: null" with forms */
    MHD_add_response_header(resp, "Referrer-Policy", "same-origin");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Content-Language",
                            portal_lang_tag(lang));
}


static enum MHD_Result
console_send(console_req_t *rq)
{
    struct MHD_Response  *resp;
    enum MHD_Result       ret;
    unsigned              status;

    if (rq->location[0] != '\0') {
        resp = MHD_create_response_from_buffer(0, NULL,
                                               MHD_RESPMEM_PERSISTENT);
        status = MHD_HTTP_SEE_OTHER;

    } else {
        /* libmicrohttpd copies the page; ours is wiped right below */
        resp = MHD_create_response_from_buffer(rq->page.len, rq->page.p,
                                               MHD_RESPMEM_MUST_COPY);
        status = rq->status != 0 ? rq->status : MHD_HTTP_OK;
    }

    if (rq->page.p != NULL) {
        OPENSSL_cleanse(rq->page.p, rq->page.cap);
        free(rq->page.p);
        rq->page.p = NULL;
    }

    if (resp == NULL) {
        return MHD_NO;
    }

    console_headers(resp, rq->lang);

    if ((rq->location[0] != '\0'
         && MHD_add_response_header(resp, "Location", rq->location)
            != MHD_YES)
        || (rq->location[0] == '\0'
            && MHD_add_response_header(resp, "Content-Type",
                                       "text/html; charset=utf-8")
               != MHD_YES)
        || (rq->cookie[0] != '\0'
            && MHD_add_response_header(resp, "Set-Cookie", rq->cookie)
               != MHD_YES))
    {
        MHD_destroy_response(resp);
        return MHD_NO;
    }

    ret = MHD_queue_response(rq->conn, status, resp);
    MHD_destroy_response(resp);

    return ret;
}


void
console_page_init(const console_req_t *rq, console_page_t *pg,
    const char *self)
{
    memset(pg, 0, sizeof(*pg));
    pg->lang = rq->lang;
    pg->base = rq->c->conf.base_path;
    pg->staff = rq->who.sub[0] != '\0' ? rq->who.sub : NULL;
    pg->csrf = rq->csrf[0] != '\0' ? rq->csrf : NULL;
    pg->self = self;
}


int
console_error(console_req_t *rq, unsigned status, console_str_t msg)
{
    console_page_t  pg;

    console_page_init(rq, &pg, NULL);

    console_html_begin(&rq->page, &pg,
                       console_str(rq->lang, CONSOLE_S_ERR_HEADING));
    console_html_message(&rq->page, console_str(rq->lang, msg), 1);
    console_html_end(&rq->page);

    rq->status = status;
    rq->location[0] = '\0';

    return 0;
}


int
console_redirect(console_req_t *rq, const char *fmt, ...)
{
    va_list  ap;
    char     rest[CONSOLE_SELF_MAX];
    int      n;

    va_start(ap, fmt);
    n = vsnprintf(rest, sizeof(rest), fmt, ap);
    va_end(ap);

    if (n < 0 || (size_t) n >= sizeof(rest)) {
        return console_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                             CONSOLE_S_ERR_INTERNAL);
    }

    snprintf(rq->location, sizeof(rq->location), "%s%s",
             rq->c->conf.base_path, rest);

    return 0;
}
