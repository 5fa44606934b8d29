/*
 * The sign-in portal: login (user, password, TOTP), step-up (a fresh TOTP
 * code), logout and the JWKS document, served by trustd over HTTP on a
 * Unix socket that only nginx may use.  It runs in its own libmicrohttpd
 * threads and shares nothing with the decision loop but the store (each
 * call its own transaction) and the keys (read-only).
 *
 * The second half of this header declares the pure helpers of
 * portal_util.c, portal_i18n.c and portal_html.c, shared by portal.c and
 * tests/unit/test_portal.c, and by ztconsole (console/), which reuses the
 * HTML buffer and escaping, the language choice, cookie and hex parsing.
 */

#ifndef ZT_PORTAL_H
#define ZT_PORTAL_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "identity.h"
#include "store.h"

typedef struct portal_s  portal_t;

/*
 * Bind cfg->portal_listen (Unix socket, mode 0660; remove a stale socket
 * only if nothing answers), start libmicrohttpd on it with its own thread
 * (MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL,
 * MHD_OPTION_LISTEN_SOCKET, connection limit and timeout set), using st
 * and keys (both outlive the portal).  Returns 0 or -1 with a message in
 * err.
 */
int portal_start(portal_t **out, const config_t *cfg, store_t *st,
    const id_keys_t *keys, char *err, size_t errsize);

/*
 * Apply a reloaded configuration (hosts, limits, lifetimes) safely while
 * serving (mutex).
 */
void portal_reconfigure(portal_t *p, const config_t *cfg);

/* Stop serving, join the thread, unlink the socket, free.  p may be NULL. */
void portal_stop(portal_t *p);


/* ---- internals: pure helpers (portal_util.c) ------------------------ */

#define PORTAL_NEXT_MAX         2048    /* longest next URL kept */
#define PORTAL_FORM_MAX         8192    /* largest form body */
#define PORTAL_RATE_SLOTS       4096
#define PORTAL_RATE_PROBES      8
#define PORTAL_RATE_WINDOW      60      /* seconds */
#define PORTAL_SOURCE_MAX       64      /* client address, with NUL */

#define PORTAL_FOUND            0
#define PORTAL_MISSING          1
#define PORTAL_INVALID          (-1)    /* duplicate, overlong, malformed */

/*
 * 1 if next (len bytes; may hold NUL bytes, which refuse it) is a safe
 * place to send the browser after sign-in, else 0.  Accepted: a local
 * path "/..." whose start, after one round of percent-decoding, is still
 * one "/" not followed by "/" or "\"; or "https://host[:port]..." whose
 * authority equals one of the nhosts hosts (case-insensitively), without
 * userinfo.  Backslashes, spaces and control characters (raw or
 * percent-encoded in the path) refuse it anywhere.
 */
int portal_next_ok(const char *next, size_t len, const char (*hosts)[256],
    size_t nhosts);

/*
 * Look name up in an application/x-www-form-urlencoded body (len bytes)
 * and decode it ("+" and %XX) into out (size bytes, NUL-terminated).
 * Returns PORTAL_FOUND, PORTAL_MISSING, or PORTAL_INVALID for a name that
 * occurs twice, a value that does not fit, a malformed escape or a
 * decoded NUL.
 */
int portal_form_get(const char *body, size_t len, const char *name,
    char *out, size_t size);

/*
 * Look a cookie up in one Cookie header value.  Returns PORTAL_FOUND with
 * the value copied to out (NUL-terminated; surrounding double quotes
 * removed), PORTAL_MISSING, or PORTAL_INVALID for a cookie sent twice or a
 * value that does not fit.  *count (may be NULL) is increased by the
 * number of occurrences, so that several Cookie headers can be checked
 * together.
 */
int portal_cookie_get(const char *header, const char *name, char *out,
    size_t size, unsigned *count);

/* Percent-encode s for a query value into out; -1 if it does not fit. */
int portal_url_encode(const char *s, char *out, size_t size);

