/*
 * Policy evaluation: the hot path.  pol_eval() reads the immutable pol_t
 * and the caller's input and writes the decision; it allocates nothing,
 * parses nothing, does no I/O and takes no lock, so any number of threads
 * may evaluate the same policy at once.
 *
 * pol_explain() gives the same decision (it calls pol_eval()) and then
 * walks the app's rules again to record why, for tools.
 */

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "policy_int.h"

#define POL_DEFAULT_REASON  "no rule allows this request"

typedef struct {
    const pol_t         *pol;
    const pol_input_t   *in;
    pol_str_t            host;      /* port and trailing dot removed */
    unsigned             method;    /* POL_M_* */
    int                  hour, minute, weekday;
    uint8_t              addr[16];
    int                  family;    /* 4, 6, 0 unknown */
    int64_t              mfa_age, posture_age, patch_age;
    unsigned             ngroups;
    int                  authenticated;
} pol_ctx_t;

typedef struct {
    pol_type_t           type;
    int64_t              num;
    pol_str_t            str;
    const uint8_t       *addr;
    int                  family;
} pol_val_t;

typedef struct {
    pol_trace_t         *trace;
    size_t               n, max;
    const pol_rule_t    *rule;
} pol_tracer_t;

static const char  *pol_auth_names[] = {
    "password", "totp", "webauthn", "cert"
};

static void pol_ctx_init(pol_ctx_t *c, const pol_t *pol,
    const pol_input_t *in);
static int64_t pol_age(int64_t now, int64_t t);
static int pol_lower(int c);
static int pol_icase_eq(const char *a, const char *b, size_t len);
static int pol_host_cmp(const pol_str_t *h, const pol_str_t *in);
static int pol_select_app(const pol_ctx_t *c);
static void pol_get(const pol_ctx_t *c, const pol_operand_t *o,
    pol_val_t *v);
static int pol_node(const pol_ctx_t *c, uint32_t i);
static int pol_cmp(const pol_ctx_t *c, const pol_node_t *n);
static int pol_in(const pol_ctx_t *c, const pol_node_t *n);
static int pol_in_set(const pol_set_t *s, const pol_str_t *v);
static int pol_in_attr_set(const pol_ctx_t *c, unsigned attr,
    const pol_str_t *v);
static int pol_contains(const pol_ctx_t *c, const pol_node_t *n);
static int pol_cidr_match(const pol_set_t *s, const uint8_t *addr,
    int family);
static int pol_path_match(const pol_path_t *p, const pol_str_t *path);
static int pol_methods_match(const pol_ctx_t *c, const pol_rule_t *r);
static int pol_paths_match(const pol_ctx_t *c, const pol_rule_t *r);
static int pol_rule_match(const pol_ctx_t *c, const pol_rule_t *r);
static void pol_decide(const pol_ctx_t *c, const pol_app_t *app,
    const pol_rule_t *r, pol_decision_t *d);
static void pol_default_deny(const pol_app_t *app, pol_decision_t *d);
static const pol_segment_t *pol_find_segment(const pol_app_t *app,
    const pol_str_t *path);
static size_t pol_seen(const pol_ctx_t *c, const pol_operand_t *o,
    char *buf, size_t size);
static void pol_trace_add(pol_tracer_t *t, unsigned depth, int result,
    unsigned line, unsigned col, const char *text, const char *seen);
static void pol_trace_node(const pol_ctx_t *c, pol_tracer_t *t,
    uint32_t i, unsigned depth);
static void pol_explain_rule(const pol_ctx_t *c, pol_tracer_t *t,
    const pol_rule_t *r, const pol_decision_t *d);


void
pol_input_init(pol_input_t *in)
{
    memset(in, 0, sizeof(*in));
    in->method.data = "";
    in->host.data = "";
    in->path.data = "";
    in->user.data = "";
    in->device_id.data = "";
    in->device_owner.data = "";
    in->os.data = "";
    in->os_version.data = "";
    in->device_status = POL_DEVICE_NONE;
    in->disk_encrypted = POL_UNREPORTED;
    in->firewall = POL_UNREPORTED;
    in->screen_lock = POL_UNREPORTED;
    in->endpoint_protection = POL_UNREPORTED;
    in->trust_score = -1;
    in->posture_stale = 1;
}


static int64_t
pol_age(int64_t now, int64_t t)
{
    if (t == 0) {
        return POL_DUR_INFINITE;
    }
    return (now > t) ? now - t : 0;
}


static int
pol_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}


static int
pol_icase_eq(const char *a, const char *b, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (pol_lower((unsigned char) a[i]) != pol_lower((unsigned char) b[i]))
        {
            return 0;
        }
    }
    return 1;
}


