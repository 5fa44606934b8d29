/*
 * Policy checker: resolves names (one namespace for networks, groups and
 * conditions, across all files), types every test, rejects cycles between
 * conditions, validates apps, hosts, rules, paths and headers, and emits
 * the warnings of the specification.  It reports every error it finds; an
 * operand that fails to resolve is not reported again by the test that
 * uses it, so one mistake gives one error.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy_int.h"

typedef struct {
    const char      *key;
    size_t           len;
    void            *val;
} pol_hslot_t;

typedef struct {
    pol_hslot_t     *slots;
    size_t           mask;
    int              icase;
} pol_htab_t;

typedef struct {
    ast_policy_t    *ast;
    pol_diags_t     *diags;
    pol_htab_t       defs;
    int              nomem;
    ast_def_t      **stack;         /* cycle check path */
    size_t           nstack;
} pol_checker_t;

static const char  *pol_forbidden_headers[] = {
    "Host", "Content-Length", "Transfer-Encoding", "Connection", "Cookie",
    "Authorization", NULL
};

static uint32_t pol_hash(const char *s, size_t len, int icase);
static int pol_htab_init(pol_htab_t *h, size_t n, int icase);
static void pol_htab_free(pol_htab_t *h);
static void *pol_htab_get(const pol_htab_t *h, const char *key, size_t len);
static void pol_htab_put(pol_htab_t *h, const char *key, size_t len,
    void *val);
