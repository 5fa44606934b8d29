/*
 * ztconsole: the staff enrollment console, a small web application served
 * behind the gateway itself (docs/console.md).  nginx proxies a location
 * protected by ztgate's policy (group staff, an enrolled device, a recent
 * second factor) to this daemon's Unix socket; the daemon believes who
 * the staff member is only from the X-ZT-Assertion JWT, verified with
 * trustd's assertion key, and checks the group, the session and the
 * device again itself.  Its actions are the ones ztctl performs, through
 * the same store and enrollment functions (trustd/enroll.h), with the
 * staff member as the actor of every audit record.
 *
 * Files: main.c (command line, start, signals), console_conf.c (its
 * configuration file), console.c (libmicrohttpd, authentication, CSRF,
 * routing, responses), console_pages.c (the pages and actions),
 * console_html.c (page layout and HTML helpers, no I/O) and
 * console_i18n.c (English and Traditional Chinese).
 */

#ifndef ZT_CONSOLE_H
#define ZT_CONSOLE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "trustd/config.h"
#include "trustd/identity.h"
#include "trustd/portal.h"
#include "trustd/store.h"
#include "trustd/cluster.h"

#define CONSOLE_CONF_DEFAULT    "/etc/ztgate/console.conf"
#define CONSOLE_MAX_ORIGINS     8
#define CONSOLE_ORIGIN_MAX      256
#define CONSOLE_BASE_MAX        64
#define CONSOLE_CSRF_LEN        64      /* hex of an HMAC-SHA256 */
#define CONSOLE_BODY_MAX        (64 * 1024)
#define CONSOLE_CSR_MAX         16384
#define CONSOLE_LEEWAY          5       /* seconds, for the assertion */


/* ---- configuration (console_conf.c) --------------------------------- */

typedef struct {
    char        trustd_config[CONFIG_PATH_MAX];
    char        listen[CONFIG_LISTEN_MAX];
    mode_t      listen_mode;
    uid_t       peer_uids[CONFIG_MAX_PEERS];
    size_t      npeers;
    char        origins[CONSOLE_MAX_ORIGINS][CONSOLE_ORIGIN_MAX];
    char        hosts[CONSOLE_MAX_ORIGINS][CONSOLE_ORIGIN_MAX];
    size_t      norigins;
    char        base_path[CONSOLE_BASE_MAX];    /* "/console", no "/" after */
    char        staff_group[STORE_NAME_MAX];
    uint32_t    mfa_max_age_ms;                 /* 0: not checked */
    int         require_device;
    char        ca_dir[CONFIG_PATH_MAX];        /* "": no certificates */
    char        ca_passphrase_file[CONFIG_PATH_MAX];
    int         cert_days;
    char        totp_issuer[64];
    int         log_level;
    int         log_target;                     /* CONFIG_LOG_TARGET_* */
} console_conf_t;

/*
 * Read and check the console's configuration file (keywords in
 * docs/console.md) into *cf.  Peer user names are resolved to uids now.
 * Returns 0, or -1 with "file:line: message" (or "file: message") in err.
 */
int console_conf_load(const char *path, console_conf_t *cf, char *err,
    size_t errsize);


/* ---- the daemon (console.c) ----------------------------------------- */

typedef struct console_s  console_t;

struct console_s {
    console_conf_t      conf;
    unsigned            totp_window;
    store_t            *st;
    cluster_t          *cluster;    /* cluster mode: freed by console_stop */
    id_keys_t          *keys;           /* under lock: SIGHUP swaps them */
    char               *ca_pass;        /* NULL: CA key not encrypted */
    uint8_t             csrf_key[32];
    pthread_mutex_t     lock;           /* held while a request runs */
    void               *daemon;         /* struct MHD_Daemon */
    dev_t               sock_dev;
    ino_t               sock_ino;
};

/*
 * Listen on cf->listen and serve with one libmicrohttpd thread, so that
 * requests run one at a time (the store handle and the CA library are
 * not for concurrent use).  On success st, keys and ca_pass (may be NULL)
 * become the console's (closed and freed by console_stop()); on failure
 * they stay the caller's.  Returns 0 or -1 with a message in err.
 */
int console_start(console_t **out, const console_conf_t *cf,
    unsigned totp_window, store_t *st, id_keys_t *keys, char *ca_pass,
    char *err, size_t errsize);