static void
pol_ctx_init(pol_ctx_t *c, const pol_t *pol, const pol_input_t *in)
{
    static const struct {
        const char  *name;
        size_t       len;
        unsigned     bit;
    } methods[] = {
        { "GET", 3, POL_M_GET }, { "HEAD", 4, POL_M_HEAD },
        { "POST", 4, POL_M_POST }, { "PUT", 3, POL_M_PUT },
        { "DELETE", 6, POL_M_DELETE }, { "PATCH", 5, POL_M_PATCH },
        { "OPTIONS", 7, POL_M_OPTIONS }, { "CONNECT", 7, POL_M_CONNECT },
        { "TRACE", 5, POL_M_TRACE }
    };
    static const uint8_t  mapped[12] = {
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
    };
    const char  *h, *colon, *end;
    size_t       len, i;
    int64_t      t, days, secs;

    c->pol = pol;
    c->in = in;

    /* host: strip ":port" (not inside an IPv6 literal) and a final dot */
    h = in->host.data ? in->host.data : "";
    len = in->host.data ? in->host.len : 0;
    if (len > 0 && h[0] == '[') {
        end = memchr(h, ']', len);
        if (end != NULL) {
            len = (size_t) (end - h) + 1;
        }
    } else {
        colon = memchr(h, ':', len);
        if (colon != NULL && memchr(colon + 1, ':', len - (size_t) (colon - h)
                                    - 1) == NULL)
        {
            len = (size_t) (colon - h);
        }
    }
    if (len > 0 && h[len - 1] == '.') {
        len--;
    }
    c->host.data = h;
    c->host.len = len;

    c->method = POL_M_OTHER;
    for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (in->method.len == methods[i].len
            && pol_icase_eq(in->method.data, methods[i].name,
                            methods[i].len))
        {
            c->method = methods[i].bit;
            break;
        }
    }

    /* local time in the policy's fixed offset, without the C library */
    t = in->now + pol->tz_offset;
    days = t / 86400;
    secs = t % 86400;
    if (secs < 0) {
        secs += 86400;
        days--;
    }
    c->hour = (int) (secs / 3600);
    c->minute = (int) (secs % 3600 / 60);
    c->weekday = (int) (((days + 3) % 7 + 7) % 7);      /* 1970-01-01: thu */

    c->family = 0;
    if (in->addr_family == 4) {
        c->family = 4;
        memcpy(c->addr, in->addr, 4);
    } else if (in->addr_family == 6) {
        if (memcmp(in->addr, mapped, 12) == 0) {
            c->family = 4;
            memcpy(c->addr, in->addr + 12, 4);
        } else {
            c->family = 6;
            memcpy(c->addr, in->addr, 16);
        }
    }

    c->authenticated = (in->authenticated != 0);
    c->ngroups = c->authenticated
                 ? (in->ngroups > POL_MAX_GROUPS ? POL_MAX_GROUPS
                                                 : in->ngroups)
                 : 0;
    c->mfa_age = pol_age(in->now, in->mfa_time);
    c->posture_age = pol_age(in->now, in->posture_time);
    c->patch_age = pol_age(in->now, in->patch_time);
}


