/*
 * Test cases for policies: parse .cases files (same lexical rules as
 * policies) into pol_input_t values with the expected decision, and
 * compare a decision with its expectation.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "policy_int.h"
#include "cases.h"

struct pol_cases_s {
    pol_arena_t      arena;
    pol_case_t      *cases;
    size_t           n, cap;
};

typedef struct {
    pol_lexer_t      lx;
    pol_tok_t        tok;
    const char      *file;
    pol_cases_t     *cs;
    pol_diags_t     *diags;
    unsigned         prev_line;
} pol_cparser_t;

#define POL_CASE_REQUEST    0x01u
#define POL_CASE_EXPECT     0x02u
#define POL_CASE_TIME       0x04u

static const char  *pol_case_words[] = {
    "request", "source", "time", "user", "auth", "device", "posture",
    "blocklisted", "new_address", "trust", "expect", NULL
};

static void pol_cnext(pol_cparser_t *p);
static void pol_cerror(pol_cparser_t *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void pol_cexpected(pol_cparser_t *p, const char *what);
static int pol_cword_in(const pol_tok_t *t, const char **words);
static void pol_csync(pol_cparser_t *p);
static int pol_cparse(pol_cparser_t *p);
static int pol_cparse_case(pol_cparser_t *p, pol_case_t *c);
static int pol_cparse_line(pol_cparser_t *p, pol_case_t *c, unsigned *seen,
    int64_t *mfa_age, int64_t *posture_age, int64_t *patch_age);
static int pol_cparse_url(pol_cparser_t *p, pol_case_t *c);
static int pol_cstring(pol_cparser_t *p, pol_str_t *out);
static int pol_parse_rfc3339(const char *s, size_t len, int64_t *t);
static int64_t pol_days_from_civil(int64_t y, unsigned m, unsigned d);
static int pol_cases_text(pol_cases_t *cs, const char *name,
    const char *text, size_t len, pol_diags_t *diags);
static pol_cases_t *pol_cases_new(void);


static pol_cases_t *
pol_cases_new(void)
{
    return calloc(1, sizeof(pol_cases_t));
}


void
pol_cases_free(pol_cases_t *cs)
{
    if (cs == NULL) {
        return;
    }
    free(cs->cases);
    pol_arena_free(&cs->arena);
    free(cs);
}


size_t
pol_cases_count(const pol_cases_t *cs)
{
    return cs->n;
}


const pol_case_t *
pol_cases_get(const pol_cases_t *cs, size_t i)
{
    return (i < cs->n) ? &cs->cases[i] : NULL;
}


const pol_case_t *
pol_cases_find(const pol_cases_t *cs, const char *name)
{
    size_t  i, len;

    len = strlen(name);
    for (i = 0; i < cs->n; i++) {
        if (cs->cases[i].name.len == len
            && memcmp(cs->cases[i].name.data, name, len) == 0)
        {
            return &cs->cases[i];
        }
    }
    return NULL;
}


static void
pol_cnext(pol_cparser_t *p)
{
    p->prev_line = p->tok.line;
    pol_lexer_next(&p->lx, &p->tok);
}


static void
pol_cerror(pol_cparser_t *p, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    pol_diag_vadd(p->diags, 0, p->file, p->tok.line, p->tok.col, fmt, ap);
    va_end(ap);
}


static void
pol_cexpected(pol_cparser_t *p, const char *what)
{
    const pol_tok_t  *t;
    int               n;

    t = &p->tok;
    n = (int) (t->len > 40 ? 40 : t->len);

    if (t->kind == POL_TOK_EOF) {
        pol_cerror(p, "expected %s, found end of file", what);
    } else if (t->kind == POL_TOK_IDENT) {
        pol_cerror(p, "expected %s, found \"%.*s\"", what, n, t->text);
    } else {
        pol_cerror(p, "expected %s, found %s %.*s", what,
                   pol_tok_kind_name(t->kind), n, t->text);
    }
}


static int
pol_cword_in(const pol_tok_t *t, const char **words)
{
    int  i;

    for (i = 0; words[i] != NULL; i++) {
        if (pol_tok_is(t, words[i])) {
            return 1;
        }
    }
    return 0;
}


/* Skip to the next case line keyword at the start of a line, or "}". */
static void
pol_csync(pol_cparser_t *p)
{
    while (p->tok.kind != POL_TOK_EOF && p->tok.kind != POL_TOK_RBRACE) {
        if (p->tok.line != p->prev_line && pol_cword_in(&p->tok,
                                                        pol_case_words))
        {
            return;
        }
        pol_cnext(p);
    }
}