/* 1 if s is exactly n lowercase hex digits, else 0. */
int portal_is_hex(const char *s, size_t n);

/* Decode 2 * n hex digits into n bytes; -1 on a bad digit. */
int portal_hex_decode(const char *s, uint8_t *out, size_t n);

/* 1 if a and b (len bytes each) are equal, in time independent of them. */
int portal_ct_equal(const void *a, const void *b, size_t len);

/*
 * Per-source attempt limiter: a fixed table, fixed one-minute windows.
 * Not locked: the caller serializes.
 */
typedef struct {
    char        key[PORTAL_SOURCE_MAX];
    int64_t     window;                 /* start of the current window */
    unsigned    count;
} portal_rate_slot_t;

typedef struct {
    portal_rate_slot_t  slots[PORTAL_RATE_SLOTS];
} portal_rate_t;

void portal_rate_init(portal_rate_t *r);

/*
 * Count one attempt from source at now (seconds).  Returns 1 if it is
 * within limit attempts in the current window, 0 if it is over.  When
 * the table is full around the source's slot, the slot with the oldest
 * window is taken over.
 */
int portal_rate_hit(portal_rate_t *r, const char *source, int64_t now,
    unsigned limit);


/* ---- internals: posture reports (portal_util.c) --------------------- */

#define PORTAL_POSTURE_MAX      4096    /* largest report body */
#define PORTAL_TIME_MAX         253402300799LL  /* 9999-12-31T23:59:59Z */

/*
 * Parse and check a device agent's posture report: a JSON object (len
 * bytes, at most PORTAL_POSTURE_MAX) with only these members:
 *     os, os_version       string, printable ASCII, at most 64 bytes
 *     patch_time           integer unix time, 0..PORTAL_TIME_MAX, or null
 *     disk_encrypted, firewall, screen_lock, endpoint_protection
 *                          true, false, or null (not reported)
 *     reported_at          integer unix time, 1..PORTAL_TIME_MAX (required)
 * A member left out is "unknown" (""/0/unreported).  Duplicate members,
 * unknown members and wrong types are refused.  On success *out holds the
 * report with fp zero, received_at 0 and source "agent"; the caller says
 * which device it is for.  Returns 0, or -1 with a message naming the
 * offending member in err (errsize bytes).  Allocates only inside
 * jansson, and frees what it allocated.
 */
int portal_posture_parse(const char *json, size_t len, store_posture_t *out,
    char *err, size_t errsize);


/* ---- internals: languages and strings (portal_i18n.c) --------------- */

typedef enum {
    PORTAL_LANG_EN = 0,
    PORTAL_LANG_ZH_TW,
    PORTAL_NLANGS
} portal_lang_t;

