/*
 * The console's pages and actions.  Each action is one ztctl command's
 * worth of work, done through the same store and enrollment functions
 * (trustd/enroll.h, certs/ca.h) with the signed-in staff member as the
 * actor of its audit record; an action answers with a redirect to the
 * page it changed (a fixed message code in the query says what was
 * done), except those that show a secret once: a generated password, an
 * authenticator's QR code, a PKCS#12 passphrase.  Those pages are
 * rendered directly, never cached (no-store) and never logged.
 *
 * Names in forms and queries are checked before any lookup: a user name
 * as store_user_name_ok() says, a device by its 64-digit fingerprint.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "certs/ca.h"
#include "console.h"
#include "trustd/enroll.h"
#include "trustd/log.h"


#define CONSOLE_LIST_MAX        100     /* rows of a search */
#define CONSOLE_SESSIONS_MAX    200
#define CONSOLE_QUERY_MAX       128
#define CONSOLE_DEVNAME_MAX     64      /* it is the certificate's CN */
#define CONSOLE_QR_SIZE         65536
#define CONSOLE_SECRET_TEXT     160
#define CONSOLE_FILE_MAX        65536
#define CONSOLE_GROUPS_TEXT     (STORE_MAX_GROUPS * STORE_NAME_MAX)

/* A user as the lists show it. */
typedef struct {
    char                name[STORE_NAME_MAX];
    char                display[128];
    char                groups[CONSOLE_GROUPS_TEXT];
    int                 password;
    store_totp_state_t  totp;
    console_str_t       state;
} console_user_row_t;

typedef struct {
    const char          *q;
    int64_t              now;
    console_user_row_t  *rows;
    size_t               n;
    unsigned             more;
} console_users_t;

typedef struct {
    const char          *q;
    const char          *owner;     /* only this owner's */
    store_device_t      *rows;
    size_t               n;
    unsigned             more;
} console_devices_t;

typedef struct {
    store_session_t     *rows;
    size_t               n;
    unsigned             more;
} console_sessions_t;


static int console_home(console_req_t *rq);
static int console_user_new(console_req_t *rq);
static int console_user_create(console_req_t *rq);
static int console_user_view(console_req_t *rq);
static int console_user_password(console_req_t *rq);
static int console_totp_start(console_req_t *rq);
static int console_totp_confirm(console_req_t *rq);
static int console_totp_reset(console_req_t *rq);
static int console_sessions_revoke(console_req_t *rq);
static int console_device_issue(console_req_t *rq);
static int console_device_view(console_req_t *rq);
static int console_device_status(console_req_t *rq);
static int console_lang(console_req_t *rq);

static void console_groups_text(const store_user_t *u, char *buf,
    size_t size);
static console_str_t console_user_state(const store_user_t *u, int64_t now);
static console_str_t console_totp_name(store_totp_state_t state);
static console_str_t console_device_name(store_device_status_t status);
static int console_users_cb(const store_user_t *u, void *arg);
static int console_devices_cb(const store_device_t *dev, void *arg);
static int console_sessions_cb(const store_session_t *s, void *arg);
static void console_users_table(portal_buf_t *b, const console_page_t *pg,
    const console_users_t *l);
static void console_devices_table(portal_buf_t *b, const console_page_t *pg,
    const console_devices_t *l, const char *id);
static void console_user_link(portal_buf_t *b, const console_page_t *pg,
    const char *name);
static void console_device_link(portal_buf_t *b, const console_page_t *pg,
    const store_device_t *dev);
static void console_th(portal_buf_t *b, const console_page_t *pg,
    console_str_t id);
static void console_pw_fieldset(portal_buf_t *b, const console_page_t *pg);
static void console_name_field(portal_buf_t *b, const char *name);
static void console_user_form(console_req_t *rq, const char *name,
    const char *display, const char *groups, const char *error);
static int console_user_page(console_req_t *rq, const char *name,
    const char *done, const char *error);
static void console_user_sections(console_req_t *rq, const console_page_t *pg,
    const store_user_t *u);
static void console_sessions_section(console_req_t *rq,
    const console_page_t *pg, const store_user_t *u);
static void console_enroll_section(console_req_t *rq,
    const console_page_t *pg, const store_user_t *u);
static const char *console_user_arg(const console_req_t *rq);
static int console_password_from_form(console_req_t *rq, char *pw,
    size_t size, int *generated, console_str_t *bad);
static int console_password_shown(console_req_t *rq, const char *name,
    const char *password, int created);
static void console_totp_page(console_req_t *rq, const char *name,
    const char *svg, const char *secret, const char *error);
static int console_parse_groups(const char *text, store_user_t *u);
static int console_fp_arg(const char *hex, uint8_t fp[STORE_FP_LEN]);
static char *console_read_file(const char *path, size_t *len);
static int console_write_file(const char *path, const char *data,
    size_t len);
static char *console_base64(const char *data, size_t len);
static void console_filename(const char *device_id, const char *ext,
    char *out, size_t size);
static int console_issue(console_req_t *rq, const char *devname,
    const char *csr, ca_cert_info_t *info, char *pass, size_t passsize,
    char **file, size_t *filelen, console_str_t *bad);
static void console_message_fmt(char *out, size_t size, portal_lang_t lang,
    console_str_t id, unsigned n);


const console_route_t  console_routes[] = {
    { "/", 0, console_home },
    { "/users/new", 0, console_user_new },
    { "/users/new", 1, console_user_create },
    { "/user", 0, console_user_view },
    { "/user/password", 1, console_user_password },
    { "/user/totp/start", 1, console_totp_start },
    { "/user/totp/confirm", 1, console_totp_confirm },
    { "/user/totp/reset", 1, console_totp_reset },
    { "/user/sessions/revoke", 1, console_sessions_revoke },
    { "/user/devices/new", 1, console_device_issue },
    { "/device", 0, console_device_view },
    { "/device/status", 1, console_device_status },
    { "/lang", 0, console_lang },
    { NULL, 0, NULL }
};


/* ---- small helpers -------------------------------------------------- */


/* One of our strings, with at most one number (%u or %d) in it. */
static void
console_message_fmt(char *out, size_t size, portal_lang_t lang,
    console_str_t id, unsigned n)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(out, size, console_str(lang, id), n);
#pragma GCC diagnostic pop
}


static void
console_groups_text(const store_user_t *u, char *buf, size_t size)
{
    size_t    len;
    unsigned  i;

    buf[0] = '\0';

    for (i = 0, len = 0; i < u->ngroups && len < size; i++) {
        len += (size_t) snprintf(buf + len, size - len, "%s%s",
                                 i > 0 ? ", " : "", u->groups[i]);
    }
}


static console_str_t
console_user_state(const store_user_t *u, int64_t now)
{
    if (u->disabled) {
        return CONSOLE_S_STATE_DISABLED;
    }

    if (u->locked_until > now) {
        return CONSOLE_S_STATE_LOCKED;
    }

    return CONSOLE_S_STATE_ACTIVE;
}


static console_str_t
console_totp_name(store_totp_state_t state)
{
    switch (state) {
    case STORE_TOTP_PENDING:
        return CONSOLE_S_TOTP_PENDING;
    case STORE_TOTP_ACTIVE:
        return CONSOLE_S_TOTP_ACTIVE;
    default:
        return CONSOLE_S_TOTP_NONE;
    }
}


static console_str_t
console_device_name(store_device_status_t status)
{
    switch (status) {
    case STORE_DEVICE_QUARANTINED:
        return CONSOLE_S_DEV_QUARANTINED;
    case STORE_DEVICE_REVOKED:
        return CONSOLE_S_DEV_REVOKED;
    default:
        return CONSOLE_S_DEV_ACTIVE;
    }
}


static void
console_th(portal_buf_t *b, const console_page_t *pg, console_str_t id)
{
    portal_buf_add(b, "<th scope=\"col\">");
    console_html_str(b, pg, id);
    portal_buf_add(b, "</th>");
}


static void
console_user_link(portal_buf_t *b, const console_page_t *pg,
    const char *name)
{
    portal_buf_add(b, "<a href=\"");
    portal_html_escape(b, pg->base);
    portal_buf_add(b, "/user?name=");
    console_html_query_value(b, name);
    portal_buf_add(b, "\">");
    portal_html_escape(b, name);
    portal_buf_add(b, "</a>");
}


static void
console_device_link(portal_buf_t *b, const console_page_t *pg,
    const store_device_t *dev)
{
    char  hex[2 * STORE_FP_LEN + 1];

    store_fp_hex(dev->fp, hex);

    portal_buf_add(b, "<a href=\"");
    portal_html_escape(b, pg->base);
    portal_buf_add(b, "/device?fp=");
    portal_buf_add(b, hex);
    portal_buf_add(b, "\">");
    portal_html_escape(b, dev->name[0] != '\0' ? dev->name : dev->id);
    portal_buf_add(b, "</a>");
}


/* The user NAME of a query (GET) or a form (POST), if well-formed. */
static const char *
console_user_arg(const console_req_t *rq)
{
    const char  *name;

    name = rq->post ? console_form(rq, "name") : console_query(rq, "name");

    if (name == NULL || !store_user_name_ok(name)) {
        return NULL;
    }

    return name;
}


/* 64 lowercase hex digits into fp: 0, else -1. */
static int
console_fp_arg(const char *hex, uint8_t fp[STORE_FP_LEN])
{
    if (hex == NULL || strlen(hex) != 2 * STORE_FP_LEN
        || !portal_is_hex(hex, 2 * STORE_FP_LEN)
        || portal_hex_decode(hex, fp, STORE_FP_LEN) != 0)
    {
        return -1;
    }

    return 0;
}


/* Groups separated by commas (and spaces) into u: 0, else -1. */
static int
console_parse_groups(const char *text, store_user_t *u)
{
    const char  *p, *end;
    size_t       len;
    unsigned     i;
    char         name[STORE_NAME_MAX];

    u->ngroups = 0;
    p = text;

    while (*p != '\0') {
        p += strspn(p, ", \t");
        if (*p == '\0') {
            break;
        }

        end = p + strcspn(p, ", \t");
        len = (size_t) (end - p);

        if (len >= sizeof(name) || u->ngroups == STORE_MAX_GROUPS) {
            return -1;
        }

        memcpy(name, p, len);
        name[len] = '\0';

        if (!store_group_name_ok(name)) {
            return -1;
        }

        for (i = 0; i < u->ngroups; i++) {
            if (strcmp(u->groups[i], name) == 0) {
                break;
            }
        }

        if (i == u->ngroups) {
            memcpy(u->groups[u->ngroups++], name, len + 1);
        }

        p = end;
    }

    return 0;
}


/* ---- search --------------------------------------------------------- */