static void
pol_get(const pol_ctx_t *c, const pol_operand_t *o, pol_val_t *v)
{
    const pol_input_t  *in;
    static const pol_str_t  empty = { "", 0 };

    v->type = (pol_type_t) o->type;
    v->num = o->num;
    v->str = o->str;
    v->addr = o->addr;
    v->family = o->family;

    if (!o->is_attr) {
        return;
    }

    in = c->in;
    v->str = empty;

    switch (o->attr) {
    case POL_A_USER_AUTHENTICATED:
        v->num = c->authenticated;
        break;
    case POL_A_USER_NAME:
        if (c->authenticated && in->user.data != NULL) {
            v->str = in->user;
        }
        break;
    case POL_A_AUTH_MFA_AGE:
        v->num = c->mfa_age;
        break;
    case POL_A_DEVICE_KNOWN:
        v->num = (in->device_status == POL_DEVICE_ACTIVE
                  || in->device_status == POL_DEVICE_QUARANTINED);
        break;
    case POL_A_DEVICE_STATUS:
        v->num = in->device_status;
        break;
    case POL_A_DEVICE_ID:
        if (in->device_id.data != NULL) {
            v->str = in->device_id;
        }
        break;
    case POL_A_DEVICE_OWNER:
        if (in->device_owner.data != NULL) {
            v->str = in->device_owner;
        }
        break;
    case POL_A_DEVICE_BOUND:
        v->num = c->authenticated && in->user.data != NULL
                 && in->device_owner.data != NULL && in->user.len > 0
                 && in->user.len == in->device_owner.len
                 && memcmp(in->user.data, in->device_owner.data,
                           in->user.len) == 0;
        break;
    case POL_A_DISK_ENCRYPTED:
        v->num = (in->disk_encrypted == POL_TRUE);
        break;
    case POL_A_FIREWALL:
        v->num = (in->firewall == POL_TRUE);
        break;
    case POL_A_SCREEN_LOCK:
        v->num = (in->screen_lock == POL_TRUE);
        break;
    case POL_A_ENDPOINT_PROTECTION:
        v->num = (in->endpoint_protection == POL_TRUE);
        break;
    case POL_A_POSTURE_REPORTED:
        v->num = (in->posture_time != 0);
        break;
    case POL_A_POSTURE_STALE:
        v->num = (in->posture_stale != 0);
        break;
    case POL_A_POSTURE_AGE:
        v->num = c->posture_age;
        break;
    case POL_A_OS:
        if (in->os.data != NULL) {
            v->str = in->os;
        }
        break;
    case POL_A_OS_VERSION:
        if (in->os_version.data != NULL) {
            v->str = in->os_version;
        }
        break;
    case POL_A_PATCH_AGE:
        v->num = c->patch_age;
        break;
    case POL_A_REQUEST_METHOD:
        if (in->method.data != NULL) {
            v->str = in->method;
        }
        break;
    case POL_A_REQUEST_HOST:
        v->str = c->host;
        break;
    case POL_A_REQUEST_PATH:
        if (in->path.data != NULL) {
            v->str = in->path;
        }
        break;
    case POL_A_SOURCE_ADDRESS:
        v->addr = c->addr;
        v->family = c->family;
        break;
    case POL_A_TIME_HOUR:
        v->num = c->hour;
        break;
    case POL_A_TIME_MINUTE:
        v->num = c->minute;
        break;
    case POL_A_TIME_WEEKDAY:
        v->num = c->weekday;
        break;
    case POL_A_BLOCKLISTED:
        v->num = (in->blocklisted != 0);
        break;
    case POL_A_NEW_ADDRESS:
        v->num = (in->new_address != 0);
        break;
    case POL_A_TRUST_SCORE:
        v->num = in->trust_score;
        break;
    case POL_A_AUTH_AAL:
        v->num = in->authenticated ? (int64_t) pol_aal(in->auth_methods) : 0;
        break;
    default:
        v->num = 0;
        break;
    }
}


static int
pol_cmp(const pol_ctx_t *c, const pol_node_t *n)
{
    pol_val_t  l, r;
    int        eq, ord;

    pol_get(c, &n->l, &l);
    pol_get(c, &n->r, &r);

    if (n->neg & 1) {
        l.num = pol_node(c, (uint32_t) n->l.num);
    }
    if (n->neg & 2) {
        r.num = pol_node(c, (uint32_t) n->r.num);
    }

    switch (l.type) {
    case POL_T_STRING:
        eq = (l.str.len == r.str.len)
             && (l.str.len == 0
                 || (n->icase ? pol_icase_eq(l.str.data, r.str.data,
                                             l.str.len)
                              : memcmp(l.str.data, r.str.data, l.str.len)
                                == 0));
        return (n->op == POL_CMP_EQ) ? eq : (n->op == POL_CMP_NE) ? !eq : 0;

    case POL_T_ADDRESS:
        if (l.family == 0 || r.family == 0) {
            return 0;               /* unknown compares false */
        }
        eq = (l.family == r.family)
             && memcmp(l.addr, r.addr, l.family == 4 ? 4 : 16) == 0;
        return (n->op == POL_CMP_EQ) ? eq : (n->op == POL_CMP_NE) ? !eq : 0;

    default:
        ord = (l.num > r.num) - (l.num < r.num);
        switch (n->op) {
        case POL_CMP_EQ:
            return ord == 0;
        case POL_CMP_NE:
            return ord != 0;
        case POL_CMP_LT:
            return ord < 0;
        case POL_CMP_LE:
            return ord <= 0;
        case POL_CMP_GT:
            return ord > 0;
        default:
            return ord >= 0;
        }
    }
}


static int
pol_in_set(const pol_set_t *s, const pol_str_t *v)
{
    size_t  lo, hi, mid, n;
    int     r;

    lo = 0;
    hi = s->n;
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        n = v->len < s->strs[mid].len ? v->len : s->strs[mid].len;
        r = 0;
        if (s->icase) {
            size_t  i;

            for (i = 0; i < n && r == 0; i++) {
                r = pol_lower((unsigned char) v->data[i])
                    - pol_lower((unsigned char) s->strs[mid].data[i]);
            }
        } else if (n) {
            r = memcmp(v->data, s->strs[mid].data, n);
        }
        if (r == 0) {
            r = (v->len > s->strs[mid].len) - (v->len < s->strs[mid].len);
        }
        if (r == 0) {
            return 1;
        }
        if (r < 0) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return 0;
}