static int
pol_cstring(pol_cparser_t *p, pol_str_t *out)
{
    char  *s;

    s = pol_strndup(&p->cs->arena, p->tok.str.data, p->tok.str.len);
    if (s == NULL) {
        pol_cerror(p, "out of memory");
        return -1;
    }
    out->data = s;
    out->len = p->tok.str.len;
    pol_cnext(p);
    return 0;
}


static int64_t
pol_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t   era;
    unsigned  yoe, doy, doe;

    y -= (m <= 2);
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned) (y - era * 400);
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t) doe - 719468;
}


/* RFC 3339: 2026-11-24T10:00:00+08:00, optional fraction, Z or offset. */
static int
pol_parse_rfc3339(const char *s, size_t len, int64_t *t)
{
    unsigned  v[6], lim[6] = { 9999, 12, 31, 23, 59, 60 };
    size_t    i, k, w;
    char      seps[6] = { '-', '-', 'T', ':', ':', 0 };
    int       off, sign;

    i = 0;
    for (k = 0; k < 6; k++) {
        w = (k == 0) ? 4 : 2;
        if (i + w > len) {
            return -1;
        }
        v[k] = 0;
        for (; w > 0; w--, i++) {
            if (s[i] < '0' || s[i] > '9') {
                return -1;
            }
            v[k] = v[k] * 10 + (unsigned) (s[i] - '0');
        }
        if (v[k] > lim[k] || ((k == 1 || k == 2) && v[k] == 0)) {
            return -1;
        }
        if (seps[k] != 0) {
            if (i >= len || (s[i] != seps[k]
                             && !(k == 2 && (s[i] == 't' || s[i] == ' '))))
            {
                return -1;
            }
            i++;
        }
    }

    if (i < len && s[i] == '.') {
        i++;
        if (i >= len || s[i] < '0' || s[i] > '9') {
            return -1;
        }
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
        }
    }

    if (i < len && (s[i] == 'Z' || s[i] == 'z') && i + 1 == len) {
        off = 0;
    } else if (i + 6 == len && (s[i] == '+' || s[i] == '-')
               && s[i + 3] == ':')
    {
        sign = (s[i] == '-') ? -1 : 1;
        for (k = 1; k < 6; k++) {
            if (k != 3 && (s[i + k] < '0' || s[i + k] > '9')) {
                return -1;
            }
        }
        off = ((s[i + 1] - '0') * 10 + (s[i + 2] - '0')) * 3600
              + ((s[i + 4] - '0') * 10 + (s[i + 5] - '0')) * 60;
        off *= sign;
    } else {
        return -1;
    }

    *t = pol_days_from_civil(v[0], v[1], v[2]) * 86400
         + (int64_t) v[3] * 3600 + v[4] * 60 + v[5] - off;
    return 0;
}


static int
pol_cparse_url(pol_cparser_t *p, pol_case_t *c)
{
    const char  *u, *e, *s, *h, *q;
    size_t       len;
    char        *copy;

    u = p->tok.str.data;
    len = p->tok.str.len;
    e = u + len;

    s = NULL;
    if (len >= 3) {
        for (q = u; q + 3 <= e; q++) {
            if (q[0] == ':' && q[1] == '/' && q[2] == '/') {
                s = q + 3;
                break;
            }
            if (*q == '/') {
                break;
            }
        }
    }
    h = s ? s : u;

    for (q = h; q < e && *q != '/' && *q != '?' && *q != '#'; q++) {
        /* the host */
    }

    if (q == h) {
        pol_cerror(p, "invalid URL %.*s; expected "
                   "\"https://host/path\"", (int) (p->tok.len > 60 ? 60
                                                   : p->tok.len),
                   p->tok.text);
        return -1;
    }

    copy = pol_strndup(&p->cs->arena, h, (size_t) (e - h));
    if (copy == NULL) {
        pol_cerror(p, "out of memory");
        return -1;
    }

    c->input.host.data = copy;
    c->input.host.len = (size_t) (q - h);

    if (q < e && *q == '/') {
        s = q;
        while (q < e && *q != '?' && *q != '#') {
            q++;
        }
        c->input.path.data = copy + (s - h);
        c->input.path.len = (size_t) (q - s);
    } else {
        c->input.path.data = "/";
        c->input.path.len = 1;
    }

    pol_cnext(p);
    return 0;
}