static int
console_users_cb(const store_user_t *u, void *arg)
{
    console_users_t     *l = arg;
    console_user_row_t  *r;
    char                 groups[CONSOLE_GROUPS_TEXT];
    unsigned             i;
    int                  match;

    match = (l->q == NULL || l->q[0] == '\0'
             || strcasestr(u->name, l->q) != NULL
             || strcasestr(u->display, l->q) != NULL);

    for (i = 0; !match && i < u->ngroups; i++) {
        match = strcasestr(u->groups[i], l->q) != NULL;
    }

    if (!match) {
        return 0;
    }

    if (l->n == CONSOLE_LIST_MAX) {
        l->more++;
        return 0;
    }

    console_groups_text(u, groups, sizeof(groups));

    r = &l->rows[l->n++];
    memcpy(r->name, u->name, sizeof(r->name));
    memcpy(r->display, u->display, sizeof(r->display));
    memcpy(r->groups, groups, sizeof(r->groups));
    r->password = u->pwhash[0] != '\0';
    r->totp = u->totp_state;
    r->state = console_user_state(u, l->now);

    return 0;
}


static int
console_devices_cb(const store_device_t *dev, void *arg)
{
    console_devices_t  *l = arg;
    char                hex[2 * STORE_FP_LEN + 1];
    int                 match;

    if (l->owner != NULL) {
        match = strcmp(dev->owner, l->owner) == 0;

    } else if (l->q == NULL || l->q[0] == '\0') {
        match = 1;

    } else {
        store_fp_hex(dev->fp, hex);
        match = strcasestr(dev->name, l->q) != NULL
                || strcasestr(dev->owner, l->q) != NULL
                || strcasestr(dev->id, l->q) != NULL
                || strcasestr(dev->platform, l->q) != NULL
                || strcasestr(hex, l->q) != NULL;
    }

    if (!match) {
        return 0;
    }

    if (l->n == CONSOLE_LIST_MAX) {
        l->more++;
        return 0;
    }

    l->rows[l->n++] = *dev;

    return 0;
}


static void
console_users_table(portal_buf_t *b, const console_page_t *pg,
    const console_users_t *l)
{
    const console_user_row_t  *r;
    char                       msg[256];
    size_t                     i;

    portal_buf_add(b, "<h2 id=\"users\">");
    console_html_str(b, pg, CONSOLE_S_USERS);
    portal_buf_add(b, "</h2>\n");

    if (l->n == 0) {
        portal_buf_add(b, "<p>");
        console_html_str(b, pg, CONSOLE_S_NONE_FOUND);
        portal_buf_add(b, "</p>\n");
        return;
    }

    portal_buf_add(b, "<table aria-labelledby=\"users\">\n<thead><tr>");
    console_th(b, pg, CONSOLE_S_COL_USER);
    console_th(b, pg, CONSOLE_S_COL_DISPLAY);
    console_th(b, pg, CONSOLE_S_COL_GROUPS);
    console_th(b, pg, CONSOLE_S_COL_PASSWORD);
    console_th(b, pg, CONSOLE_S_COL_TOTP);
    console_th(b, pg, CONSOLE_S_COL_STATUS);
    portal_buf_add(b, "</tr></thead>\n<tbody>\n");

    for (i = 0; i < l->n; i++) {
        r = &l->rows[i];

        portal_buf_add(b, "<tr><td>");
        console_user_link(b, pg, r->name);
        portal_buf_add(b, "</td><td>");
        portal_html_escape(b, r->display);
        portal_buf_add(b, "</td><td>");
        portal_html_escape(b, r->groups);
        portal_buf_add(b, "</td><td>");
        console_html_str(b, pg, r->password ? CONSOLE_S_YES : CONSOLE_S_NO);
        portal_buf_add(b, "</td><td>");
        console_html_str(b, pg, console_totp_name(r->totp));
        portal_buf_add(b, "</td><td>");
        console_html_str(b, pg, r->state);
        portal_buf_add(b, "</td></tr>\n");
    }

    portal_buf_add(b, "</tbody>\n</table>\n");

    if (l->more > 0) {
        console_message_fmt(msg, sizeof(msg), pg->lang, CONSOLE_S_TRUNCATED,
                            CONSOLE_LIST_MAX);
        portal_buf_add(b, "<p>");
        portal_html_escape(b, msg);
        portal_buf_add(b, "</p>\n");
    }
}


static void
console_devices_table(portal_buf_t *b, const console_page_t *pg,
    const console_devices_t *l, const char *id)
{
    const store_device_t  *d;
    char                   hex[2 * STORE_FP_LEN + 1], msg[256];
    size_t                 i;

    if (l->n == 0) {
        portal_buf_add(b, "<p>");
        console_html_str(b, pg, CONSOLE_S_NONE_FOUND);
        portal_buf_add(b, "</p>\n");
        return;
    }

    portal_buf_add(b, "<table aria-labelledby=\"");
    portal_buf_add(b, id);
    portal_buf_add(b, "\">\n<thead><tr>");
    console_th(b, pg, CONSOLE_S_COL_DEVICE);
    console_th(b, pg, CONSOLE_S_COL_OWNER);
    console_th(b, pg, CONSOLE_S_COL_FINGERPRINT);
    console_th(b, pg, CONSOLE_S_COL_PLATFORM);
    console_th(b, pg, CONSOLE_S_COL_STATUS);
    console_th(b, pg, CONSOLE_S_COL_EXPIRES);
    portal_buf_add(b, "</tr></thead>\n<tbody>\n");

    for (i = 0; i < l->n; i++) {
        d = &l->rows[i];
        store_fp_hex(d->fp, hex);

        portal_buf_add(b, "<tr><td>");
        console_device_link(b, pg, d);
        portal_buf_add(b, "</td><td>");
        console_user_link(b, pg, d->owner);
        portal_buf_add(b, "</td><td><code>");
        portal_buf_addn(b, hex, 16);
        portal_buf_add(b, "</code></td><td>");
        portal_html_escape(b, d->platform);
        portal_buf_add(b, "</td><td>");
        console_html_str(b, pg, console_device_name(d->status));
        portal_buf_add(b, "</td><td>");
        console_html_time(b, pg, d->expires_at);
        portal_buf_add(b, "</td></tr>\n");
    }

    portal_buf_add(b, "</tbody>\n</table>\n");

    if (l->more > 0) {
        console_message_fmt(msg, sizeof(msg), pg->lang, CONSOLE_S_TRUNCATED,
                            CONSOLE_LIST_MAX);
        portal_buf_add(b, "<p>");
        portal_html_escape(b, msg);
        portal_buf_add(b, "</p>\n");
    }
}


static int
console_home(console_req_t *rq)
{
    console_page_t     pg;
    console_users_t    ul;
    console_devices_t  dl;
    store_err_t        se;
    portal_buf_t      *b;
    const char        *q;
    int                rc;

    q = console_query(rq, "q");
    if (q != NULL && strlen(q) > CONSOLE_QUERY_MAX) {
        return console_error(rq, MHD_HTTP_BAD_REQUEST,
                             CONSOLE_S_ERR_BAD_REQUEST);
    }

    memset(&ul, 0, sizeof(ul));
    memset(&dl, 0, sizeof(dl));
    ul.q = q;
    ul.now = rq->now;
    dl.q = q;

    ul.rows = calloc(CONSOLE_LIST_MAX, sizeof(*ul.rows));
    dl.rows = calloc(CONSOLE_LIST_MAX, sizeof(*dl.rows));
    if (ul.rows == NULL || dl.rows == NULL) {
        free(ul.rows);
        free(dl.rows);
        return -1;
    }

    rc = store_user_list(rq->c->st, console_users_cb, &ul, &se);
    if (rc == 0) {
        rc = store_device_list(rq->c->st, console_devices_cb, &dl, &se);
    }

    if (rc != 0) {
        log_error("console: listing users and devices: %s", se.msg);
        free(ul.rows);
        free(dl.rows);
        return console_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                             CONSOLE_S_ERR_INTERNAL);
    }

    console_page_init(rq, &pg, NULL);
    b = &rq->page;

    console_html_begin(b, &pg, console_str(rq->lang, CONSOLE_S_TITLE_HOME));

    portal_buf_add(b, "<form method=\"get\" action=\"");
    portal_html_escape(b, pg.base);
    portal_buf_add(b, "/\" role=\"search\">\n<label for=\"q\">");
    console_html_str(b, &pg, CONSOLE_S_SEARCH_LABEL);
    portal_buf_add(b, "</label>\n<input id=\"q\" name=\"q\" type=\"search\" "
                   "maxlength=\"128\" aria-describedby=\"q-hint\"");
    if (q != NULL) {
        portal_buf_add(b, " value=\"");
        portal_html_escape(b, q);
        portal_buf_add(b, "\"");
    }
    portal_buf_add(b, ">\n<p id=\"q-hint\" class=\"hint\">");
    console_html_str(b, &pg, CONSOLE_S_SEARCH_HINT);
    portal_buf_add(b, "</p>\n<button type=\"submit\">");
    console_html_str(b, &pg, CONSOLE_S_SEARCH_BUTTON);
    portal_buf_add(b, "</button>\n</form>\n");

    console_users_table(b, &pg, &ul);

    portal_buf_add(b, "<h2 id=\"devices\">");
    console_html_str(b, &pg, CONSOLE_S_DEVICES);
    portal_buf_add(b, "</h2>\n");
    console_devices_table(b, &pg, &dl, "devices");

    console_html_end(b);

    free(ul.rows);
    free(dl.rows);

    return 0;
}


/* ---- users ---------------------------------------------------------- */


/* The choice between a generated password and one typed twice. */
static void
console_pw_fieldset(portal_buf_t *b, const console_page_t *pg)
{
    char  hint[256];

    portal_buf_add(b, "<fieldset>\n<legend>");
    console_html_str(b, pg, CONSOLE_S_LEGEND_PASSWORD);
    portal_buf_add(b, "</legend>\n<label><input type=\"radio\" "
                   "name=\"pwmode\" value=\"generate\" checked> ");
    console_html_str(b, pg, CONSOLE_S_PW_GENERATE);
    portal_buf_add(b, "</label>\n<label><input type=\"radio\" "
                   "name=\"pwmode\" value=\"set\"> ");
    console_html_str(b, pg, CONSOLE_S_PW_SET);
    portal_buf_add(b, "</label>\n<label for=\"password\">");
    console_html_str(b, pg, CONSOLE_S_LABEL_PASSWORD);
    portal_buf_add(b, "</label>\n<input id=\"password\" name=\"password\" "
                   "type=\"password\" autocomplete=\"new-password\" "
                   "aria-describedby=\"password-hint\">\n"
                   "<label for=\"password2\">");
    console_html_str(b, pg, CONSOLE_S_LABEL_PASSWORD2);
    portal_buf_add(b, "</label>\n<input id=\"password2\" name=\"password2\" "
                   "type=\"password\" autocomplete=\"new-password\">\n"
                   "<p id=\"password-hint\" class=\"hint\">");
    console_message_fmt(hint, sizeof(hint), pg->lang,
                        CONSOLE_S_HINT_PASSWORD, ENROLL_PASSWORD_MIN);
    portal_html_escape(b, hint);
    portal_buf_add(b, "</p>\n</fieldset>\n");
}