/* Is v an element of the set attribute attr (user.groups, auth.methods)? */
static int
pol_in_attr_set(const pol_ctx_t *c, unsigned attr, const pol_str_t *v)
{
    unsigned  i;
    int       bit;

    if (attr == POL_A_AUTH_METHODS) {
        bit = pol_auth_method_bit(v->data, v->len);
        return bit != 0 && (c->in->auth_methods & (unsigned) bit) != 0;
    }

    for (i = 0; i < c->ngroups; i++) {
        if (c->in->groups[i].len == v->len
            && (v->len == 0
                || memcmp(c->in->groups[i].data, v->data, v->len) == 0))
        {
            return 1;
        }
    }
    return 0;
}


static int
pol_cidr_match(const pol_set_t *s, const uint8_t *addr, int family)
{
    const pol_cidr_t  *cd;
    unsigned           i, j, n;

    n = (family == 4) ? 4 : 16;

    for (i = 0; i < s->n; i++) {
        cd = &s->cidrs[i];
        if (cd->family != family) {
            continue;
        }
        for (j = 0; j < n; j++) {
            if ((addr[j] & cd->mask[j]) != cd->addr[j]) {
                break;
            }
        }
        if (j == n) {
            return 1;
        }
    }
    return 0;
}


static int
pol_in(const pol_ctx_t *c, const pol_node_t *n)
{
    const pol_set_t  *s;
    pol_val_t         l;
    pol_str_t         name;
    unsigned          i;
    int               r;

    s = n->set_attr ? NULL : &c->pol->sets[n->set];

    if (n->l.is_attr && n->l.attr == POL_A_USER_GROUPS) {
        r = 0;
        for (i = 0; i < c->ngroups && !r; i++) {
            r = (s != NULL) ? pol_in_set(s, &c->in->groups[i])
                            : pol_in_attr_set(c, n->r.attr,
                                              &c->in->groups[i]);
        }
        return n->neg ? !r : r;
    }

    if (n->l.is_attr && n->l.attr == POL_A_AUTH_METHODS) {
        if (s != NULL) {
            r = (c->in->auth_methods & n->mask) != 0;
        } else {
            r = 0;
            for (i = 0; i < 4 && !r; i++) {
                if (c->in->auth_methods & (1u << i)) {
                    name.data = pol_auth_names[i];
                    name.len = strlen(name.data);
                    r = pol_in_attr_set(c, n->r.attr, &name);
                }
            }
        }
        return n->neg ? !r : r;
    }

    pol_get(c, &n->l, &l);

    switch (l.type) {
    case POL_T_ADDRESS:
        if (l.family == 0 || s == NULL) {
            return 0;               /* unknown compares false */
        }
        r = pol_cidr_match(s, l.addr, l.family);
        break;
    case POL_T_STRING:
        r = (s != NULL) ? pol_in_set(s, &l.str)
                        : pol_in_attr_set(c, n->r.attr, &l.str);
        break;
    default:
        r = 0;
        if (s != NULL) {
            for (i = 0; i < s->n; i++) {
                if (s->nums[i] == l.num) {
                    r = 1;
                    break;
                }
            }
        }
        break;
    }

    return n->neg ? !r : r;
}


static int
pol_contains(const pol_ctx_t *c, const pol_node_t *n)
{
    pol_val_t  r;

    if (n->l.attr == POL_A_AUTH_METHODS && !n->r.is_attr) {
        return (c->in->auth_methods & n->mask) != 0;
    }
    pol_get(c, &n->r, &r);
    return pol_in_attr_set(c, n->l.attr, &r.str);
}


static int
pol_node(const pol_ctx_t *c, uint32_t i)
{
    const pol_node_t  *n;
    pol_val_t          v;
    uint32_t           k;

    n = &c->pol->nodes[i];

    switch (n->kind) {
    case POL_N_AND:
        for (k = 0; k < n->n; k++) {
            if (!pol_node(c, c->pol->kids[n->a + k])) {
                return 0;
            }
        }
        return 1;
    case POL_N_OR:
        for (k = 0; k < n->n; k++) {
            if (pol_node(c, c->pol->kids[n->a + k])) {
                return 1;
            }
        }
        return 0;
    case POL_N_NOT:
        return !pol_node(c, c->pol->kids[n->a]);
    case POL_N_TRUE:
        return 1;
    case POL_N_FALSE:
        return 0;
    case POL_N_ATTR:
        pol_get(c, &n->l, &v);
        return v.num != 0;
    case POL_N_NAMED:
        return pol_node(c, n->a);
    case POL_N_CMP:
        return pol_cmp(c, n);
    case POL_N_IN:
        return pol_in(c, n);
    case POL_N_CONTAINS:
        return pol_contains(c, n);
    }
    return 0;
}