static void pol_err(pol_checker_t *ck, const pol_pos_t *pos,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pol_warn(pol_checker_t *ck, const pol_pos_t *pos,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static const char *pol_def_kind(const ast_def_t *d);
static void pol_suggest(pol_checker_t *ck, const pol_str_t *name,
    int attrs, int defs, char *buf, size_t size);
static pol_type_t pol_resolve(pol_checker_t *ck, ast_operand_t *o,
    pol_type_t hint);
static void pol_describe_operand(const ast_operand_t *o, char *buf,
    size_t size);
static void pol_check_cond(pol_checker_t *ck, ast_cond_t *c);
static void pol_check_cmp(pol_checker_t *ck, ast_cond_t *c);
static void pol_check_in(pol_checker_t *ck, ast_cond_t *c);
static void pol_check_contains(pol_checker_t *ck, ast_cond_t *c);
static pol_type_t pol_resolve_set(pol_checker_t *ck, ast_set_t *s,
    pol_type_t elem, int auth);
static int pol_check_method_literal(pol_checker_t *ck,
    const ast_operand_t *o);
static void pol_check_cycles(pol_checker_t *ck, ast_def_t *d);
static void pol_cycle_walk(pol_checker_t *ck, ast_def_t *d, ast_cond_t *c);
static void pol_cycle_ref(pol_checker_t *ck, ast_cond_t *c, ast_def_t *ref);
static void pol_check_apps(pol_checker_t *ck);
static int pol_check_host(const pol_str_t *h);
static void pol_check_rule(pol_checker_t *ck, ast_rule_t *r);
static int pol_is_token(const pol_str_t *s);
static void pol_check_shadow(pol_checker_t *ck, ast_app_t *app);
static int pol_paths_cover(const ast_rule_t *e, const ast_rule_t *r);
static int pol_methods_cover(const ast_rule_t *e, const ast_rule_t *r);


static uint32_t
pol_hash(const char *s, size_t len, int icase)
{
    uint32_t  h;
    size_t    i;
    unsigned  c;

    h = 2166136261u;
    for (i = 0; i < len; i++) {
        c = (unsigned char) s[i];
        if (icase && c >= 'A' && c <= 'Z') {
            c += 32;
        }
        h = (h ^ c) * 16777619u;
    }
    return h;
}


static int
pol_htab_init(pol_htab_t *h, size_t n, int icase)
{
    size_t  cap;

    cap = 16;
    while (cap < n * 2) {
        cap *= 2;
    }
    h->slots = calloc(cap, sizeof(pol_hslot_t));
    h->mask = cap - 1;
    h->icase = icase;
    return (h->slots == NULL) ? -1 : 0;
}


static void
pol_htab_free(pol_htab_t *h)
{
    free(h->slots);
    h->slots = NULL;
}


static void *
pol_htab_get(const pol_htab_t *h, const char *key, size_t len)
{
    size_t        i;
    pol_hslot_t  *s;

    i = pol_hash(key, len, h->icase) & h->mask;
    for ( ;; ) {
        s = &h->slots[i];
        if (s->key == NULL) {
            return NULL;
        }
        if (s->len == len
            && (h->icase ? strncasecmp(s->key, key, len) == 0
                         : memcmp(s->key, key, len) == 0))
        {
            return s->val;
        }
        i = (i + 1) & h->mask;
    }
}


/* The table was sized for every key: there is always a free slot. */
static void
pol_htab_put(pol_htab_t *h, const char *key, size_t len, void *val)
{
    size_t  i;

    i = pol_hash(key, len, h->icase) & h->mask;
    while (h->slots[i].key != NULL) {
        i = (i + 1) & h->mask;
    }
    h->slots[i].key = key;
    h->slots[i].len = len;
    h->slots[i].val = val;
}


static void
pol_err(pol_checker_t *ck, const pol_pos_t *pos, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    pol_diag_vadd(ck->diags, 0, pos->file, pos->line, pos->col, fmt, ap);
    va_end(ap);
}


static void
pol_warn(pol_checker_t *ck, const pol_pos_t *pos, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    pol_diag_vadd(ck->diags, 1, pos->file, pos->line, pos->col, fmt, ap);
    va_end(ap);
}


ast_def_t *
pol_find_def(const ast_policy_t *ast, const char *name, size_t len)
{
    ast_def_t  *d;

    for (d = ast->defs; d != NULL; d = d->next) {
        if (d->name.len == len && memcmp(d->name.data, name, len) == 0) {
            return d;
        }
    }
    return NULL;
}


static const char *
pol_def_kind(const ast_def_t *d)
{
    switch (d->kind) {
    case AST_DEF_NETWORK:
        return "network";
    case AST_DEF_GROUP:
        return "group";
    default:
        return "condition";
    }
}


/* Writes "; did you mean "x"?" into buf when a close name exists. */
static void
pol_suggest(pol_checker_t *ck, const pol_str_t *name, int attrs, int defs,
    char *buf, size_t size)
{
    const char  *best;
    size_t       blen, len;
    unsigned     d, bestd, limit;
    ast_def_t   *def;
    int          i;

    buf[0] = '\0';
    best = NULL;
    blen = 0;
    bestd = 1000;
    limit = (unsigned) (name->len / 3);
    if (limit < 1) {
        limit = 1;
    }
    if (limit > 3) {
        limit = 3;
    }

    if (attrs) {
        for (i = 0; i < POL_A_COUNT; i++) {
            len = strlen(pol_attrs[i].name);
            d = pol_edit_distance(name->data, name->len, pol_attrs[i].name,
                                  len);
            if (d < bestd) {
                bestd = d;
                best = pol_attrs[i].name;
                blen = len;
            }
        }
    }

    if (defs) {
        for (def = ck->ast->defs; def != NULL; def = def->next) {
            d = pol_edit_distance(name->data, name->len, def->name.data,
                                  def->name.len);
            if (d < bestd) {
                bestd = d;
                best = def->name.data;
                blen = def->name.len;
            }
        }
    }

    if (best != NULL && bestd <= limit) {
        snprintf(buf, size, "; did you mean \"%.*s\"?", (int) blen, best);
    }
}


static void
pol_describe_operand(const ast_operand_t *o, char *buf, size_t size)
{
    char  tmp[128];

    pol_fmt_operand(tmp, sizeof(tmp), o);

    if (o->attr >= 0 || o->def != NULL) {
        snprintf(buf, size, "%s %s", pol_type_name(o->type), tmp);
    } else if (o->type == POL_T_STRING) {
        snprintf(buf, size, "string %s", tmp);
    } else {
        snprintf(buf, size, "%s %s", pol_type_name(o->type), tmp);
    }
}


/*
 * Resolves an operand and returns its type, or POL_T_NONE after reporting
 * an error.  hint is the type of the other side, which decides what a
 * bare weekday or device status keyword means.
 */
static pol_type_t
pol_resolve(pol_checker_t *ck, ast_operand_t *o, pol_type_t hint)
{
    ast_def_t  *d;
    int         a, v;
    char        sug[128];

    o->attr = -1;
    o->def = NULL;

    switch (o->kind) {
    case AST_OP_STRING:
        o->type = POL_T_STRING;
        return o->type;
    case AST_OP_NUMBER:
        o->type = POL_T_NUMBER;
        return o->type;
    case AST_OP_DURATION:
        o->type = POL_T_DURATION;
        return o->type;
    case AST_OP_ADDR:
        o->type = POL_T_ADDRESS;
        return o->type;
    case AST_OP_IDENT:
        break;
    }

    if (memchr(o->text.data, '.', o->text.len) != NULL) {
        a = pol_attr_lookup(o->text.data, o->text.len);
        if (a < 0) {
            pol_suggest(ck, &o->text, 1, 0, sug, sizeof(sug));
            pol_err(ck, &o->pos, "unknown attribute \"%.*s\"%s",
                    (int) o->text.len, o->text.data, sug);
            o->type = POL_T_NONE;
            return POL_T_NONE;
        }
        o->attr = a;
        o->type = pol_attrs[a].type;
        return o->type;
    }

    if (o->text.len == 4 && memcmp(o->text.data, "true", 4) == 0) {
        o->type = POL_T_BOOL;
        o->value = 1;
        return o->type;
    }
    if (o->text.len == 5 && memcmp(o->text.data, "false", 5) == 0) {
        o->type = POL_T_BOOL;
        o->value = 0;
        return o->type;
    }
    if (o->text.len == 6 && memcmp(o->text.data, "source", 6) == 0) {
        o->attr = POL_A_SOURCE_ADDRESS;
        o->type = POL_T_ADDRESS;
        return o->type;
    }

    if (hint == POL_T_WEEKDAY || hint == POL_T_STATUS) {
        v = pol_keyword_value(hint, o->text.data, o->text.len);
        if (v >= 0) {
            o->type = hint;
            o->value = v;
            return o->type;
        }
    }

    d = pol_htab_get(&ck->defs, o->text.data, o->text.len);
    if (d != NULL) {
        d->used = 1;
        if (d->kind != AST_DEF_CONDITION) {
            pol_err(ck, &o->pos, "%s \"%.*s\" is a set, not a condition or "
                    "a value; test membership with in, e.g. %s in %.*s",
                    pol_def_kind(d), (int) o->text.len, o->text.data,
                    d->kind == AST_DEF_NETWORK ? "source" : "user.groups",
                    (int) o->text.len, o->text.data);
            o->type = POL_T_NONE;
            return POL_T_NONE;
        }
        o->def = d;
        o->type = POL_T_BOOL;
        return o->type;
    }

    if (hint == POL_T_STATUS) {
        pol_err(ck, &o->pos, "unknown device status \"%.*s\"; expected "
                "none, unknown, active, quarantined or revoked",
                (int) o->text.len, o->text.data);
    } else if (hint == POL_T_WEEKDAY) {
        pol_err(ck, &o->pos, "unknown weekday \"%.*s\"; expected mon, tue, "
                "wed, thu, fri, sat or sun", (int) o->text.len,
                o->text.data);
    } else if (hint == POL_T_STRING) {
        pol_suggest(ck, &o->text, 0, 1, sug, sizeof(sug));
        if (sug[0] != '\0') {
            pol_err(ck, &o->pos, "unknown name \"%.*s\"%s",
                    (int) o->text.len, o->text.data, sug);
        } else {
            pol_err(ck, &o->pos, "unknown name \"%.*s\"; a string value is "
                    "written in quotes: \"%.*s\"", (int) o->text.len,
                    o->text.data, (int) o->text.len, o->text.data);
        }
    } else {
        pol_suggest(ck, &o->text, 1, 1, sug, sizeof(sug));
        pol_err(ck, &o->pos, "unknown name \"%.*s\"%s", (int) o->text.len,
                o->text.data, sug);
    }

    o->type = POL_T_NONE;
    return POL_T_NONE;
}


static void
pol_check_cond(pol_checker_t *ck, ast_cond_t *c)
{
    ast_cond_t  *k;
    pol_type_t   t;
    char         what[160];

    switch (c->kind) {
    case AST_AND:
    case AST_OR:
    case AST_NOT:
        for (k = c->kids; k != NULL; k = k->next) {
            pol_check_cond(ck, k);
        }
        return;

    case AST_TEST:
        t = pol_resolve(ck, &c->lhs, POL_T_NONE);
        if (t == POL_T_NONE || t == POL_T_BOOL) {
            return;
        }
        pol_describe_operand(&c->lhs, what, sizeof(what));
        pol_err(ck, &c->lhs.pos, "%s is not a condition; compare it with a "
                "value, e.g. with == or in", what);
        return;

    case AST_CMP:
        pol_check_cmp(ck, c);
        return;

    case AST_IN:
    case AST_NOT_IN:
        pol_check_in(ck, c);
        return;

    case AST_CONTAINS:
        pol_check_contains(ck, c);
        return;
    }
}


static void
pol_check_cmp(pol_checker_t *ck, ast_cond_t *c)
{
    static const char  *ops[] = { "==", "!=", "<", "<=", ">", ">=" };
    pol_type_t          lt, rt;
    char                l[160], r[160];
    const char         *hint;
    const ast_operand_t *o;

    if (c->lhs.kind == AST_OP_IDENT
        && memchr(c->lhs.text.data, '.', c->lhs.text.len) == NULL
        && pol_htab_get(&ck->defs, c->lhs.text.data, c->lhs.text.len) == NULL
        && (pol_keyword_value(POL_T_STATUS, c->lhs.text.data,
                              c->lhs.text.len) >= 0
            || pol_keyword_value(POL_T_WEEKDAY, c->lhs.text.data,
                                 c->lhs.text.len) >= 0))
    {
        /* "active == device.status": the right side gives the type */
        rt = pol_resolve(ck, &c->rhs, POL_T_NONE);
        if (rt == POL_T_NONE) {
            return;
        }
        lt = pol_resolve(ck, &c->lhs, rt);
        if (lt == POL_T_NONE) {
            return;
        }

    } else {
        lt = pol_resolve(ck, &c->lhs, POL_T_NONE);
        if (lt == POL_T_NONE) {
            return;
        }
        rt = pol_resolve(ck, &c->rhs, lt);
        if (rt == POL_T_NONE) {
            return;
        }
    }

    pol_describe_operand(&c->lhs, l, sizeof(l));
    pol_describe_operand(&c->rhs, r, sizeof(r));

    if (lt == POL_T_SET || rt == POL_T_SET) {
        pol_err(ck, &c->pos, "cannot compare %s with %s; a set is tested "
                "with contains or in", l, r);
        return;
    }

    if (lt != rt) {
        hint = "";
        if (lt == POL_T_DURATION && rt == POL_T_NUMBER) {
            hint = "; write a duration such as 15m";
        } else if (lt == POL_T_NUMBER && rt == POL_T_DURATION) {
            hint = "; write a plain number";
        } else if (lt == POL_T_STRING && c->rhs.kind == AST_OP_NUMBER) {
            hint = "; write the value in quotes";
        }
        pol_err(ck, &c->pos, "cannot compare %s with %s%s", l, r, hint);
        return;
    }

    if (c->op >= POL_CMP_LT && lt != POL_T_NUMBER && lt != POL_T_DURATION
        && lt != POL_T_WEEKDAY)
    {
        pol_err(ck, &c->pos, "cannot use %s on %s; only numbers, durations "
                "and weekdays are ordered", ops[c->op], l);
        return;
    }

    if (lt == POL_T_ADDRESS) {
        o = (c->lhs.kind == AST_OP_ADDR) ? &c->lhs : &c->rhs;
        if (o->kind == AST_OP_ADDR
            && o->prefix != (o->family == 4 ? 32u : 128u))
        {
            pol_err(ck, &o->pos, "an address is compared with a network "
                    "using in, e.g. source in (10.0.0.0/8)");
            return;
        }
    }

    if (c->lhs.attr == POL_A_REQUEST_METHOD) {
        (void) pol_check_method_literal(ck, &c->rhs);
    } else if (c->rhs.attr == POL_A_REQUEST_METHOD) {
        (void) pol_check_method_literal(ck, &c->lhs);
    }
}


static int
pol_check_method_literal(pol_checker_t *ck, const ast_operand_t *o)
{
    if (o->kind == AST_OP_STRING && !pol_is_token(&o->text)) {
        pol_err(ck, &o->pos, "\"%.*s\" is not a valid HTTP method",
                (int) o->text.len, o->text.data);
        return -1;
    }
    return 0;
}


static pol_type_t
pol_resolve_set(pol_checker_t *ck, ast_set_t *s, pol_type_t elem, int auth)
{
    ast_item_t  *it;
    ast_def_t   *d;
    pol_type_t   t, first;
    int          a;
    char         sug[128], what[160];

    s->def = NULL;
    s->attr = -1;

    switch (s->kind) {
    case AST_SET_LIST:
        first = POL_T_NONE;
        for (it = s->items; it != NULL; it = it->next) {
            t = pol_resolve(ck, &it->v, elem);
            if (t == POL_T_NONE) {
                return POL_T_NONE;
            }
            if (it->v.attr >= 0 || it->v.def != NULL) {
                pol_err(ck, &it->v.pos, "a list holds values, not "
                        "attributes or conditions");
                return POL_T_NONE;
            }
            if (t == POL_T_BOOL) {
                pol_err(ck, &it->v.pos, "a list cannot hold true or false");
                return POL_T_NONE;
            }
            if (first == POL_T_NONE) {
                first = t;
            } else if (t != first) {
                pol_describe_operand(&it->v, what, sizeof(what));
                pol_err(ck, &it->v.pos, "a list holds values of one type: "
                        "%s in a list of %ss", what, pol_type_name(first));
                return POL_T_NONE;
            }
            if (auth && t == POL_T_STRING
                && pol_auth_method_bit(it->v.text.data, it->v.text.len) == 0)
            {
                pol_err(ck, &it->v.pos, "unknown authentication method "
                        "\"%.*s\"; expected password, totp, webauthn or "
                        "cert", (int) it->v.text.len, it->v.text.data);
                return POL_T_NONE;
            }
        }
        s->elem = first;
        return first;

    case AST_SET_NETWORK:
    case AST_SET_GROUP:
        d = pol_htab_get(&ck->defs, s->name.data, s->name.len);
        if (d == NULL
            || d->kind != (s->kind == AST_SET_NETWORK ? AST_DEF_NETWORK
                                                      : AST_DEF_GROUP))
        {
            if (d != NULL) {
                d->used = 1;
                pol_err(ck, &s->pos, "\"%.*s\" is a %s, not a %s",
                        (int) s->name.len, s->name.data, pol_def_kind(d),
                        s->kind == AST_SET_NETWORK ? "network" : "group");
            } else {
                pol_suggest(ck, &s->name, 0, 1, sug, sizeof(sug));
                pol_err(ck, &s->pos, "unknown %s \"%.*s\"%s",
                        s->kind == AST_SET_NETWORK ? "network" : "group",
                        (int) s->name.len, s->name.data, sug);
            }
            return POL_T_NONE;
        }
        d->used = 1;
        s->def = d;
        s->elem = (d->kind == AST_DEF_NETWORK) ? POL_T_ADDRESS
                                               : POL_T_STRING;
        return s->elem;

    case AST_SET_NAME:
        d = pol_htab_get(&ck->defs, s->name.data, s->name.len);
        if (d != NULL) {
            d->used = 1;
            if (d->kind == AST_DEF_CONDITION) {
                pol_err(ck, &s->pos, "condition \"%.*s\" is not a set; "
                        "in takes a network, a group, a list or a set "
                        "attribute", (int) s->name.len, s->name.data);
                return POL_T_NONE;
            }
            s->def = d;
            s->elem = (d->kind == AST_DEF_NETWORK) ? POL_T_ADDRESS
                                                   : POL_T_STRING;
            return s->elem;
        }
        if (memchr(s->name.data, '.', s->name.len) != NULL) {
            a = pol_attr_lookup(s->name.data, s->name.len);
            if (a < 0) {
                pol_suggest(ck, &s->name, 1, 0, sug, sizeof(sug));
                pol_err(ck, &s->pos, "unknown attribute \"%.*s\"%s",
                        (int) s->name.len, s->name.data, sug);
                return POL_T_NONE;
            }
            if (pol_attrs[a].type != POL_T_SET) {
                pol_err(ck, &s->pos, "%s is a %s, not a set",
                        pol_attrs[a].name, pol_type_name(pol_attrs[a].type));
                return POL_T_NONE;
            }
            s->attr = a;
            s->elem = POL_T_STRING;
            return s->elem;
        }
        pol_suggest(ck, &s->name, 0, 1, sug, sizeof(sug));
        pol_err(ck, &s->pos, "unknown network or group \"%.*s\"%s",
                (int) s->name.len, s->name.data, sug);
        return POL_T_NONE;
    }

    return POL_T_NONE;
}


static void
pol_check_in(pol_checker_t *ck, ast_cond_t *c)
{
    pol_type_t   lt, et, st;
    char         l[160];

    lt = pol_resolve(ck, &c->lhs, POL_T_NONE);
    if (lt == POL_T_NONE) {
        return;
    }

    et = (lt == POL_T_SET) ? POL_T_STRING : lt;

    if (lt == POL_T_BOOL) {
        pol_describe_operand(&c->lhs, l, sizeof(l));
        pol_err(ck, &c->pos, "cannot test whether %s is in a set; it is "
                "true or false", l);
        return;
    }

    st = pol_resolve_set(ck, &c->set, et, c->lhs.attr == POL_A_AUTH_METHODS);
    if (st == POL_T_NONE) {
        return;
    }

    if (st != et) {
        pol_describe_operand(&c->lhs, l, sizeof(l));
        if (c->set.kind == AST_SET_LIST) {
            pol_err(ck, &c->pos, "cannot test whether %s is in a list of "
                    "%ss", l, pol_type_name(st));
        } else {
            pol_err(ck, &c->pos, "cannot test whether %s is in %s \"%.*s\"",
                    l, c->set.def ? pol_def_kind(c->set.def) : "set",
                    (int) c->set.name.len, c->set.name.data);
        }
        return;
    }

    if (c->lhs.attr == POL_A_REQUEST_METHOD && c->set.kind == AST_SET_LIST) {
        ast_item_t  *it;

        for (it = c->set.items; it != NULL; it = it->next) {
            if (pol_check_method_literal(ck, &it->v) != 0) {
                return;
            }
        }
    }
}


static void
pol_check_contains(pol_checker_t *ck, ast_cond_t *c)
{
    pol_type_t  lt, rt;
    char        what[160];

    lt = pol_resolve(ck, &c->lhs, POL_T_NONE);
    if (lt == POL_T_NONE) {
        return;
    }

    if (lt != POL_T_SET) {
        pol_describe_operand(&c->lhs, what, sizeof(what));
        pol_err(ck, &c->pos, "contains needs a set on its left, such as "
                "user.groups or auth.methods; %s is not a set", what);
        return;
    }

    rt = pol_resolve(ck, &c->rhs, POL_T_STRING);
    if (rt == POL_T_NONE) {
        return;
    }

    if (rt != POL_T_STRING) {
        pol_describe_operand(&c->rhs, what, sizeof(what));
        pol_err(ck, &c->rhs.pos, "%s holds strings; cannot look for %s in "
                "it", pol_attrs[c->lhs.attr].name, what);
        return;
    }

    if (c->lhs.attr == POL_A_AUTH_METHODS && c->rhs.kind == AST_OP_STRING
        && pol_auth_method_bit(c->rhs.text.data, c->rhs.text.len) == 0)
    {
        pol_err(ck, &c->rhs.pos, "unknown authentication method \"%.*s\"; "
                "expected password, totp, webauthn or cert",
                (int) c->rhs.text.len, c->rhs.text.data);
    }
}


static void
pol_cycle_walk(pol_checker_t *ck, ast_def_t *d, ast_cond_t *c)
{
    ast_cond_t  *k;

    if (c == NULL) {
        return;
    }

    for (k = c->kids; k != NULL; k = k->next) {
        pol_cycle_walk(ck, d, k);
    }

    if (c->lhs.def != NULL) {
        pol_cycle_ref(ck, c, c->lhs.def);
    }
    if (c->rhs.def != NULL) {
        pol_cycle_ref(ck, c, c->rhs.def);
    }
}


static void
pol_cycle_ref(pol_checker_t *ck, ast_cond_t *c, ast_def_t *ref)
{
    char    path[200];
    size_t  i, n, start;

    if (ref->mark != 1) {
        pol_check_cycles(ck, ref);
        return;
    }

    /* a cycle: report it once, where the reference closes it */
    start = 0;
    for (i = 0; i < ck->nstack; i++) {
        if (ck->stack[i] == ref) {
            start = i;
            break;
        }
    }
    n = 0;
    path[0] = '\0';
    for (i = start; i < ck->nstack && n < sizeof(path); i++) {
        n += (size_t) snprintf(path + n, sizeof(path) - n, "%.*s -> ",
                               (int) ck->stack[i]->name.len,
                               ck->stack[i]->name.data);
    }
    if (n < sizeof(path)) {
        snprintf(path + n, sizeof(path) - n, "%.*s", (int) ref->name.len,
                 ref->name.data);
    }
    pol_err(ck, &c->pos, "condition \"%.*s\" depends on itself (%s); "
            "conditions cannot be recursive", (int) ref->name.len,
            ref->name.data, path);
    ref->bad = 1;
}


static void
pol_check_cycles(pol_checker_t *ck, ast_def_t *d)
{
    if (d->kind != AST_DEF_CONDITION || d->mark != 0) {
        return;
    }

    d->mark = 1;
    ck->stack[ck->nstack++] = d;
    pol_cycle_walk(ck, d, d->cond);
    ck->nstack--;
    d->mark = 2;
}


/* 0 if h is a valid host pattern: name, "*.name" or "*". */
static int
pol_check_host(const pol_str_t *h)
{
    size_t  i, label;
    int     c;

    if (h->len == 1 && h->data[0] == '*') {
        return 0;
    }

    i = 0;
    if (h->len > 2 && h->data[0] == '*' && h->data[1] == '.') {
        i = 2;
    }

    if (h->len == i || h->len > 253) {
        return -1;
    }

    label = 0;
    for ( ; i < h->len; i++) {
        c = (unsigned char) h->data[i];
        if (c == '.') {
            if (label == 0) {
                return -1;
            }
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '-' || c == '_'))
        {
            return -1;
        }
        if (++label > 63) {
            return -1;
        }
    }

    return (label == 0) ? -1 : 0;
}


static int
pol_is_token(const pol_str_t *s)
{
    size_t  i;
    int     c;

    if (s->len == 0) {
        return 0;
    }

    for (i = 0; i < s->len; i++) {
        c = (unsigned char) s->data[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9'))
        {
            continue;
        }
        if (c == 0 || strchr("!#$%&'*+-.^_`|~", c) == NULL) {
            return 0;
        }
    }
    return 1;
}


static void
pol_check_rule(pol_checker_t *ck, ast_rule_t *r)
{
    ast_path_t    *pa;
    ast_method_t  *m;
    ast_header_t  *h;
    size_t         i, ntok;
    unsigned       n;
    int            a, bad;
    char           sug[128];

    for (pa = r->paths; pa != NULL; pa = pa->next) {
        if (pa->pattern.len == 0 || pa->pattern.data[0] != '/') {
            pol_err(ck, &pa->pos, "path pattern \"%.*s\" must start with "
                    "\"/\"", (int) pa->pattern.len, pa->pattern.data);
            continue;
        }
        bad = 0;
        ntok = 0;
        for (i = 0; i < pa->pattern.len; i++) {
            if ((unsigned char) pa->pattern.data[i] < 0x20
                || pa->pattern.data[i] == 0x7f)
            {
                bad = 1;
            }
            if (pa->pattern.data[i] == '*' && i + 1 < pa->pattern.len
                && pa->pattern.data[i + 1] == '*')
            {
                i++;
            }
            ntok++;
        }
        if (bad) {
            pol_err(ck, &pa->pos, "path pattern contains a control "
                    "character");
        } else if (ntok > POL_MAX_GLOB) {
            pol_err(ck, &pa->pos, "path pattern is too long (at most %d "
                    "characters)", POL_MAX_GLOB);
        } else if (pa->prefix
                   && (memchr(pa->pattern.data, '*', pa->pattern.len)
                       || memchr(pa->pattern.data, '?', pa->pattern.len)))
        {
            pol_err(ck, &pa->pos, "path prefix \"%.*s\" cannot contain "
                    "wildcards; write path \"%.*s\" for a pattern",
                    (int) pa->pattern.len, pa->pattern.data,
                    (int) pa->pattern.len, pa->pattern.data);
        }
    }

    for (m = r->methods; m != NULL; m = m->next) {
        if (!pol_is_token(&m->name)) {
            pol_err(ck, &m->pos, "\"%.*s\" is not a valid HTTP method",
                    (int) m->name.len, m->name.data);
        }
    }

    if (r->when != NULL) {
        pol_check_cond(ck, r->when);
    }

    n = 0;
    for (h = r->headers; h != NULL; h = h->next) {
        n++;
        if (r->outcome != POL_ALLOW && r->outcome != 0) {
            pol_err(ck, &h->pos, "header lines are only allowed in a rule "
                    "that allows; rule \"%.*s\" ends in %s",
                    (int) r->name.len, r->name.data,
                    pol_outcome_name((pol_outcome_t) r->outcome));
            break;
        }
        if (n > POL_MAX_HEADERS) {
            pol_err(ck, &h->pos, "rule \"%.*s\" sets more than %d headers",
                    (int) r->name.len, r->name.data, POL_MAX_HEADERS);
            break;
        }
        if (!pol_is_token(&h->name)) {
            pol_err(ck, &h->pos, "\"%.*s\" is not a valid header name",
                    (int) h->name.len, h->name.data);
            continue;
        }
        bad = 0;
        for (i = 0; pol_forbidden_headers[i] != NULL; i++) {
            if (strlen(pol_forbidden_headers[i]) == h->name.len
                && strncasecmp(pol_forbidden_headers[i], h->name.data,
                               h->name.len) == 0)
            {
                bad = 1;
            }
        }
        if (bad) {
            pol_err(ck, &h->pos, "header \"%.*s\" cannot be set by a policy",
                    (int) h->name.len, h->name.data);
            continue;
        }
        if (h->name.len >= 5 && strncasecmp(h->name.data, "X-ZT-", 5) == 0)
        {
            pol_err(ck, &h->pos, "header \"%.*s\" cannot be set by a policy: "
                    "X-ZT-* belongs to ztgate", (int) h->name.len,
                    h->name.data);
            continue;
        }

        h->value.attr = -1;
        if (h->value.kind == AST_OP_STRING) {
            h->value.type = POL_T_STRING;
            for (i = 0; i < h->value.text.len; i++) {
                if ((unsigned char) h->value.text.data[i] < 0x20
                    || h->value.text.data[i] == 0x7f)
                {
                    pol_err(ck, &h->value.pos, "header value contains a "
                            "control character");
                    break;
                }
            }
            continue;
        }

        a = pol_attr_lookup(h->value.text.data, h->value.text.len);
        if (a < 0) {
            pol_suggest(ck, &h->value.text, 1, 0, sug, sizeof(sug));
            pol_err(ck, &h->value.pos, "unknown attribute \"%.*s\"%s",
                    (int) h->value.text.len, h->value.text.data, sug);
            continue;
        }
        if (pol_attrs[a].type != POL_T_STRING) {
            pol_err(ck, &h->value.pos, "a header value must be a string or a "
                    "string attribute; %s is a %s", pol_attrs[a].name,
                    pol_type_name(pol_attrs[a].type));
            continue;
        }
        h->value.attr = a;
        h->value.type = POL_T_STRING;
    }

    if (r->cache > 3600) {
        pol_err(ck, &r->cache_pos, "cache lifetime must be from 0s to 1h");
    }
}


static int
pol_paths_cover(const ast_rule_t *e, const ast_rule_t *r)
{
    const ast_path_t  *ep, *rp;
    int                found;

    if (e->paths == NULL) {
        return 1;
    }
    for (ep = e->paths; ep != NULL; ep = ep->next) {
        if (ep->prefix && ep->pattern.len == 1 && ep->pattern.data[0] == '/')
        {
            return 1;
        }
    }
    if (r->paths == NULL) {
        return 0;
    }
    for (rp = r->paths; rp != NULL; rp = rp->next) {
        found = 0;
        for (ep = e->paths; ep != NULL; ep = ep->next) {
            if (ep->prefix == rp->prefix && ep->pattern.len == rp->pattern.len
                && memcmp(ep->pattern.data, rp->pattern.data,
                          rp->pattern.len) == 0)
            {
                found = 1;
                break;
            }
        }
        if (!found) {
            return 0;
        }
    }
    return 1;
}


static int
pol_methods_cover(const ast_rule_t *e, const ast_rule_t *r)
{
    const ast_method_t  *em, *rm;
    int                  found;

    if (e->methods == NULL) {
        return 1;
    }
    if (r->methods == NULL) {
        return 0;
    }
    for (rm = r->methods; rm != NULL; rm = rm->next) {
        found = 0;
        for (em = e->methods; em != NULL; em = em->next) {
            if (em->name.len == rm->name.len
                && strncasecmp(em->name.data, rm->name.data, rm->name.len)
                   == 0)
            {
                found = 1;
                break;
            }
        }
        if (!found) {
            return 0;
        }
    }
    return 1;
}


static void
pol_check_shadow(pol_checker_t *ck, ast_app_t *app)
{
    ast_rule_t  *r, *e;
    int          allow;

    allow = 0;

    for (r = app->rules; r != NULL; r = r->next) {
        if (!r->report_only && r->outcome == POL_ALLOW) {
            allow = 1;
        }
        if (r->report_only || r->outcome == POL_DENY || r->outcome == 0) {
            continue;
        }
        for (e = app->rules; e != r; e = e->next) {
            if (e->report_only || e->outcome == POL_DENY || e->outcome == 0
                || e->when != NULL
                || (e->name.len == r->name.len
                    && memcmp(e->name.data, r->name.data, r->name.len) == 0))
            {
                continue;
            }
            if (pol_paths_cover(e, r) && pol_methods_cover(e, r)) {
                pol_warn(ck, &r->pos, "rule \"%.*s\" can never decide: rule "
                         "\"%.*s\" (%s:%u) matches every request it matches",
                         (int) r->name.len, r->name.data, (int) e->name.len,
                         e->name.data, e->pos.file, e->pos.line);
                break;
            }
        }
    }

    if (!allow && app->rules != NULL) {
        pol_warn(ck, &app->pos, "app \"%.*s\" has no allow rule; every "
                 "request to it is denied", (int) app->name.len,
                 app->name.data);
    }
}


static void
pol_check_apps(pol_checker_t *ck)
{
    pol_htab_t    apps, hosts, rules;
    ast_app_t    *app, *other;
    ast_host_t   *h, *oh;
    ast_rule_t   *r, *or;
    size_t        nhosts, nrules;

    nhosts = 0;
    for (app = ck->ast->apps; app != NULL; app = app->next) {
        for (h = app->hosts; h != NULL; h = h->next) {
            nhosts++;
        }
    }

    if (pol_htab_init(&apps, ck->ast->napps, 0) != 0) {
        ck->nomem = 1;
        return;
    }
    if (pol_htab_init(&hosts, nhosts, 1) != 0) {
        pol_htab_free(&apps);
        ck->nomem = 1;
        return;
    }

    for (app = ck->ast->apps; app != NULL; app = app->next) {
        other = pol_htab_get(&apps, app->name.data, app->name.len);
        if (other != NULL) {
            pol_err(ck, &app->pos, "duplicate app \"%.*s\"; first defined "
                    "at %s:%u", (int) app->name.len, app->name.data,
                    other->pos.file, other->pos.line);
        } else {
            pol_htab_put(&apps, app->name.data, app->name.len, app);
        }

        if (app->hosts == NULL) {
            pol_err(ck, &app->pos, "app \"%.*s\" has no host line; add "
                    "host \"name\"", (int) app->name.len, app->name.data);
        }
        if (app->rules == NULL) {
            pol_err(ck, &app->pos, "app \"%.*s\" has no rules",
                    (int) app->name.len, app->name.data);
        }

        for (h = app->hosts; h != NULL; h = h->next) {
            if (pol_check_host(&h->pattern) != 0) {
                pol_err(ck, &h->pos, "invalid host pattern \"%.*s\"; "
                        "expected a host name, \"*.\" and a domain, or "
                        "\"*\"", (int) h->pattern.len, h->pattern.data);
                continue;
            }
            oh = pol_htab_get(&hosts, h->pattern.data, h->pattern.len);
            if (oh != NULL) {
                pol_err(ck, &h->pos, "host \"%.*s\" is already used at %s:%u",
                        (int) h->pattern.len, h->pattern.data,
                        oh->pos.file, oh->pos.line);
                continue;
            }
            pol_htab_put(&hosts, h->pattern.data, h->pattern.len, h);
        }

        nrules = 0;
        for (r = app->rules; r != NULL; r = r->next) {
            nrules++;
        }
        if (pol_htab_init(&rules, nrules, 0) != 0) {
            ck->nomem = 1;
            break;
        }
        for (r = app->rules; r != NULL; r = r->next) {
            or = pol_htab_get(&rules, r->name.data, r->name.len);
            if (or != NULL) {
                pol_err(ck, &r->pos, "duplicate rule \"%.*s\" in app \"%.*s\"; "
                        "first defined at %s:%u", (int) r->name.len,
                        r->name.data, (int) app->name.len, app->name.data,
                        or->pos.file, or->pos.line);
            } else {
                pol_htab_put(&rules, r->name.data, r->name.len, r);
            }
            pol_check_rule(ck, r);
        }
        pol_htab_free(&rules);

        pol_check_shadow(ck, app);
    }

    pol_htab_free(&apps);
    pol_htab_free(&hosts);
}


/*
 * Checks a parsed policy.  Returns 0 if it has no errors (warnings are
 * fine), -1 otherwise; every diagnostic is in diags.
 */
int
pol_check(ast_policy_t *ast, pol_diags_t *diags)
{
    pol_checker_t   ck;
    ast_def_t      *d, *other;
    size_t          ndefs;
    unsigned        errors;
    const char     *kind;

    memset(&ck, 0, sizeof(ck));
    ck.ast = ast;
    ck.diags = diags;
    errors = diags->nerrors;

    ndefs = 0;
    for (d = ast->defs; d != NULL; d = d->next) {
        ndefs++;
    }

    if (pol_htab_init(&ck.defs, ndefs, 0) != 0) {
        pol_diag_add(diags, 0, "", 0, 0, "out of memory");
        return -1;
    }
    ck.stack = malloc((ndefs + 1) * sizeof(ast_def_t *));
    if (ck.stack == NULL) {
        pol_htab_free(&ck.defs);
        pol_diag_add(diags, 0, "", 0, 0, "out of memory");
        return -1;
    }

    for (d = ast->defs; d != NULL; d = d->next) {
        other = pol_htab_get(&ck.defs, d->name.data, d->name.len);
        if (other != NULL) {
            pol_err(&ck, &d->pos, "duplicate definition of \"%.*s\"; first "
                    "defined at %s:%u", (int) d->name.len, d->name.data,
                    other->pos.file, other->pos.line);
            d->bad = 1;
            continue;
        }
        pol_htab_put(&ck.defs, d->name.data, d->name.len, d);
    }

    for (d = ast->defs; d != NULL; d = d->next) {
        if (d->kind == AST_DEF_CONDITION && !d->bad) {
            pol_check_cond(&ck, d->cond);
        }
    }

    for (d = ast->defs; d != NULL; d = d->next) {
        pol_check_cycles(&ck, d);
    }

    pol_check_apps(&ck);

    for (d = ast->defs; d != NULL; d = d->next) {
        if (!d->used && !d->bad) {
            kind = pol_def_kind(d);
            pol_warn(&ck, &d->pos, "%s \"%.*s\" is defined but never used",
                     kind, (int) d->name.len, d->name.data);
        }
    }

    if (ck.nomem) {
        pol_diag_add(diags, 0, "", 0, 0, "out of memory");
    }

    free(ck.stack);
    pol_htab_free(&ck.defs);

    return (diags->nerrors > errors) ? -1 : 0;
}