static void
console_name_field(portal_buf_t *b, const char *name)
{
    portal_buf_add(b, "<input type=\"hidden\" name=\"name\" value=\"");
    portal_html_escape(b, name);
    portal_buf_add(b, "\">\n");
}


static void
console_user_form(console_req_t *rq, const char *name, const char *display,
    const char *groups, const char *error)
{
    console_page_t   pg;
    portal_buf_t    *b;
    char             self[CONSOLE_SELF_MAX];

    snprintf(self, sizeof(self), "%s/users/new", rq->c->conf.base_path);
    console_page_init(rq, &pg, self);
    b = &rq->page;

    console_html_begin(b, &pg,
                       console_str(rq->lang, CONSOLE_S_TITLE_NEW_USER));
    console_html_message(b, error, 1);

    console_html_form(b, &pg, "users/new", 0);

    portal_buf_add(b, "<label for=\"name\">");
    console_html_str(b, &pg, CONSOLE_S_LABEL_NAME);
    portal_buf_add(b, "</label>\n<input id=\"name\" name=\"name\" "
                   "type=\"text\" required maxlength=\"63\" "
                   "pattern=\"[a-z0-9][a-z0-9._\\-]*\" autocomplete=\"off\" "
                   "autocapitalize=\"none\" spellcheck=\"false\" "
                   "aria-describedby=\"name-hint\"");
    if (name != NULL) {
        portal_buf_add(b, " value=\"");
        portal_html_escape(b, name);
        portal_buf_add(b, "\"");
    } else {
        portal_buf_add(b, " autofocus");
    }
    portal_buf_add(b, ">\n<p id=\"name-hint\" class=\"hint\">");
    console_html_str(b, &pg, CONSOLE_S_HINT_NAME);
    portal_buf_add(b, "</p>\n<label for=\"display\">");
    console_html_str(b, &pg, CONSOLE_S_LABEL_DISPLAY);
    portal_buf_add(b, "</label>\n<input id=\"display\" name=\"display\" "
                   "type=\"text\" maxlength=\"127\" autocomplete=\"off\"");
    if (display != NULL) {
        portal_buf_add(b, " value=\"");
        portal_html_escape(b, display);
        portal_buf_add(b, "\"");
    }
    portal_buf_add(b, ">\n<label for=\"groups\">");
    console_html_str(b, &pg, CONSOLE_S_LABEL_GROUPS);
    portal_buf_add(b, "</label>\n<input id=\"groups\" name=\"groups\" "
                   "type=\"text\" autocomplete=\"off\" "
                   "autocapitalize=\"none\" spellcheck=\"false\" "
                   "aria-describedby=\"groups-hint\"");
    if (groups != NULL) {
        portal_buf_add(b, " value=\"");
        portal_html_escape(b, groups);
        portal_buf_add(b, "\"");
    }
    portal_buf_add(b, ">\n<p id=\"groups-hint\" class=\"hint\">");
    console_html_str(b, &pg, CONSOLE_S_HINT_GROUPS);
    portal_buf_add(b, "</p>\n");

    console_pw_fieldset(b, &pg);

    portal_buf_add(b, "<button type=\"submit\">");
    console_html_str(b, &pg, CONSOLE_S_BUTTON_CREATE);
    portal_buf_add(b, "</button>\n</form>\n");

    console_html_end(b);

    rq->status = (error != NULL) ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_OK;
}


static int
console_user_new(console_req_t *rq)
{
    console_user_form(rq, NULL, NULL, NULL, NULL);

    return 0;
}


/*
 * The password a form asks for: generated (*generated set), or typed
 * twice.  0 with pw, else -1 with the message id in *bad.  The caller
 * wipes pw.
 */
static int
console_password_from_form(console_req_t *rq, char *pw, size_t size,
    int *generated, console_str_t *bad)
{
    enroll_err_t   ee;
    const char    *mode, *p1, *p2;

    mode = console_form(rq, "pwmode");
    *generated = 0;

    if (mode == NULL || strcmp(mode, "generate") == 0) {
        if (enroll_password_generate(pw, size, &ee) != 0) {
            log_error("console: %s", ee.msg);
            *bad = CONSOLE_S_ERR_INTERNAL;
            return -1;
        }

        *generated = 1;
        return 0;
    }

    p1 = console_form(rq, "password");
    p2 = console_form(rq, "password2");

    if (strcmp(mode, "set") != 0 || p1 == NULL || p2 == NULL) {
        *bad = CONSOLE_S_ERR_BAD_REQUEST;
        return -1;
    }

    if (strcmp(p1, p2) != 0) {
        *bad = CONSOLE_S_ERR_PASSWORD_DIFFER;
        return -1;
    }

    if (enroll_password_check(p1, &ee) != ENROLL_OK
        || strlen(p1) >= size)
    {
        *bad = CONSOLE_S_ERR_PASSWORD_SHORT;
        return -1;
    }

    memcpy(pw, p1, strlen(p1) + 1);

    return 0;
}


/* A generated password, shown once, and the way on to the user. */
static int
console_password_shown(console_req_t *rq, const char *name,
    const char *password, int created)
{
    console_page_t   pg;
    portal_buf_t    *b;
    char             title[256];

    console_page_init(rq, &pg, NULL);
    b = &rq->page;

    if (created) {
        snprintf(title, sizeof(title),
                 console_str(rq->lang, CONSOLE_S_TITLE_CREATED), name);
    } else {
        snprintf(title, sizeof(title),
                 console_str(rq->lang, CONSOLE_S_TITLE_USER), name);
    }

    console_html_begin(b, &pg, title);

    if (!created) {
        console_html_message(b, console_str(rq->lang,
                                            CONSOLE_S_DONE_PASSWORD), 0);
    }

    if (password != NULL) {
        portal_buf_add(b, "<h2 id=\"pw-heading\">");
        console_html_str(b, &pg, CONSOLE_S_ONE_TIME_PASSWORD);
        portal_buf_add(b, "</h2>\n<p class=\"secret\" id=\"one-time-password\""
                       " aria-labelledby=\"pw-heading\">");
        portal_html_escape(b, password);
        portal_buf_add(b, "</p>\n<p>");
        console_html_str(b, &pg, CONSOLE_S_SHOWN_ONCE);
        portal_buf_add(b, "</p>\n");
    }

    portal_buf_add(b, "<p><a id=\"to-user\" href=\"");
    portal_html_escape(b, pg.base);
    portal_buf_add(b, "/user?name=");
    console_html_query_value(b, name);
    portal_buf_add(b, "\">");
    console_html_str(b, &pg, CONSOLE_S_NEXT_STEP_USER);
    portal_buf_add(b, "</a></p>\n");

    console_html_end(b);

    rq->status = MHD_HTTP_OK;

    return 0;
}


static int
console_user_create(console_req_t *rq)
{
    store_user_t   *u;
    store_user_t   *old;
    store_err_t     se;
    enroll_err_t    ee;
    console_str_t   bad;
    const char     *name, *display, *groups;
    char            pw[ENROLL_PASSWORD_MAX + 1], msg[512];
    int             rc, generated;

    name = console_form(rq, "name");
    display = console_form(rq, "display");
    groups = console_form(rq, "groups");

    if (display == NULL) {
        display = "";
    }

    if (groups == NULL) {
        groups = "";
    }

    u = calloc(1, sizeof(*u));
    old = calloc(1, sizeof(*old));
    if (u == NULL || old == NULL) {
        free(u);
        free(old);
        return -1;
    }

    rc = 0;
    pw[0] = '\0';

    if (name == NULL || !store_user_name_ok(name)) {
        bad = CONSOLE_S_ERR_NAME;
        goto invalid;
    }

    if (!enroll_text_ok(display, sizeof(u->display))) {
        bad = CONSOLE_S_ERR_DISPLAY;
        goto invalid;
    }

    if (console_parse_groups(groups, u) != 0) {
        bad = CONSOLE_S_ERR_GROUPS;
        goto invalid;
    }

    if (console_password_from_form(rq, pw, sizeof(pw), &generated, &bad)
        != 0)
    {
        goto invalid;
    }

    if (store_user_find(rq->c->st, name, old, &se) != STORE_NOTFOUND) {
        bad = CONSOLE_S_ERR_EXISTS;
        goto invalid;
    }

    snprintf(u->name, sizeof(u->name), "%s", name);
    snprintf(u->display, sizeof(u->display), "%s", display);

    if (store_user_create(rq->c->st, u, rq->who.sub, &se) != 0) {
        log_error("console: %s creating user %s: %s", rq->who.sub, name,
                  se.msg);
        rc = console_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                           CONSOLE_S_ERR_INTERNAL);
        goto done;
    }

    log_info("console: %s created user %s (groups %s)", rq->who.sub, name,
             groups);

    if (enroll_password_set(rq->c->st, name, pw, rq->who.sub, &ee)
        != ENROLL_OK)
    {
        log_error("console: %s setting the password of %s: %s",
                  rq->who.sub, name, ee.msg);
        rc = console_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                           CONSOLE_S_ERR_INTERNAL);
        goto done;
    }

    log_info("console: %s set the password of %s (%s)", rq->who.sub, name,
             generated ? "generated" : "typed");

    rc = console_password_shown(rq, name, generated ? pw : NULL, 1);
    goto done;

invalid:

    console_message_fmt(msg, sizeof(msg), rq->lang, bad,
                        ENROLL_PASSWORD_MIN);
    console_user_form(rq, name != NULL && store_user_name_ok(name) ? name
                                                                   : NULL,
                      display, groups, msg);

done:

    OPENSSL_cleanse(pw, sizeof(pw));
    OPENSSL_cleanse(u, sizeof(*u));
    OPENSSL_cleanse(old, sizeof(*old));
    free(u);
    free(old);

    return rc;
}


static int
console_sessions_cb(const store_session_t *s, void *arg)
{
    console_sessions_t  *l = arg;

    if (l->n == CONSOLE_SESSIONS_MAX) {
        l->more++;
        return 0;
    }

    l->rows[l->n++] = *s;

    return 0;
}