static int
pol_path_match(const pol_path_t *p, const pol_str_t *path)
{
    switch (p->kind) {
    case POL_PATH_EXACT:
        return path->len == p->lit.len
               && memcmp(path->data, p->lit.data, path->len) == 0;
    case POL_PATH_PREFIX:
        if (p->lit.len == 1) {
            return 1;               /* prefix "/" */
        }
        return path->len >= p->lit.len
               && memcmp(path->data, p->lit.data, p->lit.len) == 0
               && (path->len == p->lit.len || path->data[p->lit.len] == '/');
    default:
        if (path->len < p->lit.len
            || memcmp(path->data, p->lit.data, p->lit.len) != 0)
        {
            return 0;
        }
        return pol_glob_match(p->glob, p->nglob, path->data, path->len);
    }
}


#define POL_SET_BIT(s, i)  ((s)[(i) >> 6] |= (uint64_t) 1 << ((i) & 63))
#define POL_HAS_BIT(s, i)  (((s)[(i) >> 6] >> ((i) & 63)) & 1)


/*
 * Glob matching as a bit-parallel NFA over pattern positions: linear in
 * the path length times the live states, with no backtracking, so no
 * pattern can make it slow.  Stars are epsilon moves to the next token.
 */
int
pol_glob_match(const uint16_t *g, unsigned n, const char *s, size_t len)
{
    uint64_t  cur[5], nxt[5], bits, any;
    unsigned  w, nw, i, j;
    size_t    k;
    int       ch;

    if (n > POL_MAX_GLOB) {
        return 0;
    }

    nw = n / 64 + 1;
    memset(cur, 0, sizeof(cur));

    /* state 0 and everything reachable through leading stars */
    for (j = 0; ; j++) {
        POL_SET_BIT(cur, j);
        if (j >= n || (g[j] != POL_GLOB_STAR && g[j] != POL_GLOB_DSTAR)) {
            break;
        }
    }

    for (k = 0; k < len; k++) {
        ch = (unsigned char) s[k];
        memset(nxt, 0, sizeof(nxt));
        any = 0;

        for (w = 0; w < nw; w++) {
            bits = cur[w];
            while (bits) {
                i = w * 64 + (unsigned) __builtin_ctzll(bits);
                bits &= bits - 1;

                if (i >= n) {
                    continue;
                }

                switch (g[i]) {
                case POL_GLOB_STAR:
                    if (ch == '/') {
                        continue;
                    }
                    j = i;
                    break;
                case POL_GLOB_DSTAR:
                    j = i;
                    break;
                case POL_GLOB_ANY1:
                    if (ch == '/') {
                        continue;
                    }
                    j = i + 1;
                    break;
                default:
                    if (ch != g[i]) {
                        continue;
                    }
                    j = i + 1;
                    break;
                }

                for ( ;; ) {
                    POL_SET_BIT(nxt, j);
                    if (j >= n
                        || (g[j] != POL_GLOB_STAR && g[j] != POL_GLOB_DSTAR))
                    {
                        break;
                    }
                    j++;
                }
                any = 1;
            }
        }

        if (!any) {
            return 0;
        }
        memcpy(cur, nxt, sizeof(cur));
    }

    return (int) POL_HAS_BIT(cur, n);
}


static int
pol_methods_match(const pol_ctx_t *c, const pol_rule_t *r)
{
    unsigned  i;

    if (r->methods == 0) {
        return 1;
    }
    if (!(r->methods & c->method)) {
        return 0;
    }
    if (c->method != POL_M_OTHER) {
        return 1;
    }
    for (i = 0; i < r->nxmethods; i++) {
        if (r->xmethods[i].len == c->in->method.len
            && pol_icase_eq(r->xmethods[i].data, c->in->method.data,
                            c->in->method.len))
        {
            return 1;
        }
    }
    return 0;
}


static int
pol_paths_match(const pol_ctx_t *c, const pol_rule_t *r)
{
    unsigned  i;

    if (r->npaths == 0) {
        return 1;
    }
    for (i = 0; i < r->npaths; i++) {
        if (pol_path_match(&r->paths[i], &c->in->path)) {
            return 1;
        }
    }
    return 0;
}


static int
pol_rule_match(const pol_ctx_t *c, const pol_rule_t *r)
{
    return pol_methods_match(c, r) && pol_paths_match(c, r)
           && (r->cond < 0 || pol_node(c, (uint32_t) r->cond));
}


static int
pol_host_cmp(const pol_str_t *h, const pol_str_t *in)
{
    size_t  i, n;
    int     r;

    n = h->len < in->len ? h->len : in->len;
    for (i = 0; i < n; i++) {
        r = (unsigned char) h->data[i] - pol_lower((unsigned char) in->data[i]);
        if (r != 0) {
            return r;
        }
    }
    return (h->len > in->len) - (h->len < in->len);
}