static int
pol_cparse_line(pol_cparser_t *p, pol_case_t *c, unsigned *seen,
    int64_t *mfa_age, int64_t *posture_age, int64_t *patch_age)
{
    pol_input_t  *in;
    pol_tok_t     kw;
    int           bit, v;

    in = &c->input;
    kw = p->tok;

    if (pol_tok_is(&kw, "request")) {
        if (*seen & POL_CASE_REQUEST) {
            pol_cerror(p, "case has a second request line");
            pol_cnext(p);
            return -1;
        }
        *seen |= POL_CASE_REQUEST;
        pol_cnext(p);
        if (p->tok.kind != POL_TOK_IDENT && p->tok.kind != POL_TOK_STRING) {
            pol_cexpected(p, "an HTTP method such as GET");
            return -1;
        }
        if (pol_cstring(p, &in->method) != 0) {
            return -1;
        }
        if (p->tok.kind != POL_TOK_STRING) {
            pol_cexpected(p, "a quoted URL such as \"https://host/path\"");
            return -1;
        }
        return pol_cparse_url(p, c);
    }

    if (pol_tok_is(&kw, "source")) {
        pol_cnext(p);
        if (p->tok.kind != POL_TOK_ADDR
            || p->tok.prefix != (p->tok.family == 4 ? 32u : 128u))
        {
            pol_cexpected(p, "an IPv4 or IPv6 address");
            return -1;
        }
        in->addr_family = p->tok.family;
        memcpy(in->addr, p->tok.addr, 16);
        pol_cnext(p);
        return 0;
    }

    if (pol_tok_is(&kw, "time")) {
        pol_cnext(p);
        if (p->tok.kind != POL_TOK_STRING
            || pol_parse_rfc3339(p->tok.str.data, p->tok.str.len, &in->now)
               != 0)
        {
            pol_cexpected(p, "an RFC 3339 time such as "
                          "\"2026-11-24T10:00:00+08:00\"");
            return -1;
        }
        *seen |= POL_CASE_TIME;
        pol_cnext(p);
        return 0;
    }

    if (pol_tok_is(&kw, "user")) {
        pol_cnext(p);
        if (p->tok.kind != POL_TOK_STRING) {
            pol_cexpected(p, "a quoted user name");
            return -1;
        }
        if (pol_cstring(p, &in->user) != 0) {
            return -1;
        }
        in->authenticated = 1;
        if (!pol_tok_is(&p->tok, "groups")) {
            return 0;
        }
        pol_cnext(p);
        for ( ;; ) {
            if (p->tok.kind != POL_TOK_STRING) {
                pol_cexpected(p, "a quoted group name");
                return -1;
            }
            if (in->ngroups >= POL_MAX_GROUPS) {
                pol_cerror(p, "a case can give at most %d groups",
                           POL_MAX_GROUPS);
                return -1;
            }
            if (pol_cstring(p, &in->groups[in->ngroups++]) != 0) {
                return -1;
            }
            if (p->tok.kind != POL_TOK_COMMA) {
                return 0;
            }
            pol_cnext(p);
        }
    }

    if (pol_tok_is(&kw, "auth")) {
        pol_cnext(p);
        for ( ;; ) {
            if (pol_tok_is(&p->tok, "mfa_age")) {
                break;
            }
            bit = (p->tok.kind == POL_TOK_IDENT)
                  ? pol_auth_method_bit(p->tok.text, p->tok.len) : 0;
            if (bit == 0) {
                pol_cexpected(p, "an authentication method (password, "
                              "totp, webauthn or cert)");
                return -1;
            }
            in->auth_methods |= (unsigned) bit;
            pol_cnext(p);
            if (p->tok.kind != POL_TOK_COMMA) {
                break;
            }
            pol_cnext(p);
        }
        if (pol_tok_is(&p->tok, "mfa_age")) {
            pol_cnext(p);
            if (p->tok.kind != POL_TOK_DURATION) {
                pol_cexpected(p, "a duration such as 5m after mfa_age");
                return -1;
            }
            *mfa_age = p->tok.num;
            pol_cnext(p);
        }
        return 0;
    }

    if (pol_tok_is(&kw, "device")) {
        pol_cnext(p);
        v = (p->tok.kind == POL_TOK_IDENT)
            ? pol_keyword_value(POL_T_STATUS, p->tok.text, p->tok.len) : -1;
        if (v < 0) {
            pol_cexpected(p, "a device status (none, unknown, active, "
                          "quarantined or revoked)");
            return -1;
        }
        in->device_status = (pol_device_status_t) v;
        pol_cnext(p);
        for ( ;; ) {
            if (pol_tok_is(&p->tok, "owner") || pol_tok_is(&p->tok, "id")) {
                bit = pol_tok_is(&p->tok, "owner");
                pol_cnext(p);
                if (p->tok.kind != POL_TOK_STRING) {
                    pol_cexpected(p, "a quoted string");
                    return -1;
                }
                if (pol_cstring(p, bit ? &in->device_owner : &in->device_id)
                    != 0)
                {
                    return -1;
                }
                continue;
            }
            return 0;
        }
    }

    if (pol_tok_is(&kw, "posture")) {
        pol_cnext(p);
        in->disk_encrypted = POL_FALSE;
        in->firewall = POL_FALSE;
        in->screen_lock = POL_FALSE;
        in->endpoint_protection = POL_FALSE;
        in->posture_stale = 0;
        *posture_age = 0;
        for ( ;; ) {
            if (pol_tok_is(&p->tok, "stale")) {
                in->posture_stale = 1;
            } else if (pol_tok_is(&p->tok, "disk_encrypted")) {
                in->disk_encrypted = POL_TRUE;
            } else if (pol_tok_is(&p->tok, "firewall")) {
                in->firewall = POL_TRUE;
            } else if (pol_tok_is(&p->tok, "screen_lock")) {
                in->screen_lock = POL_TRUE;
            } else if (pol_tok_is(&p->tok, "endpoint_protection")) {
                in->endpoint_protection = POL_TRUE;
            } else if (p->tok.kind == POL_TOK_COMMA) {
                /* between flags */
            } else if (pol_tok_is(&p->tok, "age")
                       || pol_tok_is(&p->tok, "patch_age"))
            {
                bit = pol_tok_is(&p->tok, "age");
                pol_cnext(p);
                if (p->tok.kind != POL_TOK_DURATION) {
                    pol_cexpected(p, "a duration such as 2h");
                    return -1;
                }
                *(bit ? posture_age : patch_age) = p->tok.num;
            } else if (pol_tok_is(&p->tok, "os")
                       || pol_tok_is(&p->tok, "os_version"))
            {
                bit = pol_tok_is(&p->tok, "os");
                pol_cnext(p);
                if (p->tok.kind != POL_TOK_STRING) {
                    pol_cexpected(p, "a quoted string");
                    return -1;
                }
                if (pol_cstring(p, bit ? &in->os : &in->os_version) != 0) {
                    return -1;
                }
                continue;
            } else if (p->tok.kind == POL_TOK_IDENT
                       && !pol_cword_in(&p->tok, pol_case_words)
                       && p->tok.line == kw.line)
            {
                pol_cexpected(p, "a posture flag (disk_encrypted, firewall, "
                              "screen_lock, endpoint_protection, stale) or "
                              "age, patch_age, os, os_version");
                return -1;
            } else {
                return 0;
            }
            pol_cnext(p);
        }
    }

    if (pol_tok_is(&kw, "blocklisted") || pol_tok_is(&kw, "new_address")) {
        if (pol_tok_is(&kw, "blocklisted")) {
            in->blocklisted = 1;
        } else {
            in->new_address = 1;
        }
        pol_cnext(p);
        return 0;
    }

    if (pol_tok_is(&kw, "trust")) {
        pol_cnext(p);
        if (p->tok.kind != POL_TOK_NUMBER || p->tok.num > 100) {
            pol_cexpected(p, "a trust score from 0 to 100");
            return -1;
        }
        in->trust_score = (int) p->tok.num;
        pol_cnext(p);
        return 0;
    }

    if (pol_tok_is(&kw, "expect")) {
        if (*seen & POL_CASE_EXPECT) {
            pol_cerror(p, "case has a second expect line");
            pol_cnext(p);
            return -1;
        }
        *seen |= POL_CASE_EXPECT;
        pol_cnext(p);
        if (pol_tok_is(&p->tok, "allow")) {
            c->expect = POL_ALLOW;
        } else if (pol_tok_is(&p->tok, "deny")) {
            c->expect = POL_DENY;
        } else if (pol_tok_is(&p->tok, "step-up")) {
            c->expect = POL_STEP_UP;
        } else if (pol_tok_is(&p->tok, "login")) {
            c->expect = POL_LOGIN;
        } else {
            pol_cexpected(p, "an outcome (allow, deny, step-up or login)");
            return -1;
        }
        pol_cnext(p);
        if (pol_tok_is(&p->tok, "status")) {
            pol_cnext(p);
            if (p->tok.kind != POL_TOK_NUMBER || p->tok.num < 100
                || p->tok.num > 599)
            {
                pol_cexpected(p, "an HTTP status such as 403");
                return -1;
            }
            c->expect_status = (unsigned) p->tok.num;
            pol_cnext(p);
        }
        if (pol_tok_is(&p->tok, "rule")) {
            pol_cnext(p);
            if (pol_tok_is(&p->tok, "none")) {
                c->expect_rule_kind = POL_EXPECT_RULE_NONE;
                pol_cnext(p);
                return 0;
            }
            if (p->tok.kind != POL_TOK_STRING) {
                pol_cexpected(p, "a quoted rule name or none");
                return -1;
            }
            c->expect_rule_kind = POL_EXPECT_RULE_NAMED;
            return pol_cstring(p, &c->expect_rule);
        }
        return 0;
    }

    pol_cexpected(p, "a case line (request, source, time, user, auth, "
                  "device, posture, blocklisted, new_address, trust or "
                  "expect) or \"}\"");
    pol_cnext(p);
    return -1;
}