static void
console_sessions_section(console_req_t *rq, const console_page_t *pg,
    const store_user_t *u)
{
    console_sessions_t   l;
    const store_session_t  *s;
    store_err_t          se;
    portal_buf_t        *b;
    char                 label[128], sid[STORE_SID_AUDIT_LEN + 1];
    size_t               i, live;

    b = &rq->page;

    portal_buf_add(b, "<h2 id=\"sessions\">");
    console_html_str(b, pg, CONSOLE_S_SECTION_SESSIONS);
    portal_buf_add(b, "</h2>\n");

    memset(&l, 0, sizeof(l));
    l.rows = calloc(CONSOLE_SESSIONS_MAX, sizeof(*l.rows));
    if (l.rows == NULL) {
        b->overflow = 1;
        return;
    }

    if (store_session_list(rq->c->st, u->name, console_sessions_cb, &l, &se)
        != 0)
    {
        log_error("console: listing the sessions of %s: %s", u->name,
                  se.msg);
        console_html_message(b, console_str(rq->lang,
                                            CONSOLE_S_ERR_INTERNAL), 1);
        free(l.rows);
        return;
    }

    if (l.n == 0) {
        portal_buf_add(b, "<p>");
        console_html_str(b, pg, CONSOLE_S_NONE_FOUND);
        portal_buf_add(b, "</p>\n");
        free(l.rows);
        return;
    }

    portal_buf_add(b, "<table aria-labelledby=\"sessions\">\n<thead><tr>");
    console_th(b, pg, CONSOLE_S_COL_SESSION);
    console_th(b, pg, CONSOLE_S_COL_BOUND);
    console_th(b, pg, CONSOLE_S_COL_SOURCE);
    console_th(b, pg, CONSOLE_S_COL_CREATED);
    console_th(b, pg, CONSOLE_S_COL_MFA);
    console_th(b, pg, CONSOLE_S_COL_LAST_SEEN);
    console_th(b, pg, CONSOLE_S_COL_EXPIRES);
    console_th(b, pg, CONSOLE_S_COL_STATUS);
    console_th(b, pg, CONSOLE_S_COL_ACTION);
    portal_buf_add(b, "</tr></thead>\n<tbody>\n");

    live = 0;

    for (i = 0; i < l.n; i++) {
        s = &l.rows[i];

        /* staff see the audit form of a session id, never the whole id */
        memcpy(sid, s->sid, STORE_SID_AUDIT_LEN);
        sid[STORE_SID_AUDIT_LEN] = '\0';

        portal_buf_add(b, "<tr><td><code>");
        portal_buf_add(b, sid);
        portal_buf_add(b, "</code></td><td>");
        console_html_str(b, pg, s->has_device ? CONSOLE_S_YES
                                              : CONSOLE_S_NO);
        portal_buf_add(b, "</td><td>");
        portal_html_escape(b, s->source);
        portal_buf_add(b, "</td><td>");
        console_html_time(b, pg, s->created_at);
        portal_buf_add(b, "</td><td>");
        console_html_time(b, pg, s->mfa_at);
        portal_buf_add(b, "</td><td>");
        console_html_time(b, pg, s->last_seen);
        portal_buf_add(b, "</td><td>");
        console_html_time(b, pg, s->expires_at);
        portal_buf_add(b, "</td><td>");

        if (s->revoked) {
            console_html_str(b, pg, CONSOLE_S_STATE_REVOKED);
            portal_buf_add(b, "</td><td></td></tr>\n");
            continue;
        }

        if (s->expires_at <= rq->now) {
            console_html_str(b, pg, CONSOLE_S_STATE_EXPIRED);
            portal_buf_add(b, "</td><td></td></tr>\n");
            continue;
        }

        live++;
        console_html_str(b, pg, CONSOLE_S_STATE_ACTIVE);
        portal_buf_add(b, "</td><td>");
        console_html_form(b, pg, "user/sessions/revoke", 0);
        console_name_field(b, u->name);
        portal_buf_add(b, "<input type=\"hidden\" name=\"sid\" value=\"");
        portal_buf_add(b, sid);
        portal_buf_add(b, "\">\n<button type=\"submit\" class=\"danger\" "
                       "data-sid=\"");
        portal_buf_add(b, sid);
        portal_buf_add(b, "\" aria-label=\"");
        snprintf(label, sizeof(label),
                 console_str(rq->lang, CONSOLE_S_REVOKE_SESSION_LABEL), sid);
        portal_html_escape(b, label);
        portal_buf_add(b, "\">");
        console_html_str(b, pg, CONSOLE_S_BUTTON_REVOKE);
        portal_buf_add(b, "</button>\n</form></td></tr>\n");
    }

    portal_buf_add(b, "</tbody>\n</table>\n");

    if (live > 0) {
        console_html_form(b, pg, "user/sessions/revoke", 0);
        console_name_field(b, u->name);
        portal_buf_add(b, "<input type=\"hidden\" name=\"all\" value=\"1\">\n"
                       "<button type=\"submit\" class=\"danger\">");
        console_html_str(b, pg, CONSOLE_S_BUTTON_REVOKE_ALL);
        portal_buf_add(b, "</button>\n</form>\n");
    }

    free(l.rows);
}


static void
console_enroll_section(console_req_t *rq, const console_page_t *pg,
    const store_user_t *u)
{
    console_devices_t   l;
    store_err_t         se;
    portal_buf_t       *b;

    b = &rq->page;

    portal_buf_add(b, "<h2 id=\"user-devices\">");
    console_html_str(b, pg, CONSOLE_S_SECTION_DEVICES);
    portal_buf_add(b, "</h2>\n");

    memset(&l, 0, sizeof(l));
    l.owner = u->name;
    l.rows = calloc(CONSOLE_LIST_MAX, sizeof(*l.rows));
    if (l.rows == NULL) {
        b->overflow = 1;
        return;
    }

    if (store_device_list(rq->c->st, console_devices_cb, &l, &se) != 0) {
        log_error("console: listing devices: %s", se.msg);
        console_html_message(b, console_str(rq->lang,
                                            CONSOLE_S_ERR_INTERNAL), 1);
    } else {
        console_devices_table(b, pg, &l, "user-devices");
    }

    free(l.rows);

    portal_buf_add(b, "<h3 id=\"enroll\">");
    console_html_str(b, pg, CONSOLE_S_SECTION_ENROLL);
    portal_buf_add(b, "</h3>\n");

    if (rq->c->conf.ca_dir[0] == '\0') {
        portal_buf_add(b, "<p>");
        console_html_str(b, pg, CONSOLE_S_NO_CA);
        portal_buf_add(b, "</p>\n");
        return;
    }

    console_html_form(b, pg, "user/devices/new", 1);
    console_name_field(b, u->name);
    portal_buf_add(b, "<label for=\"devname\">");
    console_html_str(b, pg, CONSOLE_S_LABEL_DEVICE_NAME);
    portal_buf_add(b, "</label>\n<input id=\"devname\" name=\"devname\" "
                   "type=\"text\" required maxlength=\"64\" "
                   "autocomplete=\"off\">\n<label for=\"platform\">");
    console_html_str(b, pg, CONSOLE_S_LABEL_PLATFORM);
    portal_buf_add(b, "</label>\n<input id=\"platform\" name=\"platform\" "
                   "type=\"text\" maxlength=\"63\" autocomplete=\"off\">\n"
                   "<fieldset>\n<legend>");
    console_html_str(b, pg, CONSOLE_S_LEGEND_KEY);
    portal_buf_add(b, "</legend>\n<label><input type=\"radio\" name=\"kind\" "
                   "value=\"csr\" checked> ");
    console_html_str(b, pg, CONSOLE_S_KEY_CSR);
    portal_buf_add(b, "</label>\n<label><input type=\"radio\" name=\"kind\" "
                   "value=\"p12\"> ");
    console_html_str(b, pg, CONSOLE_S_KEY_P12);
    portal_buf_add(b, "</label>\n<label for=\"csr\">");
    console_html_str(b, pg, CONSOLE_S_LABEL_CSR);
    portal_buf_add(b, "</label>\n<input id=\"csr\" name=\"csr\" type=\"file\" "
                   "accept=\".csr,.pem,.req,application/pkcs10\" "
                   "aria-describedby=\"csr-hint\">\n"
                   "<p id=\"csr-hint\" class=\"hint\">");
    console_html_str(b, pg, CONSOLE_S_HINT_CSR);
    portal_buf_add(b, "</p>\n</fieldset>\n<button type=\"submit\">");
    console_html_str(b, pg, CONSOLE_S_BUTTON_ENROLL);
    portal_buf_add(b, "</button>\n</form>\n");
}