static int
pol_select_app(const pol_ctx_t *c)
{
    const pol_t          *pol;
    const pol_hostent_t  *e;
    size_t                lo, hi, mid;
    unsigned              i;
    int                   r;

    pol = c->pol;

    lo = 0;
    hi = pol->nexact;
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        r = pol_host_cmp(&pol->exact[mid].host, &c->host);
        if (r == 0) {
            return (int) pol->exact[mid].app;
        }
        if (r > 0) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }

    /* longest suffix first; the host needs a label before the suffix */
    for (i = 0; i < pol->nwild; i++) {
        e = &pol->wild[i];
        if (c->host.len > e->host.len
            && pol_icase_eq(c->host.data + c->host.len - e->host.len,
                            e->host.data, e->host.len))
        {
            return (int) e->app;
        }
    }

    return pol->fallback;
}


static void
pol_default_deny(const pol_app_t *app, pol_decision_t *d)
{
    static const pol_str_t  empty = { "", 0 };

    d->outcome = POL_DENY;
    d->status = 403;
    d->reason.data = POL_DEFAULT_REASON;
    d->reason.len = sizeof(POL_DEFAULT_REASON) - 1;
    d->app = app ? app->name : empty;
    d->rule = empty;
    d->file = empty;
    d->line = 0;
    d->ttl_ms = -1;
    d->nheaders = 0;
}


static void
pol_decide(const pol_ctx_t *c, const pol_app_t *app, const pol_rule_t *r,
    pol_decision_t *d)
{
    pol_val_t  v;
    unsigned   i;

    d->outcome = r->outcome;
    d->status = (r->outcome == POL_DENY) ? r->status : 0;
    d->reason = r->reason;
    d->app = app->name;
    d->rule = r->name;
    d->file = r->file;
    d->line = r->line;
    d->ttl_ms = r->ttl_ms;
    d->nheaders = 0;

    if (r->outcome != POL_ALLOW) {
        return;
    }

    for (i = 0; i < r->nheaders; i++) {
        pol_get(c, &r->headers[i].value, &v);
        d->headers[i].name = r->headers[i].name;
        d->headers[i].value = v.str;
    }
    d->nheaders = r->nheaders;
}


static const pol_segment_t *
pol_find_segment(const pol_app_t *app, const pol_str_t *path)
{
    const pol_segment_t  *seg;
    const char           *s, *e;
    size_t                len;
    uint32_t              h;

    if (app->segs == NULL) {
        return NULL;
    }

    s = path->data;
    len = path->len;
    if (len > 0 && s[0] == '/') {
        s++;
        len--;
    }
    e = memchr(s, '/', len);
    if (e != NULL) {
        len = (size_t) (e - s);
    }

    h = pol_seg_hash(s, len) & app->segmask;
    for ( ;; ) {
        seg = &app->segs[h];
        if (seg->key.data == NULL) {
            return NULL;
        }
        if (seg->key.len == len && memcmp(seg->key.data, s, len) == 0) {
            return seg;
        }
        h = (h + 1) & app->segmask;
    }
}


void
pol_eval(const pol_t *pol, const pol_input_t *in, pol_decision_t *d)
{
    static const pol_str_t  nopath = { "", 0 };
    pol_ctx_t             c;
    const pol_app_t      *app;
    const pol_segment_t  *seg;
    const pol_rule_t     *r, *best;
    const uint32_t       *a, *b;
    unsigned              na, nb, i, j, ri;
    int32_t               limit;
    int                   ai;

    pol_ctx_init(&c, pol, in);
    d->nreports = 0;

    ai = pol_select_app(&c);
    if (ai < 0) {
        pol_default_deny(NULL, d);
        return;
    }
    app = &pol->apps[ai];

    /* merge the path segment's rules with the catch-all rules, in order */
    seg = pol_find_segment(app, in->path.data ? &in->path : &nopath);

    a = app->catchall;
    na = app->ncatchall;
    b = seg ? seg->rules : NULL;
    nb = seg ? seg->n : 0;
    limit = app->catchall_lastdeny;
    if (seg != NULL && seg->lastdeny > limit) {
        limit = seg->lastdeny;
    }

    best = NULL;
    i = 0;
    j = 0;

    while (i < na || j < nb) {
        if (j >= nb || (i < na && a[i] < b[j])) {
            ri = a[i++];
        } else {
            ri = b[j++];
        }

        if (best != NULL && (int32_t) ri > limit) {
            break;              /* no deny can follow */
        }

        r = &app->rules[ri];
        if (best != NULL && r->outcome != POL_DENY) {
            continue;
        }

        if (!pol_rule_match(&c, r)) {
            continue;
        }

        if (r->outcome == POL_DENY) {
            best = r;
            break;              /* the first matching deny decides */
        }

        best = r;
        if ((int32_t) ri > limit) {
            break;
        }
    }

    if (best != NULL) {
        pol_decide(&c, app, best, d);
    } else {
        pol_default_deny(app, d);
    }

    /* report-only rules never change the decision */
    for (i = 0; i < app->nreports; i++) {
        r = &app->rules[app->reports[i]];
        if (r->outcome == d->outcome || !pol_rule_match(&c, r)) {
            continue;
        }
        if (d->nreports < POL_MAX_REPORTS) {
            d->reports[d->nreports].rule = r->name;
            d->reports[d->nreports].outcome = r->outcome;
            d->nreports++;
        }
    }
}