static int
pol_cparse_case(pol_cparser_t *p, pol_case_t *c)
{
    unsigned   seen, errors, line, col;
    int64_t    mfa_age, posture_age, patch_age;

    errors = p->diags->nerrors;
    line = p->tok.line;
    col = p->tok.col;
    c->file = p->file;
    c->line = line;
    pol_input_init(&c->input);
    c->input.method.data = "GET";
    c->input.method.len = 3;
    c->input.path.data = "/";
    c->input.path.len = 1;
    pol_cnext(p);

    if (p->tok.kind != POL_TOK_STRING) {
        pol_cexpected(p, "a quoted case name after case");
        return -1;
    }
    if (pol_cstring(p, &c->name) != 0) {
        return -1;
    }
    if (p->tok.kind != POL_TOK_LBRACE) {
        pol_cexpected(p, "\"{\" to open the case");
        return -1;
    }
    pol_cnext(p);

    seen = 0;
    mfa_age = -1;
    posture_age = -1;
    patch_age = -1;

    for ( ;; ) {
        if (p->tok.kind == POL_TOK_RBRACE) {
            pol_cnext(p);
            break;
        }
        if (p->tok.kind == POL_TOK_EOF) {
            pol_cerror(p, "unexpected end of file; expected \"}\" to close "
                       "case \"%.*s\" opened at line %u", (int) c->name.len,
                       c->name.data, line);
            return -1;
        }
        if (pol_cparse_line(p, c, &seen, &mfa_age, &posture_age, &patch_age)
            != 0)
        {
            pol_csync(p);
        }
    }

    if (p->diags->nerrors != errors) {
        return -1;
    }

    if (!(seen & POL_CASE_REQUEST) || !(seen & POL_CASE_EXPECT)) {
        pol_diag_add(p->diags, 0, p->file, line, col, "case \"%.*s\" needs "
                     "a request line and an expect line",
                     (int) c->name.len, c->name.data);
        return -1;
    }

    if (!(seen & POL_CASE_TIME)) {
        c->input.now = POL_CASE_DEFAULT_NOW;
    }
    /* ages are relative to now, whichever line came first */
    if (mfa_age >= 0) {
        c->input.mfa_time = c->input.now - mfa_age;
    }
    if (posture_age >= 0) {
        c->input.posture_time = c->input.now - posture_age;
    }
    if (patch_age >= 0) {
        c->input.patch_time = c->input.now - patch_age;
    }
    /* 0 means "never": keep a real event at the epoch distinct */
    if (mfa_age >= 0 && c->input.mfa_time == 0) {
        c->input.mfa_time = -1;
    }
    if (posture_age >= 0 && c->input.posture_time == 0) {
        c->input.posture_time = -1;
    }
    if (patch_age >= 0 && c->input.patch_time == 0) {
        c->input.patch_time = -1;
    }

    return 0;
}