/* Replace the keys (SIGHUP) between two requests; frees the old ones. */
void console_set_keys(console_t *c, id_keys_t *keys);

/* Stop serving, unlink the socket, free everything.  c may be NULL. */
void console_stop(console_t *c);


/* ---- languages and strings (console_i18n.c) ------------------------- */

typedef enum {
    CONSOLE_S_APP = 0,
    CONSOLE_S_SKIP,
    CONSOLE_S_NAV_MAIN,
    CONSOLE_S_NAV_SEARCH,
    CONSOLE_S_NAV_NEW_USER,
    CONSOLE_S_NAV_LANG,
    CONSOLE_S_SIGNED_IN_AS,
    CONSOLE_S_TITLE_HOME,
    CONSOLE_S_SEARCH_LABEL,
    CONSOLE_S_SEARCH_HINT,
    CONSOLE_S_SEARCH_BUTTON,
    CONSOLE_S_USERS,
    CONSOLE_S_DEVICES,
    CONSOLE_S_SESSIONS,
    CONSOLE_S_NONE_FOUND,
    CONSOLE_S_TRUNCATED,            /* printf: %u */
    CONSOLE_S_COL_USER,
    CONSOLE_S_COL_DISPLAY,
    CONSOLE_S_COL_GROUPS,
    CONSOLE_S_COL_PASSWORD,
    CONSOLE_S_COL_TOTP,
    CONSOLE_S_COL_STATUS,
    CONSOLE_S_COL_DEVICE,
    CONSOLE_S_COL_OWNER,
    CONSOLE_S_COL_ID,
    CONSOLE_S_COL_FINGERPRINT,
    CONSOLE_S_COL_PLATFORM,
    CONSOLE_S_COL_EXPIRES,
    CONSOLE_S_COL_CREATED,
    CONSOLE_S_COL_ENROLLED,
    CONSOLE_S_COL_SESSION,
    CONSOLE_S_COL_BOUND,
    CONSOLE_S_COL_MFA,
    CONSOLE_S_COL_LAST_SEEN,
    CONSOLE_S_COL_SOURCE,
    CONSOLE_S_COL_ACTION,
    CONSOLE_S_YES,
    CONSOLE_S_NO,
    CONSOLE_S_NEVER,
    CONSOLE_S_STATE_ACTIVE,
    CONSOLE_S_STATE_LOCKED,
    CONSOLE_S_STATE_DISABLED,
    CONSOLE_S_STATE_REVOKED,
    CONSOLE_S_STATE_EXPIRED,
    CONSOLE_S_TOTP_NONE,
    CONSOLE_S_TOTP_PENDING,
    CONSOLE_S_TOTP_ACTIVE,
    CONSOLE_S_DEV_ACTIVE,
    CONSOLE_S_DEV_QUARANTINED,
    CONSOLE_S_DEV_REVOKED,
    CONSOLE_S_TITLE_NEW_USER,
    CONSOLE_S_LABEL_NAME,
    CONSOLE_S_HINT_NAME,
    CONSOLE_S_LABEL_DISPLAY,
    CONSOLE_S_LABEL_GROUPS,
    CONSOLE_S_HINT_GROUPS,
    CONSOLE_S_LEGEND_PASSWORD,
    CONSOLE_S_PW_GENERATE,
    CONSOLE_S_PW_SET,
    CONSOLE_S_LABEL_PASSWORD,
    CONSOLE_S_LABEL_PASSWORD2,
    CONSOLE_S_HINT_PASSWORD,        /* printf: %u */
    CONSOLE_S_BUTTON_CREATE,
    CONSOLE_S_TITLE_CREATED,        /* printf: %s */
    CONSOLE_S_ONE_TIME_PASSWORD,
    CONSOLE_S_SHOWN_ONCE,
    CONSOLE_S_NEXT_STEP_USER,
    CONSOLE_S_TITLE_USER,           /* printf: %s */
    CONSOLE_S_SECTION_ACCOUNT,
    CONSOLE_S_CREATED_BY,           /* printf: %s %s */
    CONSOLE_S_SECTION_PASSWORD,
    CONSOLE_S_BUTTON_PASSWORD,
    CONSOLE_S_SECTION_TOTP,
    CONSOLE_S_TOTP_INTRO_NONE,
    CONSOLE_S_TOTP_INTRO_PENDING,
    CONSOLE_S_TOTP_INTRO_ACTIVE,
    CONSOLE_S_BUTTON_TOTP_START,
    CONSOLE_S_BUTTON_TOTP_RESET,
    CONSOLE_S_TITLE_TOTP,           /* printf: %s */
    CONSOLE_S_TOTP_STEP_SCAN,
    CONSOLE_S_TOTP_QR_LABEL,        /* printf: %s */
    CONSOLE_S_TOTP_STEP_TYPE,
    CONSOLE_S_TOTP_STEP_CODE,
    CONSOLE_S_LABEL_CODE,
    CONSOLE_S_HINT_CODE,
    CONSOLE_S_BUTTON_CONFIRM,
    CONSOLE_S_SECTION_DEVICES,
    CONSOLE_S_SECTION_ENROLL,
    CONSOLE_S_LABEL_DEVICE_NAME,
    CONSOLE_S_LABEL_PLATFORM,
    CONSOLE_S_LEGEND_KEY,
    CONSOLE_S_KEY_P12,
    CONSOLE_S_KEY_CSR,
    CONSOLE_S_LABEL_CSR,
    CONSOLE_S_HINT_CSR,
    CONSOLE_S_BUTTON_ENROLL,
    CONSOLE_S_NO_CA,
    CONSOLE_S_TITLE_ENROLLED,
    CONSOLE_S_P12_PASSPHRASE,
    CONSOLE_S_P12_DOWNLOAD,
    CONSOLE_S_CRT_DOWNLOAD,
    CONSOLE_S_P12_HINT,
    CONSOLE_S_CRT_HINT,
    CONSOLE_S_SECTION_SESSIONS,
    CONSOLE_S_BUTTON_REVOKE,
    CONSOLE_S_BUTTON_REVOKE_ALL,
    CONSOLE_S_REVOKE_SESSION_LABEL, /* printf: %s */
    CONSOLE_S_TITLE_DEVICE,         /* printf: %s */
    CONSOLE_S_SECTION_STATUS,
    CONSOLE_S_LABEL_NEW_STATUS,
    CONSOLE_S_DO_QUARANTINE,
    CONSOLE_S_DO_REVOKE,
    CONSOLE_S_DO_ACTIVATE,
    CONSOLE_S_LABEL_REASON,
    CONSOLE_S_BUTTON_STATUS,
    CONSOLE_S_REVOKE_CA_HINT,
    CONSOLE_S_DONE_PASSWORD,
    CONSOLE_S_DONE_TOTP_ACTIVE,
    CONSOLE_S_DONE_TOTP_RESET,      /* printf: %u */
    CONSOLE_S_DONE_SESSION_REVOKED,
    CONSOLE_S_DONE_SESSIONS_REVOKED, /* printf: %u */
    CONSOLE_S_DONE_STATUS,
    CONSOLE_S_ERR_HEADING,
    CONSOLE_S_ERR_FORBIDDEN,
    CONSOLE_S_ERR_CSRF,
    CONSOLE_S_ERR_NOT_FOUND,
    CONSOLE_S_ERR_NO_USER,
    CONSOLE_S_ERR_NO_DEVICE,
    CONSOLE_S_ERR_METHOD,
    CONSOLE_S_ERR_TOO_LARGE,
    CONSOLE_S_ERR_BAD_REQUEST,
    CONSOLE_S_ERR_INTERNAL,
    CONSOLE_S_ERR_NAME,
    CONSOLE_S_ERR_DISPLAY,
    CONSOLE_S_ERR_GROUPS,
    CONSOLE_S_ERR_EXISTS,
    CONSOLE_S_ERR_PASSWORD_SHORT,   /* printf: %u */
    CONSOLE_S_ERR_PASSWORD_DIFFER,
    CONSOLE_S_ERR_TOTP_ACTIVE,
    CONSOLE_S_ERR_TOTP_NOT_PENDING,
    CONSOLE_S_ERR_CODE,
    CONSOLE_S_ERR_CHANGED,
    CONSOLE_S_ERR_DEVICE_FIELDS,
    CONSOLE_S_ERR_CSR,
    CONSOLE_S_ERR_SESSION,
    CONSOLE_S_ERR_STATUS,
    CONSOLE_S_BACK_TO_USER,
    CONSOLE_NSTRINGS
} console_str_t;