/* --- explain: not on the hot path */


static void
pol_trace_add(pol_tracer_t *t, unsigned depth, int result, unsigned line,
    unsigned col, const char *text, const char *seen)
{
    pol_trace_t  *e;

    if (t->n >= t->max) {
        return;
    }
    e = &t->trace[t->n++];
    e->rule = t->rule->name;
    e->line = line;
    e->col = col;
    e->depth = depth;
    e->result = result;
    snprintf(e->text, sizeof(e->text), "%s", text);
    snprintf(e->seen, sizeof(e->seen), "%s", seen);
}


static size_t
pol_seen(const pol_ctx_t *c, const pol_operand_t *o, char *buf, size_t size)
{
    const pol_input_t  *in;
    pol_val_t           v;
    pol_flag_t          f;
    size_t              n;
    unsigned            i;
    int                 first;

    buf[0] = '\0';
    if (!o->is_attr) {
        return 0;
    }

    in = c->in;
    pol_get(c, o, &v);

    switch (o->attr) {
    case POL_A_USER_GROUPS:
    case POL_A_AUTH_METHODS:
        n = (size_t) snprintf(buf, size, "[");
        first = 1;
        if (o->attr == POL_A_USER_GROUPS) {
            for (i = 0; i < c->ngroups && n < size; i++) {
                n += (size_t) snprintf(buf + n, size - n, "%s\"%.*s\"",
                                       first ? "" : ",",
                                       (int) in->groups[i].len,
                                       in->groups[i].data
                                       ? in->groups[i].data : "");
                first = 0;
            }
        } else {
            for (i = 0; i < 4 && n < size; i++) {
                if (in->auth_methods & (1u << i)) {
                    n += (size_t) snprintf(buf + n, size - n, "%s\"%s\"",
                                           first ? "" : ",",
                                           pol_auth_names[i]);
                    first = 0;
                }
            }
        }
        if (n < size) {
            snprintf(buf + n, size - n, "]");
        }
        return strlen(buf);

    case POL_A_DISK_ENCRYPTED:
    case POL_A_FIREWALL:
    case POL_A_SCREEN_LOCK:
    case POL_A_ENDPOINT_PROTECTION:
        f = (o->attr == POL_A_DISK_ENCRYPTED) ? in->disk_encrypted
            : (o->attr == POL_A_FIREWALL) ? in->firewall
            : (o->attr == POL_A_SCREEN_LOCK) ? in->screen_lock
            : in->endpoint_protection;
        snprintf(buf, size, "%s", f == POL_UNREPORTED ? "unreported"
                                  : f == POL_TRUE ? "true" : "false");
        return strlen(buf);

    case POL_A_TRUST_SCORE:
        if (v.num < 0) {
            snprintf(buf, size, "not computed");
            return strlen(buf);
        }
        break;

    default:
        break;
    }

    switch (v.type) {
    case POL_T_BOOL:
        snprintf(buf, size, "%s", v.num ? "true" : "false");
        break;
    case POL_T_STRING:
        snprintf(buf, size, "\"%.*s\"", (int) (v.str.len > 100 ? 100
                                                                : v.str.len),
                 v.str.data);
        break;
    case POL_T_NUMBER:
        snprintf(buf, size, "%lld", (long long) v.num);
        break;
    case POL_T_DURATION:
        if (v.num == POL_DUR_INFINITE) {
            snprintf(buf, size, "%s", o->attr == POL_A_AUTH_MFA_AGE
                                      ? "never" : "unreported");
        } else {
            pol_fmt_duration(buf, size, v.num);
        }
        break;
    case POL_T_ADDRESS:
        if (v.family == 0) {
            snprintf(buf, size, "unknown");
        } else {
            pol_fmt_addr(buf, size, v.family, v.addr,
                         v.family == 4 ? 32 : 128);
        }
        break;
    case POL_T_WEEKDAY:
    case POL_T_STATUS:
        snprintf(buf, size, "%s", pol_keyword_name(v.type, v.num));
        break;
    default:
        break;
    }
    return strlen(buf);
}