static int
pol_cparse(pol_cparser_t *p)
{
    pol_cases_t  *cs;
    pol_case_t   *nc, c;
    unsigned      errors;
    size_t        cap;

    cs = p->cs;
    errors = p->diags->nerrors;
    pol_cnext(p);

    while (p->tok.kind != POL_TOK_EOF) {
        if (!pol_tok_is(&p->tok, "case")) {
            pol_cexpected(p, "case \"name\" { ... }");
            pol_cnext(p);
            while (p->tok.kind != POL_TOK_EOF
                   && !(pol_tok_is(&p->tok, "case")
                        && p->tok.line != p->prev_line))
            {
                pol_cnext(p);
            }
            continue;
        }

        memset(&c, 0, sizeof(c));
        if (pol_cparse_case(p, &c) != 0) {
            while (p->tok.kind != POL_TOK_EOF
                   && !(pol_tok_is(&p->tok, "case")
                        && p->tok.line != p->prev_line))
            {
                pol_cnext(p);
            }
            continue;
        }

        if (cs->n == cs->cap) {
            cap = cs->cap ? cs->cap * 2 : 16;
            nc = realloc(cs->cases, cap * sizeof(pol_case_t));
            if (nc == NULL) {
                pol_cerror(p, "out of memory");
                return -1;
            }
            cs->cases = nc;
            cs->cap = cap;
        }
        cs->cases[cs->n++] = c;
    }

    return (p->diags->nerrors > errors) ? -1 : 0;
}