/* The string id in lang (never NULL). */
const char *console_str(portal_lang_t lang, console_str_t id);


/* ---- pages (console_html.c) ----------------------------------------- */

/* What every page of one request shares. */
typedef struct {
    portal_lang_t   lang;
    const char     *base;       /* base path, "/console" */
    const char     *staff;      /* the signed-in staff member, or NULL */
    const char     *csrf;       /* token for forms, or NULL */
    const char     *self;       /* this page's path and query, for the
                                   language switch to come back to */
} console_page_t;

/*
 * Start a complete document: head, skip link, header with navigation,
 * the staff member and the language switch, then <main> and an <h1> of
 * heading (already in the page's language; escaped here).
 */
void console_html_begin(portal_buf_t *b, const console_page_t *pg,
    const char *heading);

/* Close <main> and the document. */
void console_html_end(portal_buf_t *b);

/* An escaped string of the table. */
void console_html_str(portal_buf_t *b, const console_page_t *pg,
    console_str_t id);

/* printf into b, then append the result escaped (fmt is ours). */
void console_html_fmt(portal_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* An escaped value of a query parameter (percent-encoded, then escaped). */
void console_html_query_value(portal_buf_t *b, const char *s);

/*
 * A message paragraph: role "status" (done) or "alert" (error), escaped.
 * Nothing for NULL or "".
 */
void console_html_message(portal_buf_t *b, const char *text, int error);

/* The hidden CSRF field of a form. */
void console_html_csrf(portal_buf_t *b, const console_page_t *pg);

/* "<form method="post" action="BASE/ACTION"> + the CSRF field. */
void console_html_form(portal_buf_t *b, const console_page_t *pg,
    const char *action, int multipart);

/* "2026-11-25 10:00 UTC" for unix seconds, the "never" string for 0. */
void console_html_time(portal_buf_t *b, const console_page_t *pg,
    int64_t t);

/* ---- requests (console.c, console_pages.c) --------------------------- */

#define CONSOLE_FIELDS_MAX      16
#define CONSOLE_SELF_MAX        512

struct MHD_Connection;

/* A form field: its value lives in the request's arena, NUL-terminated. */
typedef struct {
    char            name[24];
    char           *value;
    size_t          len;
} console_field_t;

/* One request, from its headers to its response. */
typedef struct {
    console_t              *c;
    struct MHD_Connection  *conn;
    int64_t                 now;
    portal_lang_t           lang;
    const char             *path;           /* after base_path: "/..." */
    int                     post;

    /* who: set by the authentication, before any page runs */
    id_assertion_t          who;
    char                    csrf[CONSOLE_CSRF_LEN + 1];

    /* the form of a POST */
    void                   *pp;             /* struct MHD_PostProcessor */
    char                   *arena;
    size_t                  used;
    console_field_t         fields[CONSOLE_FIELDS_MAX];
    size_t                  nfields;
    int                     form_bad;       /* duplicate, unknown, NUL */
    int                     too_large;

    /* the response: a page, or a redirect when location is set */
    portal_buf_t            page;
    unsigned                status;
    char                    location[CONSOLE_SELF_MAX + 64];
    char                    cookie[160];
} console_req_t;

/* A page or action: fills rq's response; 0, or -1 to drop the request. */
typedef int (*console_handler_pt)(console_req_t *rq);

typedef struct {
    const char             *path;           /* after base_path */
    int                     post;           /* else GET and HEAD */
    console_handler_pt      handler;
} console_route_t;

/* The pages (console_pages.c), ended by a NULL path. */
extern const console_route_t  console_routes[];

/* The value of form field name (NULL when absent). */
const char *console_form(const console_req_t *rq, const char *name);

/* The value of query parameter name (NULL when absent). */
const char *console_query(const console_req_t *rq, const char *name);

/* The page frame of this request (lang, base, staff, CSRF token). */
void console_page_init(const console_req_t *rq, console_page_t *pg,
    const char *self);

/* A complete error page: heading "Error", the message, status. */
int console_error(console_req_t *rq, unsigned status, console_str_t msg);

/*
 * 303 See Other to BASE followed by the printf result (its values already
 * percent-encoded where needed).
 */
int console_redirect(console_req_t *rq, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif /* ZT_CONSOLE_H */