static void
pol_trace_node(const pol_ctx_t *c, pol_tracer_t *t, uint32_t i,
    unsigned depth)
{
    const pol_node_t  *n;
    char               seen[160], l[150], r[150];
    uint32_t           k;

    n = &c->pol->nodes[i];
    seen[0] = '\0';

    switch (n->kind) {
    case POL_N_ATTR:
        pol_seen(c, &n->l, seen, sizeof(seen));
        break;
    case POL_N_CMP:
    case POL_N_IN:
    case POL_N_CONTAINS:
        pol_seen(c, &n->l, l, sizeof(l));
        pol_seen(c, &n->r, r, sizeof(r));
        if (l[0] && r[0]) {
            snprintf(seen, sizeof(seen), "%.70s and %.70s", l, r);
        } else {
            snprintf(seen, sizeof(seen), "%s", l[0] ? l : r);
        }
        break;
    default:
        break;
    }

    pol_trace_add(t, depth, pol_node(c, i), n->line, n->col, n->text, seen);

    switch (n->kind) {
    case POL_N_AND:
    case POL_N_OR:
    case POL_N_NOT:
        for (k = 0; k < n->n; k++) {
            pol_trace_node(c, t, c->pol->kids[n->a + k], depth + 1);
        }
        break;
    case POL_N_NAMED:
        pol_trace_node(c, t, n->a, depth + 1);
        break;
    default:
        break;
    }
}


static void
pol_explain_rule(const pol_ctx_t *c, pol_tracer_t *t, const pol_rule_t *r,
    const pol_decision_t *d)
{
    char      text[160], seen[160];
    size_t    n;
    unsigned  i;
    int       matched;

    t->rule = r;
    snprintf(text, sizeof(text), "rule \"%.*s\" (%.*s:%u)%s",
             (int) (r->name.len > 60 ? 60 : r->name.len), r->name.data,
             (int) (r->file.len > 60 ? 60 : r->file.len), r->file.data,
             r->line, r->report_only ? " [report-only]" : "");

    if (!pol_methods_match(c, r)) {
        snprintf(seen, sizeof(seen), "method did not match (%.*s)",
                 (int) (c->in->method.len > 20 ? 20 : c->in->method.len),
                 c->in->method.data ? c->in->method.data : "");
        pol_trace_add(t, 0, 0, r->line, r->col, text, seen);
        return;
    }

    if (!pol_paths_match(c, r)) {
        n = (size_t) snprintf(seen, sizeof(seen), "path did not match "
                              "(%.*s vs ",
                              (int) (c->in->path.len > 60 ? 60
                                                          : c->in->path.len),
                              c->in->path.data ? c->in->path.data : "");
        for (i = 0; i < r->npaths && n < sizeof(seen); i++) {
            n += (size_t) snprintf(seen + n, sizeof(seen) - n, "%s%s\"%.*s\"",
                                   i ? ", " : "",
                                   r->paths[i].kind == POL_PATH_PREFIX
                                   ? "prefix " : "",
                                   (int) (r->paths[i].pattern.len > 40
                                          ? 40 : r->paths[i].pattern.len),
                                   r->paths[i].pattern.data);
        }
        if (n < sizeof(seen)) {
            snprintf(seen + n, sizeof(seen) - n, ")");
        }
        pol_trace_add(t, 0, 0, r->line, r->col, text, seen);
        return;
    }

    matched = (r->cond < 0 || pol_node(c, (uint32_t) r->cond));

    if (!matched) {
        snprintf(seen, sizeof(seen), "condition did not hold");
    } else if (r->report_only) {
        snprintf(seen, sizeof(seen), "matched -> %s (report-only, not "
                 "enforced)", pol_outcome_name(r->outcome));
    } else if (d->rule.data == r->name.data) {
        snprintf(seen, sizeof(seen), "matched -> %s (decides)",
                 pol_outcome_name(r->outcome));
    } else {
        snprintf(seen, sizeof(seen), "matched -> %s",
                 pol_outcome_name(r->outcome));
    }
    pol_trace_add(t, 0, matched, r->line, r->col, text, seen);

    if (r->cond >= 0) {
        pol_trace_node(c, t, (uint32_t) r->cond, 1);
    }
}


size_t
pol_explain(const pol_t *pol, const pol_input_t *in, pol_decision_t *d,
    pol_trace_t *trace, size_t max)
{
    pol_ctx_t      c;
    pol_tracer_t   t;
    const pol_app_t *app;
    unsigned       i;
    int            ai;

    pol_eval(pol, in, d);

    pol_ctx_init(&c, pol, in);
    ai = pol_select_app(&c);
    if (ai < 0 || trace == NULL) {
        return 0;
    }
    app = &pol->apps[ai];

    t.trace = trace;
    t.n = 0;
    t.max = max;
    t.rule = NULL;

    for (i = 0; i < app->nrules && t.n < max; i++) {
        pol_explain_rule(&c, &t, &app->rules[i], d);
    }

    return t.n;
}


const char *
pol_version(const pol_t *pol)
{
    return pol->version;
}


unsigned
pol_napps(const pol_t *pol)
{
    return pol->napps;
}


unsigned
pol_nrules(const pol_t *pol)
{
    return pol->nrules;
}


void
pol_free(pol_t *pol)
{
    pol_arena_t  a;

    if (pol == NULL) {
        return;
    }
    a = pol->arena;
    pol_arena_free(&a);
}