static void
console_user_sections(console_req_t *rq, const console_page_t *pg,
    const store_user_t *u)
{
    portal_buf_t  *b;
    char           groups[CONSOLE_GROUPS_TEXT];

    b = &rq->page;

    portal_buf_add(b, "<h2 id=\"account\">");
    console_html_str(b, pg, CONSOLE_S_SECTION_ACCOUNT);
    portal_buf_add(b, "</h2>\n<dl>\n<dt>");
    console_html_str(b, pg, CONSOLE_S_COL_USER);
    portal_buf_add(b, "</dt><dd id=\"user-name\">");
    portal_html_escape(b, u->name);
    portal_buf_add(b, "</dd>\n<dt>");
    console_html_str(b, pg, CONSOLE_S_COL_DISPLAY);
    portal_buf_add(b, "</dt><dd>");
    portal_html_escape(b, u->display);
    portal_buf_add(b, "</dd>\n<dt>");
    console_html_str(b, pg, CONSOLE_S_COL_GROUPS);
    portal_buf_add(b, "</dt><dd>");
    console_groups_text(u, groups, sizeof(groups));
    portal_html_escape(b, groups);
    portal_buf_add(b, "</dd>\n<dt>");
    console_html_str(b, pg, CONSOLE_S_COL_PASSWORD);
    portal_buf_add(b, "</dt><dd>");
    console_html_str(b, pg, u->pwhash[0] != '\0' ? CONSOLE_S_YES
                                                 : CONSOLE_S_NO);
    portal_buf_add(b, "</dd>\n<dt>");
    console_html_str(b, pg, CONSOLE_S_COL_TOTP);
    portal_buf_add(b, "</dt><dd id=\"totp-state\" data-state=\"");
    portal_buf_add(b, store_totp_state_name(u->totp_state));
    portal_buf_add(b, "\">");
    console_html_str(b, pg, console_totp_name(u->totp_state));
    portal_buf_add(b, "</dd>\n<dt>");
    console_html_str(b, pg, CONSOLE_S_COL_STATUS);
    portal_buf_add(b, "</dt><dd>");
    console_html_str(b, pg, console_user_state(u, rq->now));
    portal_buf_add(b, "</dd>\n<dt>");
    console_html_str(b, pg, CONSOLE_S_COL_CREATED);
    portal_buf_add(b, "</dt><dd>");
    console_html_time(b, pg, u->created_at);
    portal_buf_add(b, " (");
    portal_html_escape(b, u->created_by);
    portal_buf_add(b, ")</dd>\n</dl>\n");

    /* password */
    portal_buf_add(b, "<h2 id=\"password-section\">");
    console_html_str(b, pg, CONSOLE_S_SECTION_PASSWORD);
    portal_buf_add(b, "</h2>\n");
    console_html_form(b, pg, "user/password", 0);
    console_name_field(b, u->name);
    console_pw_fieldset(b, pg);
    portal_buf_add(b, "<button type=\"submit\">");
    console_html_str(b, pg, CONSOLE_S_BUTTON_PASSWORD);
    portal_buf_add(b, "</button>\n</form>\n");

    /* authenticator */
    portal_buf_add(b, "<h2 id=\"totp\">");
    console_html_str(b, pg, CONSOLE_S_SECTION_TOTP);
    portal_buf_add(b, "</h2>\n<p>");
    console_html_str(b, pg, u->totp_state == STORE_TOTP_ACTIVE
                            ? CONSOLE_S_TOTP_INTRO_ACTIVE
                            : u->totp_state == STORE_TOTP_PENDING
                              ? CONSOLE_S_TOTP_INTRO_PENDING
                              : CONSOLE_S_TOTP_INTRO_NONE);
    portal_buf_add(b, "</p>\n");

    if (u->totp_state == STORE_TOTP_ACTIVE) {
        console_html_form(b, pg, "user/totp/reset", 0);
        console_name_field(b, u->name);
        portal_buf_add(b, "<button type=\"submit\" class=\"danger\">");
        console_html_str(b, pg, CONSOLE_S_BUTTON_TOTP_RESET);
        portal_buf_add(b, "</button>\n</form>\n");

    } else {
        if (u->totp_state == STORE_TOTP_PENDING) {
            console_html_form(b, pg, "user/totp/confirm", 0);
            console_name_field(b, u->name);
            portal_buf_add(b, "<label for=\"code\">");
            console_html_str(b, pg, CONSOLE_S_LABEL_CODE);
            portal_buf_add(b, "</label>\n<input id=\"code\" name=\"code\" "
                           "type=\"text\" inputmode=\"numeric\" "
                           "autocomplete=\"off\" maxlength=\"11\" required "
                           "aria-describedby=\"code-hint\">\n"
                           "<p id=\"code-hint\" class=\"hint\">");
            console_html_str(b, pg, CONSOLE_S_HINT_CODE);
            portal_buf_add(b, "</p>\n<button type=\"submit\">");
            console_html_str(b, pg, CONSOLE_S_BUTTON_CONFIRM);
            portal_buf_add(b, "</button>\n</form>\n");
        }

        console_html_form(b, pg, "user/totp/start", 0);
        console_name_field(b, u->name);
        portal_buf_add(b, "<button type=\"submit\" id=\"totp-start\">");
        console_html_str(b, pg, CONSOLE_S_BUTTON_TOTP_START);
        portal_buf_add(b, "</button>\n</form>\n");
    }

    console_enroll_section(rq, pg, u);
    console_sessions_section(rq, pg, u);
}


/*
 * The user's page with a message: done (role status) or error (role
 * alert), either may be NULL.
 */
static int
console_user_page(console_req_t *rq, const char *name, const char *done,
    const char *error)
{
    console_page_t   pg;
    store_user_t    *u;
    store_err_t      se;
    portal_buf_t    *b;
    char             title[256], self[CONSOLE_SELF_MAX];
    int              rc;

    u = calloc(1, sizeof(*u));
    if (u == NULL) {
        return -1;
    }

    rc = store_user_find(rq->c->st, name, u, &se);

    if (rc == -1) {
        log_error("console: user lookup: %s", se.msg);
        rc = console_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                           CONSOLE_S_ERR_INTERNAL);
        goto done;
    }

    if (rc == STORE_NOTFOUND) {
        rc = console_error(rq, MHD_HTTP_NOT_FOUND, CONSOLE_S_ERR_NO_USER);
        goto done;
    }

    snprintf(self, sizeof(self), "%s/user?name=%s", rq->c->conf.base_path,
             u->name);
    console_page_init(rq, &pg, self);
    b = &rq->page;

    snprintf(title, sizeof(title),
             console_str(rq->lang, CONSOLE_S_TITLE_USER), u->name);
    console_html_begin(b, &pg, title);
    console_html_message(b, done, 0);
    console_html_message(b, error, 1);

    console_user_sections(rq, &pg, u);

    console_html_end(b);

    rq->status = (error != NULL) ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_OK;
    rc = 0;

done:

    OPENSSL_cleanse(u, sizeof(*u));
    free(u);

    return rc;
}


static int
console_user_view(console_req_t *rq)
{
    const char     *name, *msg, *nv;
    console_str_t   id;
    char            done[256];
    unsigned        n;

    name = console_user_arg(rq);
    if (name == NULL) {
        return console_error(rq, MHD_HTTP_NOT_FOUND, CONSOLE_S_ERR_NO_USER);
    }

    /* what an action did: a fixed code, never text from the query */
    msg = console_query(rq, "msg");
    nv = console_query(rq, "n");
    n = (nv != NULL && strlen(nv) < 6
         && nv[strspn(nv, "0123456789")] == '\0') ? (unsigned) atoi(nv) : 0;
    done[0] = '\0';

    if (msg != NULL) {
        id = CONSOLE_NSTRINGS;

        if (strcmp(msg, "password") == 0) {
            id = CONSOLE_S_DONE_PASSWORD;
        } else if (strcmp(msg, "totp") == 0) {
            id = CONSOLE_S_DONE_TOTP_ACTIVE;
        } else if (strcmp(msg, "totp-reset") == 0) {
            id = CONSOLE_S_DONE_TOTP_RESET;
        } else if (strcmp(msg, "session") == 0) {
            id = CONSOLE_S_DONE_SESSION_REVOKED;
        } else if (strcmp(msg, "sessions") == 0) {
            id = CONSOLE_S_DONE_SESSIONS_REVOKED;
        }

        if (id != CONSOLE_NSTRINGS) {
            console_message_fmt(done, sizeof(done), rq->lang, id, n);
        }
    }

    return console_user_page(rq, name, done, NULL);
}


static int
console_user_password(console_req_t *rq)
{
    enroll_err_t    ee;
    console_str_t   bad;
    const char     *name;
    char            pw[ENROLL_PASSWORD_MAX + 1], msg[512];
    int             rc, generated;

    name = console_user_arg(rq);
    if (name == NULL) {
        return console_error(rq, MHD_HTTP_NOT_FOUND, CONSOLE_S_ERR_NO_USER);
    }

    if (console_password_from_form(rq, pw, sizeof(pw), &generated, &bad)
        != 0)
    {
        OPENSSL_cleanse(pw, sizeof(pw));
        console_message_fmt(msg, sizeof(msg), rq->lang, bad,
                            ENROLL_PASSWORD_MIN);
        return console_user_page(rq, name, NULL, msg);
    }

    rc = enroll_password_set(rq->c->st, name, pw, rq->who.sub, &ee);

    if (rc == ENROLL_NOTFOUND) {
        OPENSSL_cleanse(pw, sizeof(pw));
        return console_error(rq, MHD_HTTP_NOT_FOUND, CONSOLE_S_ERR_NO_USER);
    }

    if (rc != ENROLL_OK) {
        OPENSSL_cleanse(pw, sizeof(pw));
        log_error("console: %s setting the password of %s: %s",
                  rq->who.sub, name, ee.msg);
        return console_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                             CONSOLE_S_ERR_INTERNAL);
    }

    log_info("console: %s set the password of %s (%s)", rq->who.sub, name,
             generated ? "generated" : "typed");

    if (generated) {
        rc = console_password_shown(rq, name, pw, 0);
        OPENSSL_cleanse(pw, sizeof(pw));
        return rc;
    }

    OPENSSL_cleanse(pw, sizeof(pw));

    return console_redirect(rq, "/user?name=%s&msg=password", name);
}


/* ---- authenticator -------------------------------------------------- */


/*
 * The enrollment page: with svg and secret, the QR code and the secret
 * (shown once, at the start); without, only the confirmation form (a
 * wrong code).
 */
static void
console_totp_page(console_req_t *rq, const char *name, const char *svg,
    const char *secret, const char *error)
{
    console_page_t   pg;
    portal_buf_t    *b;
    char             title[256], label[256];

    console_page_init(rq, &pg, NULL);
    b = &rq->page;

    snprintf(title, sizeof(title),
             console_str(rq->lang, CONSOLE_S_TITLE_TOTP), name);
    console_html_begin(b, &pg, title);
    console_html_message(b, error, 1);

    portal_buf_add(b, "<ol>\n");

    if (svg != NULL && secret != NULL) {
        portal_buf_add(b, "<li><p>");
        console_html_str(b, &pg, CONSOLE_S_TOTP_STEP_SCAN);
        portal_buf_add(b, "</p>\n<div class=\"qr\" id=\"totp-qr\" "
                       "role=\"img\" aria-label=\"");
        snprintf(label, sizeof(label),
                 console_str(rq->lang, CONSOLE_S_TOTP_QR_LABEL), name);
        portal_html_escape(b, label);
        portal_buf_add(b, "\">");
        /* our own markup from id_totp_qr_svg(): numbers and fixed text */
        portal_buf_add(b, svg);
        portal_buf_add(b, "</div></li>\n<li><p>");
        console_html_str(b, &pg, CONSOLE_S_TOTP_STEP_TYPE);
        portal_buf_add(b, "</p>\n<p class=\"secret\" id=\"totp-secret\">");
        portal_html_escape(b, secret);
        portal_buf_add(b, "</p></li>\n");
    }

    portal_buf_add(b, "<li><p>");
    console_html_str(b, &pg, CONSOLE_S_TOTP_STEP_CODE);
    portal_buf_add(b, "</p>\n");
    console_html_form(b, &pg, "user/totp/confirm", 0);
    console_name_field(b, name);
    portal_buf_add(b, "<label for=\"code\">");
    console_html_str(b, &pg, CONSOLE_S_LABEL_CODE);
    portal_buf_add(b, "</label>\n<input id=\"code\" name=\"code\" "
                   "type=\"text\" inputmode=\"numeric\" autocomplete=\"off\" "
                   "maxlength=\"11\" required autofocus "
                   "aria-describedby=\"code-hint\">\n"
                   "<p id=\"code-hint\" class=\"hint\">");
    console_html_str(b, &pg, CONSOLE_S_HINT_CODE);
    portal_buf_add(b, "</p>\n<button type=\"submit\">");
    console_html_str(b, &pg, CONSOLE_S_BUTTON_CONFIRM);
    portal_buf_add(b, "</button>\n</form></li>\n</ol>\n<p><a href=\"");
    portal_html_escape(b, pg.base);
    portal_buf_add(b, "/user?name=");
    console_html_query_value(b, name);
    portal_buf_add(b, "\">");
    console_html_str(b, &pg, CONSOLE_S_BACK_TO_USER);
    portal_buf_add(b, "</a></p>\n");

    console_html_end(b);

    rq->status = (error != NULL) ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_OK;
}