static int
pol_cases_text(pol_cases_t *cs, const char *name, const char *text,
    size_t len, pol_diags_t *diags)
{
    pol_cparser_t   p;
    char           *copy, *fname;

    if (len > POL_MAX_FILE_SIZE) {
        pol_diag_add(diags, 0, name, 0, 0,
                     "file is larger than 4 MiB; refusing to load it");
        return -1;
    }

    fname = pol_strndup(&cs->arena, name, strlen(name));
    copy = pol_strndup(&cs->arena, text, len);
    if (fname == NULL || copy == NULL) {
        pol_diag_add(diags, 0, name, 0, 0, "out of memory");
        return -1;
    }

    memset(&p, 0, sizeof(p));
    p.file = fname;
    p.cs = cs;
    p.diags = diags;
    pol_lexer_init(&p.lx, fname, copy, len, &cs->arena, diags);

    return pol_cparse(&p);
}


int
pol_cases_load_string(const char *name, const char *text, size_t len,
    pol_cases_t **out, pol_diags_t *diags)
{
    pol_cases_t  *cs;
    pol_diags_t   local;

    if (diags == NULL) {
        diags = &local;
    }
    memset(diags, 0, sizeof(*diags));
    *out = NULL;

    cs = pol_cases_new();
    if (cs == NULL) {
        pol_diag_add(diags, 0, name, 0, 0, "out of memory");
        return -1;
    }

    if (pol_cases_text(cs, name, text, len, diags) != 0) {
        pol_cases_free(cs);
        return -1;
    }

    *out = cs;
    return 0;
}