typedef enum {
    PORTAL_S_TITLE_LOGIN = 0,
    PORTAL_S_TITLE_STEPUP,
    PORTAL_S_TITLE_LOGOUT,
    PORTAL_S_TITLE_SIGNED_OUT,
    PORTAL_S_TITLE_ERROR,
    PORTAL_S_LABEL_USER,
    PORTAL_S_LABEL_PASSWORD,
    PORTAL_S_LABEL_CODE,
    PORTAL_S_HINT_CODE,
    PORTAL_S_BUTTON_SIGN_IN,
    PORTAL_S_BUTTON_VERIFY,
    PORTAL_S_BUTTON_SIGN_OUT,
    PORTAL_S_STEPUP_INTRO,
    PORTAL_S_SIGNED_IN_AS,
    PORTAL_S_LOGOUT_INTRO,
    PORTAL_S_SIGNED_OUT,
    PORTAL_S_LINK_SIGN_IN,
    PORTAL_S_ERR_FAILED,
    PORTAL_S_ERR_LOCKED_ONE,
    PORTAL_S_ERR_LOCKED_MANY,      /* printf: %u minutes */
    PORTAL_S_ERR_NO_TOTP,
    PORTAL_S_ERR_REPLAY,
    PORTAL_S_ERR_CODE,
    PORTAL_S_ERR_CSRF,
    PORTAL_S_ERR_RATE,
    PORTAL_S_ERR_NOT_FOUND,
    PORTAL_S_ERR_METHOD,
    PORTAL_S_ERR_TOO_LARGE,
    PORTAL_S_ERR_BAD_REQUEST,
    PORTAL_S_ERR_INTERNAL,
    PORTAL_S_ERR_HEADING,
    PORTAL_S_WA_TITLE_REGISTER,
    PORTAL_S_WA_TITLE_LOGIN,
    PORTAL_S_WA_TITLE_STEPUP,
    PORTAL_S_WA_ACCOUNT,
    PORTAL_S_WA_KEY_NAME,
    PORTAL_S_WA_DEFAULT_NAME,
    PORTAL_S_WA_BUTTON,
    PORTAL_S_WA_USE_CODE,
    PORTAL_S_WA_USE_KEY,
    PORTAL_S_WA_REGISTERED,
    PORTAL_S_WA_SIGN_IN_WITH_IT,
    PORTAL_S_WA_KEYS_TITLE,
    PORTAL_S_WA_KEYS_NONE,
    PORTAL_S_WA_KEYS_REMOVE,
    PORTAL_S_WA_KEYS_SUSPENDED,
    PORTAL_S_WA_KEYS_LAST_USED,
    PORTAL_S_WA_KEYS_NEVER,
    PORTAL_NSTRINGS
} portal_str_t;

/*
 * The language for an Accept-Language value (may be NULL): the
 * supported range with the highest q wins, earlier on ties; zh-TW,
 * zh-Hant, zh-HK, zh-MO and bare zh choose Traditional Chinese,
 * Simplified tags (zh-CN, zh-SG, zh-Hans) are not supported; everything
 * else, and "*", is English.
 */
portal_lang_t portal_lang_pick(const char *accept);

/* The BCP 47 tag for the lang attribute and Content-Language. */
const char *portal_lang_tag(portal_lang_t lang);

/* The string id in lang (never NULL). */
const char *portal_str(portal_lang_t lang, portal_str_t id);


/* ---- internals: pages (portal_html.c) ------------------------------- */

typedef struct {
    char       *p;
    size_t      len;
    size_t      cap;
    int         overflow;
} portal_buf_t;

typedef enum {
    PORTAL_PAGE_LOGIN = 0,
    PORTAL_PAGE_STEPUP,
    PORTAL_PAGE_LOGOUT,
    PORTAL_PAGE_MESSAGE
} portal_page_kind_t;

typedef struct {
    portal_page_kind_t  kind;
    portal_lang_t       lang;
    const char         *csrf;       /* forms: hidden field value */
    const char         *next;       /* forms: hidden field value */
    const char         *user;       /* login: prefill; step-up: shown */
    const char         *error;      /* "" or NULL: none */
    portal_str_t        title;      /* message page */
    const char         *message;    /* message page body */
    int                 link_login; /* message page: link to sign in */
    int                 link_key;   /* login, step-up: offer a security
                                       key (WebAuthn configured) */
} portal_page_t;

/*
 * Append n bytes of s, or the string s, as they are (markup); sets
 * b->overflow and appends nothing when it does not fit.  Also used by
 * ztconsole's pages.
 */
void portal_buf_addn(portal_buf_t *b, const char *s, size_t n);
void portal_buf_add(portal_buf_t *b, const char *s);

/* Append s with &, <, >, " and ' escaped; sets b->overflow if full. */
void portal_html_escape(portal_buf_t *b, const char *s);

/* Render the complete HTML document for *pg into b (reset first). */
void portal_html_page(portal_buf_t *b, const portal_page_t *pg);

#endif /* ZT_PORTAL_H */