static int
console_totp_start(console_req_t *rq)
{
    enroll_totp_t  *e;
    enroll_err_t    ee;
    id_err_t        ie;
    const char     *name;
    char           *svg;
    char            secret[CONSOLE_SECRET_TEXT];
    int             rc;

    name = console_user_arg(rq);
    if (name == NULL) {
        return console_error(rq, MHD_HTTP_NOT_FOUND, CONSOLE_S_ERR_NO_USER);
    }

    e = calloc(1, sizeof(*e));
    svg = malloc(CONSOLE_QR_SIZE);
    if (e == NULL || svg == NULL) {
        free(e);
        free(svg);
        return -1;
    }

    secret[0] = '\0';

    rc = enroll_totp_start(rq->c->st, rq->c->keys, name, ID_TOTP_SHA1, 6,
                           rq->c->conf.totp_issuer, rq->who.sub, e, &ee);

    if (rc == ENROLL_NOTFOUND) {
        rc = console_error(rq, MHD_HTTP_NOT_FOUND, CONSOLE_S_ERR_NO_USER);
        goto done;
    }

    if (rc == ENROLL_REFUSED) {
        rc = console_user_page(rq, name, NULL,
                               console_str(rq->lang,
                                           CONSOLE_S_ERR_TOTP_ACTIVE));
        goto done;
    }

    if (rc != ENROLL_OK) {
        log_error("console: %s enrolling an authenticator for %s: %s",
                  rq->who.sub, name, ee.msg);
        rc = console_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                           CONSOLE_S_ERR_INTERNAL);
        goto done;
    }

    log_info("console: %s started an authenticator enrollment for %s",
             rq->who.sub, name);

    if (id_totp_qr_svg(e->uri, 4, svg, CONSOLE_QR_SIZE, &ie) != 0
        || id_totp_secret_text(&e->totp, secret, sizeof(secret), &ie) != 0)
    {
        /* stored pending: a new start shows a new secret */
        log_error("console: showing the authenticator of %s: %s", name,
                  ie.msg);
        rc = console_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                           CONSOLE_S_ERR_INTERNAL);
        goto done;
    }

    console_totp_page(rq, name, svg, secret, NULL);
    rc = 0;

done:

    enroll_totp_wipe(e);
    free(e);
    OPENSSL_cleanse(svg, CONSOLE_QR_SIZE);
    free(svg);
    OPENSSL_cleanse(secret, sizeof(secret));

    return rc;
}


static int
console_totp_confirm(console_req_t *rq)
{
    enroll_totp_t  *e;
    enroll_err_t    ee;
    const char     *name, *code;
    int             rc;

    name = console_user_arg(rq);
    if (name == NULL) {
        return console_error(rq, MHD_HTTP_NOT_FOUND, CONSOLE_S_ERR_NO_USER);
    }

    code = console_form(rq, "code");
    if (code == NULL) {
        code = "";
    }

    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return -1;
    }

    rc = enroll_totp_open(rq->c->st, rq->c->keys, name, e, &ee);

    if (rc == ENROLL_OK) {
        rc = enroll_totp_confirm(rq->c->st, e, code, rq->now,
                                 rq->c->totp_window, rq->who.sub, &ee);
    }

    switch (rc) {

    case ENROLL_OK:
        log_info("console: %s confirmed the authenticator of %s",
                 rq->who.sub, name);
        rc = console_redirect(rq, "/user?name=%s&msg=totp", name);
        break;

    case ENROLL_NOTFOUND:
        rc = console_error(rq, MHD_HTTP_NOT_FOUND, CONSOLE_S_ERR_NO_USER);
        break;

    case ENROLL_REFUSED:
        rc = console_user_page(rq, name, NULL,
                               console_str(rq->lang,
                                           CONSOLE_S_ERR_TOTP_NOT_PENDING));
        break;

    case ENROLL_BAD_CODE:
        log_warn("console: %s: wrong code confirming the authenticator of "
                 "%s", rq->who.sub, name);
        console_totp_page(rq, name, NULL, NULL,
                          console_str(rq->lang, CONSOLE_S_ERR_CODE));
        rc = 0;
        break;

    case ENROLL_CHANGED:
        rc = console_user_page(rq, name, NULL,
                               console_str(rq->lang, CONSOLE_S_ERR_CHANGED));
        break;

    default:
        log_error("console: %s confirming the authenticator of %s: %s",
                  rq->who.sub, name, ee.msg);
        rc = console_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                           CONSOLE_S_ERR_INTERNAL);
        break;
    }

    enroll_totp_wipe(e);
    free(e);

    return rc;
}


static int
console_totp_reset(console_req_t *rq)
{
    enroll_err_t        ee;
    store_totp_state_t  was;
    const char         *name;
    unsigned            revoked;
    int                 rc;

    name = console_user_arg(rq);
    if (name == NULL) {
        return console_error(rq, MHD_HTTP_NOT_FOUND, CONSOLE_S_ERR_NO_USER);
    }

    revoked = 0;
    rc = enroll_totp_reset(rq->c->st, name, rq->who.sub, &was, &revoked,
                           &ee);

    if (rc == ENROLL_NOTFOUND) {
        return console_error(rq, MHD_HTTP_NOT_FOUND, CONSOLE_S_ERR_NO_USER);
    }

    if (rc != ENROLL_OK) {
        log_error("console: %s resetting the authenticator of %s: %s",
                  rq->who.sub, name, ee.msg);
        return console_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                             CONSOLE_S_ERR_INTERNAL);
    }

    log_info("console: %s reset the authenticator of %s (was %s; %u "
             "sessions revoked)", rq->who.sub, name,
             store_totp_state_name(was), revoked);

    return console_redirect(rq, "/user?name=%s&msg=totp-reset&n=%u", name,
                            revoked);
}


/* ---- sessions ------------------------------------------------------- */


static int
console_sessions_revoke(console_req_t *rq)
{
    console_sessions_t   l;
    store_err_t          se;
    const char          *name, *sid, *all;
    const store_session_t  *hit;
    unsigned             count;
    size_t               i, len;
    int                  rc;

    name = console_user_arg(rq);
    if (name == NULL) {
        return console_error(rq, MHD_HTTP_NOT_FOUND, CONSOLE_S_ERR_NO_USER);
    }

    all = console_form(rq, "all");

    if (all != NULL && strcmp(all, "1") == 0) {
        if (store_session_revoke_user(rq->c->st, name, rq->who.sub, &count,
                                      &se)
            != 0)
        {
            log_error("console: %s revoking the sessions of %s: %s",
                      rq->who.sub, name, se.msg);
            return console_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                 CONSOLE_S_ERR_INTERNAL);
        }

        log_info("console: %s revoked %u sessions of %s", rq->who.sub,
                 count, name);

        return console_redirect(rq, "/user?name=%s&msg=sessions&n=%u", name,
                                count);
    }

    /* a session by the audit form of its id, among this user's */
    sid = console_form(rq, "sid");
    len = (sid != NULL) ? strlen(sid) : 0;

    if (len < 8 || len > STORE_SID_LEN || !portal_is_hex(sid, len)) {
        return console_user_page(rq, name, NULL,
                                 console_str(rq->lang,
                                             CONSOLE_S_ERR_SESSION));
    }

    memset(&l, 0, sizeof(l));
    l.rows = calloc(CONSOLE_SESSIONS_MAX, sizeof(*l.rows));
    if (l.rows == NULL) {
        return -1;
    }

    if (store_session_list(rq->c->st, name, console_sessions_cb, &l, &se)
        != 0)
    {
        log_error("console: listing the sessions of %s: %s", name, se.msg);
        free(l.rows);
        return console_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                             CONSOLE_S_ERR_INTERNAL);
    }

    hit = NULL;
    count = 0;

    for (i = 0; i < l.n; i++) {
        if (strncmp(l.rows[i].sid, sid, len) == 0) {
            hit = &l.rows[i];
            count++;
        }
    }

    if (count != 1 || l.more > 0) {
        free(l.rows);
        return console_user_page(rq, name, NULL,
                                 console_str(rq->lang,
                                             CONSOLE_S_ERR_SESSION));
    }

    rc = store_session_revoke(rq->c->st, hit->sid, rq->who.sub, &se);

    if (rc != 0) {
        log_error("console: %s revoking session %.12s of %s: %s",
                  rq->who.sub, hit->sid, name,
                  rc == STORE_NOTFOUND ? "it vanished" : se.msg);
        free(l.rows);
        return console_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                             CONSOLE_S_ERR_INTERNAL);
    }

    log_info("console: %s revoked session %.12s of %s", rq->who.sub,
             hit->sid, name);
    free(l.rows);

    return console_redirect(rq, "/user?name=%s&msg=session", name);
}


/* ---- devices -------------------------------------------------------- */


/* A small file (the CA's output) into memory: the caller's, or NULL. */
static char *
console_read_file(const char *path, size_t *len)
{
    struct stat   st;
    char         *buf;
    ssize_t       n;
    size_t        got;
    int           fd;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd == -1) {
        log_error("console: %s: %s", path, strerror(errno));
        return NULL;
    }

    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)
        || st.st_size <= 0 || st.st_size > CONSOLE_FILE_MAX)
    {
        log_error("console: %s: not a small regular file", path);
        close(fd);
        return NULL;
    }

    buf = malloc((size_t) st.st_size + 1);
    if (buf == NULL) {
        close(fd);
        return NULL;
    }

    for (got = 0; got < (size_t) st.st_size; got += (size_t) n) {
        n = read(fd, buf + got, (size_t) st.st_size - got);
        if (n <= 0) {
            if (n == -1 && errno == EINTR) {
                n = 0;
                continue;
            }
            log_error("console: reading %s: %s", path,
                      n == 0 ? "short file" : strerror(errno));
            close(fd);
            free(buf);
            return NULL;
        }
    }

    close(fd);
    buf[got] = '\0';
    *len = got;

    return buf;
}