int
pol_cases_load(const char *path, pol_cases_t **out, pol_diags_t *diags)
{
    pol_cases_t   *cs;
    pol_diags_t    local;
    struct stat    st;
    char         **names, *text;
    size_t         n, i, len;
    int            rc;

    if (diags == NULL) {
        diags = &local;
    }
    memset(diags, 0, sizeof(*diags));
    *out = NULL;

    if (stat(path, &st) != 0) {
        pol_diag_add(diags, 0, path, 0, 0, "cannot open: %s",
                     strerror(errno));
        return -1;
    }

    cs = pol_cases_new();
    if (cs == NULL) {
        pol_diag_add(diags, 0, path, 0, 0, "out of memory");
        return -1;
    }

    rc = 0;

    if (!S_ISDIR(st.st_mode)) {
        if (pol_read_file(path, &text, &len, diags) != 0) {
            rc = -1;
        } else {
            rc = pol_cases_text(cs, path, text, len, diags);
            free(text);
        }

    } else if (pol_list_dir(path, ".cases", &names, &n, diags) != 0) {
        rc = -1;

    } else {
        if (n == 0) {
            pol_diag_add(diags, 0, path, 0, 0,
                         "no *.cases files in this directory");
            rc = -1;
        }
        for (i = 0; i < n; i++) {
            if (pol_read_file(names[i], &text, &len, diags) != 0) {
                rc = -1;
                continue;
            }
            if (pol_cases_text(cs, names[i], text, len, diags) != 0) {
                rc = -1;
            }
            free(text);
        }
        pol_free_list(names, n);
    }

    if (rc != 0) {
        pol_cases_free(cs);
        return -1;
    }

    *out = cs;
    return 0;
}


int
pol_case_check(const pol_case_t *c, const pol_decision_t *d, char *why,
    size_t size)
{
    char    exp[200], got[300];
    size_t  n;
    int     ok;

    ok = (d->outcome == c->expect);
    if (c->expect_status != 0 && d->status != c->expect_status) {
        ok = 0;
    }
    if (c->expect_rule_kind == POL_EXPECT_RULE_NAMED
        && (d->rule.len != c->expect_rule.len
            || memcmp(d->rule.data, c->expect_rule.data, d->rule.len) != 0))
    {
        ok = 0;
    }
    if (c->expect_rule_kind == POL_EXPECT_RULE_NONE && d->rule.len != 0) {
        ok = 0;
    }

    if (ok) {
        if (size) {
            why[0] = '\0';
        }
        return 1;
    }

    n = (size_t) snprintf(exp, sizeof(exp), "%s", pol_outcome_name(c->expect));
    if (c->expect_status != 0) {
        n += (size_t) snprintf(exp + n, sizeof(exp) - n, " %u",
                               c->expect_status);
    }
    if (c->expect_rule_kind == POL_EXPECT_RULE_NAMED && n < sizeof(exp)) {
        snprintf(exp + n, sizeof(exp) - n, " by \"%.*s\"",
                 (int) (c->expect_rule.len > 100 ? 100
                                                 : c->expect_rule.len),
                 c->expect_rule.data);
    } else if (c->expect_rule_kind == POL_EXPECT_RULE_NONE
               && n < sizeof(exp))
    {
        snprintf(exp + n, sizeof(exp) - n, " by no rule (default deny)");
    }

    n = (size_t) snprintf(got, sizeof(got), "%s", pol_outcome_name(d->outcome));
    if (c->expect_status != 0) {
        n += (size_t) snprintf(got + n, sizeof(got) - n, " %u", d->status);
    }
    if (d->rule.len != 0 && n < sizeof(got)) {
        snprintf(got + n, sizeof(got) - n, " by \"%.*s\" (%.*s:%u)",
                 (int) (d->rule.len > 100 ? 100 : d->rule.len),
                 d->rule.data, (int) (d->file.len > 100 ? 100 : d->file.len),
                 d->file.data, d->line);
    } else if (n < sizeof(got)) {
        snprintf(got + n, sizeof(got) - n, " by no rule (default deny)");
    }

    snprintf(why, size, "expected %s, got %s", exp, got);
    return 0;
}