static int
console_write_file(const char *path, const char *data, size_t len)
{
    ssize_t  n;
    size_t   done;
    int      fd;

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
              0600);
    if (fd == -1) {
        log_error("console: %s: %s", path, strerror(errno));
        return -1;
    }

    for (done = 0; done < len; done += (size_t) n) {
        n = write(fd, data + done, len - done);
        if (n <= 0) {
            if (n == -1 && errno == EINTR) {
                n = 0;
                continue;
            }
            log_error("console: writing %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
    }

    if (close(fd) != 0) {
        log_error("console: closing %s: %s", path, strerror(errno));
        return -1;
    }

    return 0;
}


/* Base64 (standard, padded) of data: the caller's string, or NULL. */
static char *
console_base64(const char *data, size_t len)
{
    char  *out;

    out = malloc(4 * ((len + 2) / 3) + 1);
    if (out == NULL) {
        return NULL;
    }

    (void) EVP_EncodeBlock((unsigned char *) out,
                           (const unsigned char *) data, (int) len);

    return out;
}


/* "ztgate-<device uuid>.<ext>": nothing from the form in a file name. */
static void
console_filename(const char *device_id, const char *ext, char *out,
    size_t size)
{
    const char  *id;
    size_t       n, i;

    id = device_id;
    if (strncmp(id, CA_DEVICE_URN, sizeof(CA_DEVICE_URN) - 1) == 0) {
        id += sizeof(CA_DEVICE_URN) - 1;
    }

    n = (size_t) snprintf(out, size, "ztgate-%s.%s", id, ext);

    for (i = 0; i < n && i < size; i++) {
        if (!((out[i] >= 'a' && out[i] <= 'z')
              || (out[i] >= 'A' && out[i] <= 'Z')
              || (out[i] >= '0' && out[i] <= '9') || out[i] == '-'
              || out[i] == '.'))
        {
            out[i] = '_';
        }
    }
}


/*
 * Issue the device's certificate in a private temporary directory: from
 * csr (PEM text, the device's own key) into a certificate, or with a
 * generated key into a PKCS#12 file under a one-time passphrase (pass).
 * *file is what the staff member downloads (certificate PEM or PKCS#12),
 * the caller's.  Nothing stays on disk.  0, or -1 with *bad.
 */
static int
console_issue(console_req_t *rq, const char *devname, const char *csr,
    ca_cert_info_t *info, char *pass, size_t passsize, char **file,
    size_t *filelen, console_str_t *bad)
{
    ca_err_t      ce;
    const char   *tmp;
    char          dir[256], in[300], out[300];
    int           rc;

    *file = NULL;
    *bad = CONSOLE_S_ERR_INTERNAL;
    in[0] = '\0';
    out[0] = '\0';

    tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] != '/' || strlen(tmp) > 128) {
        tmp = "/tmp";
    }

    snprintf(dir, sizeof(dir), "%s/ztconsole.XXXXXX", tmp);

    if (mkdtemp(dir) == NULL) {
        log_error("console: mkdtemp %s: %s", dir, strerror(errno));
        return -1;
    }

    rc = -1;

    if (csr != NULL) {
        snprintf(in, sizeof(in), "%s/device.csr", dir);
        snprintf(out, sizeof(out), "%s/device.crt", dir);

        if (console_write_file(in, csr, strlen(csr)) != 0) {
            goto done;
        }

        if (ca_issue_device(rq->c->conf.ca_dir, rq->c->ca_pass, NULL,
                            devname, in, rq->c->conf.cert_days, NULL, out,
                            info, &ce)
            != 0)
        {
            log_warn("console: %s: certificate request refused: %s",
                     rq->who.sub, ce.msg);
            *bad = CONSOLE_S_ERR_CSR;
            goto done;
        }

    } else {
        snprintf(out, sizeof(out), "%s/device.p12", dir);

        if (ca_issue_device_p12(rq->c->conf.ca_dir, rq->c->ca_pass, NULL,
                                devname, rq->c->conf.cert_days, out, pass,
                                passsize, info, &ce)
            != 0)
        {
            log_error("console: %s: issuing a PKCS#12 file: %s",
                      rq->who.sub, ce.msg);
            goto done;
        }
    }

    *file = console_read_file(out, filelen);
    if (*file == NULL) {
        goto done;
    }

    rc = 0;

done:

    if (in[0] != '\0') {
        (void) unlink(in);
    }

    if (out[0] != '\0') {
        (void) unlink(out);
    }

    (void) rmdir(dir);

    return rc;
}


static int
console_device_issue(console_req_t *rq)
{
    console_page_t   pg;
    ca_cert_info_t   info;
    store_device_t   dev;
    store_user_t    *u;
    store_err_t      se;
    enroll_err_t     ee;
    ca_err_t         ce;
    console_str_t    bad;
    portal_buf_t    *b;
    const char      *name, *devname, *platform, *kind, *csr;
    char             pass[CA_P12_PASS_SIZE], fname[200];
    char             hex[2 * STORE_FP_LEN + 1];
    char            *file, *b64;
    size_t           filelen;
    int              rc, p12;

    name = console_user_arg(rq);
    if (name == NULL) {
        return console_error(rq, MHD_HTTP_NOT_FOUND, CONSOLE_S_ERR_NO_USER);
    }

    if (rq->c->conf.ca_dir[0] == '\0') {
        return console_user_page(rq, name, NULL,
                                 console_str(rq->lang, CONSOLE_S_NO_CA));
    }

    devname = console_form(rq, "devname");
    platform = console_form(rq, "platform");
    kind = console_form(rq, "kind");
    csr = console_form(rq, "csr");

    if (platform == NULL) {
        platform = "";
    }

    if (devname == NULL || devname[0] == '\0'
        || strlen(devname) > CONSOLE_DEVNAME_MAX
        || !enroll_text_ok(devname, sizeof(dev.name))
        || !enroll_text_ok(platform, sizeof(dev.platform))
        || kind == NULL
        || (strcmp(kind, "p12") != 0 && strcmp(kind, "csr") != 0))
    {
        return console_user_page(rq, name, NULL,
                                 console_str(rq->lang,
                                             CONSOLE_S_ERR_DEVICE_FIELDS));
    }

    p12 = strcmp(kind, "p12") == 0;

    if (!p12 && (csr == NULL || csr[0] == '\0'
                 || strlen(csr) > CONSOLE_CSR_MAX))
    {
        return console_user_page(rq, name, NULL,
                                 console_str(rq->lang, CONSOLE_S_ERR_CSR));
    }

    u = calloc(1, sizeof(*u));
    if (u == NULL) {
        return -1;
    }

    rc = store_user_find(rq->c->st, name, u, &se);
    OPENSSL_cleanse(u, sizeof(*u));
    free(u);

    if (rc == STORE_NOTFOUND) {
        return console_error(rq, MHD_HTTP_NOT_FOUND, CONSOLE_S_ERR_NO_USER);
    }

    if (rc != 0) {
        log_error("console: user lookup: %s", se.msg);
        return console_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                             CONSOLE_S_ERR_INTERNAL);
    }

    file = NULL;
    b64 = NULL;
    memset(pass, 0, sizeof(pass));
    ee.msg[0] = '\0';

    if (console_issue(rq, devname, p12 ? NULL : csr, &info, pass,
                      sizeof(pass), &file, &filelen, &bad)
        != 0)
    {
        rc = (bad == CONSOLE_S_ERR_CSR)
             ? console_user_page(rq, name, NULL, console_str(rq->lang, bad))
             : console_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, bad);
        goto done;
    }

    if (enroll_device_record(info.fp, info.device_id, info.not_after, name,
                             devname, platform, rq->now, &dev, &ee)
        != ENROLL_OK
        || store_device_enroll(rq->c->st, &dev, rq->who.sub, &se) != 0)
    {
        log_error("console: %s enrolling device %s for %s: %s", rq->who.sub,
                  info.device_id, name, ee.msg[0] != '\0' ? ee.msg : se.msg);

        /* an issued certificate nobody enrolled must not stay valid */
        if (ca_revoke(rq->c->conf.ca_dir, info.serial_hex, &ce) != 0) {
            log_error("console: revoking the unenrolled certificate %s: %s",
                      info.serial_hex, ce.msg);
        }

        rc = console_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                           CONSOLE_S_ERR_INTERNAL);
        goto done;
    }

    store_fp_hex(dev.fp, hex);
    log_info("console: %s enrolled device %s (%s, %s) for %s, fingerprint "
             "%s", rq->who.sub, dev.id, devname, p12 ? "PKCS#12" : "CSR",
             name, hex);

    b64 = console_base64(file, filelen);
    if (b64 == NULL) {
        rc = -1;
        goto done;
    }

    console_page_init(rq, &pg, NULL);
    b = &rq->page;

    console_html_begin(b, &pg,
                       console_str(rq->lang, CONSOLE_S_TITLE_ENROLLED));
    portal_buf_add(b, "<dl>\n<dt>");
    console_html_str(b, &pg, CONSOLE_S_COL_ID);
    portal_buf_add(b, "</dt><dd id=\"device-id\">");
    portal_html_escape(b, dev.id);
    portal_buf_add(b, "</dd>\n<dt>");
    console_html_str(b, &pg, CONSOLE_S_COL_FINGERPRINT);
    portal_buf_add(b, "</dt><dd><code id=\"device-fp\">");
    portal_buf_add(b, hex);
    portal_buf_add(b, "</code></dd>\n<dt>");
    console_html_str(b, &pg, CONSOLE_S_COL_OWNER);
    portal_buf_add(b, "</dt><dd>");
    console_user_link(b, &pg, name);
    portal_buf_add(b, "</dd>\n<dt>");
    console_html_str(b, &pg, CONSOLE_S_COL_EXPIRES);
    portal_buf_add(b, "</dt><dd>");
    console_html_time(b, &pg, dev.expires_at);
    portal_buf_add(b, "</dd>\n</dl>\n");

    if (p12) {
        console_filename(dev.id, "p12", fname, sizeof(fname));

        portal_buf_add(b, "<h2 id=\"pass-heading\">");
        console_html_str(b, &pg, CONSOLE_S_P12_PASSPHRASE);
        portal_buf_add(b, "</h2>\n<p class=\"secret\" id=\"p12-passphrase\" "
                       "aria-labelledby=\"pass-heading\">");
        portal_html_escape(b, pass);
        portal_buf_add(b, "</p>\n<p><a id=\"p12-download\" download=\"");
        portal_html_escape(b, fname);
        portal_buf_add(b, "\" href=\"data:application/x-pkcs12;base64,");
        portal_buf_add(b, b64);
        portal_buf_add(b, "\">");
        console_html_str(b, &pg, CONSOLE_S_P12_DOWNLOAD);
        portal_buf_add(b, "</a></p>\n<p>");
        console_html_str(b, &pg, CONSOLE_S_P12_HINT);
        portal_buf_add(b, "</p>\n<p>");
        console_html_str(b, &pg, CONSOLE_S_SHOWN_ONCE);
        portal_buf_add(b, "</p>\n");

    } else {
        console_filename(dev.id, "crt", fname, sizeof(fname));

        portal_buf_add(b, "<p><a id=\"crt-download\" download=\"");
        portal_html_escape(b, fname);
        portal_buf_add(b, "\" href=\"data:application/x-pem-file;base64,");
        portal_buf_add(b, b64);
        portal_buf_add(b, "\">");
        console_html_str(b, &pg, CONSOLE_S_CRT_DOWNLOAD);
        portal_buf_add(b, "</a></p>\n<p>");
        console_html_str(b, &pg, CONSOLE_S_CRT_HINT);
        portal_buf_add(b, "</p>\n<pre id=\"crt-pem\">");
        portal_html_escape(b, file);
        portal_buf_add(b, "</pre>\n");
    }

    portal_buf_add(b, "<p><a href=\"");
    portal_html_escape(b, pg.base);
    portal_buf_add(b, "/user?name=");
    console_html_query_value(b, name);
    portal_buf_add(b, "\">");
    console_html_str(b, &pg, CONSOLE_S_BACK_TO_USER);
    portal_buf_add(b, "</a></p>\n");

    console_html_end(b);

    rq->status = MHD_HTTP_OK;
    rc = 0;

done:

    OPENSSL_cleanse(pass, sizeof(pass));

    if (file != NULL) {
        OPENSSL_cleanse(file, filelen);
        free(file);
    }

    if (b64 != NULL) {
        OPENSSL_cleanse(b64, strlen(b64));
        free(b64);
    }

    return rc;
}


static int
console_device_view(console_req_t *rq)
{
    console_page_t   pg;
    store_device_t   dev;
    store_view_t    *view;
    store_err_t      se;
    portal_buf_t    *b;
    uint8_t          fp[STORE_FP_LEN];
    const char      *msg;
    char             title[256], self[CONSOLE_SELF_MAX];
    char             hex[2 * STORE_FP_LEN + 1];
    int              rc;

    if (console_fp_arg(console_query(rq, "fp"), fp) != 0) {
        return console_error(rq, MHD_HTTP_NOT_FOUND,
                             CONSOLE_S_ERR_NO_DEVICE);
    }

    view = NULL;
    rc = store_view_begin(rq->c->st, &view, &se);
    if (rc == 0) {
        rc = store_device_get(view, fp, &dev, &se);
    }
    store_view_free(view);

    if (rc == -1) {
        log_error("console: device lookup: %s", se.msg);
        return console_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                             CONSOLE_S_ERR_INTERNAL);
    }

    if (rc == STORE_NOTFOUND) {
        return console_error(rq, MHD_HTTP_NOT_FOUND,
                             CONSOLE_S_ERR_NO_DEVICE);
    }

    store_fp_hex(dev.fp, hex);
    snprintf(self, sizeof(self), "%s/device?fp=%s", rq->c->conf.base_path,
             hex);
    console_page_init(rq, &pg, self);
    b = &rq->page;

    snprintf(title, sizeof(title),
             console_str(rq->lang, CONSOLE_S_TITLE_DEVICE),
             dev.name[0] != '\0' ? dev.name : dev.id);
    console_html_begin(b, &pg, title);

    msg = console_query(rq, "msg");
    if (msg != NULL && strcmp(msg, "status") == 0) {
        console_html_message(b, console_str(rq->lang,
                                            CONSOLE_S_DONE_STATUS), 0);
    }

    portal_buf_add(b, "<dl>\n<dt>");
    console_html_str(b, &pg, CONSOLE_S_COL_ID);
    portal_buf_add(b, "</dt><dd>");
    portal_html_escape(b, dev.id);
    portal_buf_add(b, "</dd>\n<dt>");
    console_html_str(b, &pg, CONSOLE_S_COL_FINGERPRINT);
    portal_buf_add(b, "</dt><dd><code>");
    portal_buf_add(b, hex);
    portal_buf_add(b, "</code></dd>\n<dt>");
    console_html_str(b, &pg, CONSOLE_S_COL_OWNER);
    portal_buf_add(b, "</dt><dd>");
    console_user_link(b, &pg, dev.owner);
    portal_buf_add(b, "</dd>\n<dt>");
    console_html_str(b, &pg, CONSOLE_S_COL_PLATFORM);
    portal_buf_add(b, "</dt><dd>");
    portal_html_escape(b, dev.platform);
    portal_buf_add(b, "</dd>\n<dt>");
    console_html_str(b, &pg, CONSOLE_S_COL_STATUS);
    portal_buf_add(b, "</dt><dd id=\"device-status\" data-status=\"");
    portal_buf_add(b, store_device_status_name(dev.status));
    portal_buf_add(b, "\">");
    console_html_str(b, &pg, console_device_name(dev.status));
    portal_buf_add(b, "</dd>\n<dt>");
    console_html_str(b, &pg, CONSOLE_S_COL_ENROLLED);
    portal_buf_add(b, "</dt><dd>");
    console_html_time(b, &pg, dev.enrolled_at);
    portal_buf_add(b, " (");
    portal_html_escape(b, dev.enrolled_by);
    portal_buf_add(b, ")</dd>\n<dt>");
    console_html_str(b, &pg, CONSOLE_S_COL_EXPIRES);
    portal_buf_add(b, "</dt><dd>");
    console_html_time(b, &pg, dev.expires_at);
    portal_buf_add(b, "</dd>\n</dl>\n<h2 id=\"status-section\">");
    console_html_str(b, &pg, CONSOLE_S_SECTION_STATUS);
    portal_buf_add(b, "</h2>\n");

    console_html_form(b, &pg, "device/status", 0);
    portal_buf_add(b, "<input type=\"hidden\" name=\"fp\" value=\"");
    portal_buf_add(b, hex);
    portal_buf_add(b, "\">\n<fieldset>\n<legend>");
    console_html_str(b, &pg, CONSOLE_S_LABEL_NEW_STATUS);
    portal_buf_add(b, "</legend>\n");

    if (dev.status != STORE_DEVICE_QUARANTINED) {
        portal_buf_add(b, "<label><input type=\"radio\" name=\"status\" "
                       "value=\"quarantined\" required> ");
        console_html_str(b, &pg, CONSOLE_S_DO_QUARANTINE);
        portal_buf_add(b, "</label>\n");
    }

    if (dev.status != STORE_DEVICE_REVOKED) {
        portal_buf_add(b, "<label><input type=\"radio\" name=\"status\" "
                       "value=\"revoked\" required> ");
        console_html_str(b, &pg, CONSOLE_S_DO_REVOKE);
        portal_buf_add(b, "</label>\n");
    }

    if (dev.status != STORE_DEVICE_ACTIVE) {
        portal_buf_add(b, "<label><input type=\"radio\" name=\"status\" "
                       "value=\"active\" required> ");
        console_html_str(b, &pg, CONSOLE_S_DO_ACTIVATE);
        portal_buf_add(b, "</label>\n");
    }

    portal_buf_add(b, "</fieldset>\n<label for=\"reason\">");
    console_html_str(b, &pg, CONSOLE_S_LABEL_REASON);
    portal_buf_add(b, "</label>\n<input id=\"reason\" name=\"reason\" "
                   "type=\"text\" maxlength=\"200\" autocomplete=\"off\">\n"
                   "<button type=\"submit\" class=\"danger\">");
    console_html_str(b, &pg, CONSOLE_S_BUTTON_STATUS);
    portal_buf_add(b, "</button>\n</form>\n<p class=\"hint\">");
    console_html_str(b, &pg, CONSOLE_S_REVOKE_CA_HINT);
    portal_buf_add(b, "</p>\n");

    console_html_end(b);

    return 0;
}


static int
console_device_status(console_req_t *rq)
{
    store_device_status_t   status;
    store_err_t             se;
    uint8_t                 fp[STORE_FP_LEN];
    const char             *hex, *st, *reason;
    int                     rc;

    hex = console_form(rq, "fp");
    if (console_fp_arg(hex, fp) != 0) {
        return console_error(rq, MHD_HTTP_NOT_FOUND,
                             CONSOLE_S_ERR_NO_DEVICE);
    }

    st = console_form(rq, "status");
    reason = console_form(rq, "reason");

    if (reason == NULL) {
        reason = "";
    }

    if (st == NULL || store_device_status_parse(st, &status) != 0
        || !enroll_text_ok(reason, 201))
    {
        return console_error(rq, MHD_HTTP_BAD_REQUEST,
                             CONSOLE_S_ERR_STATUS);
    }

    rc = store_device_set_status(rq->c->st, fp, status, rq->who.sub,
                                 reason[0] != '\0' ? reason : NULL, &se);

    if (rc == STORE_NOTFOUND) {
        return console_error(rq, MHD_HTTP_NOT_FOUND,
                             CONSOLE_S_ERR_NO_DEVICE);
    }

    if (rc != 0) {
        log_error("console: %s setting device %.16s to %s: %s", rq->who.sub,
                  hex, st, se.msg);
        return console_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                             CONSOLE_S_ERR_INTERNAL);
    }

    log_info("console: %s set device %.16s to %s", rq->who.sub, hex, st);

    return console_redirect(rq, "/device?fp=%s&msg=status", hex);
}


/* ---- language switch ------------------------------------------------ */


/*
 * GET /lang?to=zh-TW&back=/console/...: remember the choice in a cookie
 * and go back, but only to a page of the console.
 */
static int
console_lang(console_req_t *rq)
{
    const char  *to, *back, *base;
    size_t       blen, i;

    to = console_query(rq, "to");
    back = console_query(rq, "back");
    base = rq->c->conf.base_path;
    blen = strlen(base);

    if (to == NULL || (strcmp(to, "en") != 0 && strcmp(to, "zh-TW") != 0)) {
        return console_error(rq, MHD_HTTP_BAD_REQUEST,
                             CONSOLE_S_ERR_BAD_REQUEST);
    }

    snprintf(rq->cookie, sizeof(rq->cookie), "__Host-zt_console_lang=%s; "
             "Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=31536000", to);

    rq->lang = (strcmp(to, "en") == 0) ? PORTAL_LANG_EN : PORTAL_LANG_ZH_TW;

    if (back == NULL || strncmp(back, base, blen) != 0 || back[blen] != '/'
        || back[blen + 1] == '/' || strlen(back) >= CONSOLE_SELF_MAX - 16)
    {
        return console_redirect(rq, "/");
    }

    for (i = 0; back[i] != '\0'; i++) {
        if ((unsigned char) back[i] <= 0x20 || back[i] == 0x7f
            || back[i] == '\\')
        {
            return console_redirect(rq, "/");
        }
    }

    return console_redirect(rq, "%s", back + blen);
}
