/*
 * Policy compiler: turns a checked AST into the immutable pol_t that
 * pol_eval() reads.  Everything the evaluator touches lives in the
 * policy's one arena: apps with a host index, rules with precompiled path
 * matchers and a per-app index by first path segment, conditions as a
 * node array with resolved attribute ids, and pre-built sets (sorted
 * strings, masked CIDRs).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy_int.h"

typedef struct {
    pol_t           *pol;
    pol_arena_t     *a;
    pol_node_t      *nodes;
    unsigned         nnodes, capnodes;
    uint32_t        *kids;
    unsigned         nkids, capkids;
    pol_set_t       *sets;
    unsigned         nsets, capsets;
    int              nomem;
} pol_compiler_t;

typedef struct {
    pol_str_t        key;
    uint32_t         rule;
} pol_keyref_t;

static const struct {
    const char      *name;
    unsigned         bit;
} pol_methods[] = {
    { "GET", POL_M_GET }, { "HEAD", POL_M_HEAD }, { "POST", POL_M_POST },
    { "PUT", POL_M_PUT }, { "DELETE", POL_M_DELETE },
    { "PATCH", POL_M_PATCH }, { "OPTIONS", POL_M_OPTIONS },
    { "CONNECT", POL_M_CONNECT }, { "TRACE", POL_M_TRACE }
};

static int pol_c_str(pol_compiler_t *cc, pol_str_t *out, const char *s,
    size_t len);
static int32_t pol_c_node(pol_compiler_t *cc);
static int32_t pol_c_cond(pol_compiler_t *cc, ast_cond_t *c);
static void pol_c_operand(pol_compiler_t *cc, const ast_operand_t *o,
    pol_operand_t *out);
static int32_t pol_c_def(pol_compiler_t *cc, ast_def_t *d);
static int32_t pol_c_set(pol_compiler_t *cc, ast_set_t *s, int icase);
static int32_t pol_c_set_items(pol_compiler_t *cc, const ast_item_t *items,
    unsigned n, pol_type_t elem, int icase);
static int pol_str_cmp(const void *a, const void *b);
static int pol_str_casecmp(const void *a, const void *b);
static unsigned pol_set_auth_mask(const pol_set_t *s);
static int pol_c_app(pol_compiler_t *cc, ast_app_t *app, pol_app_t *out);
static int pol_c_rule(pol_compiler_t *cc, ast_rule_t *r, pol_rule_t *out);
static int pol_c_path(pol_compiler_t *cc, const ast_path_t *pa,
    pol_path_t *out);
static int pol_path_key(const pol_path_t *p, pol_str_t *key);
static int pol_keyref_cmp(const void *a, const void *b);
static int pol_c_index(pol_compiler_t *cc, pol_app_t *app);
static int pol_c_hosts(pol_compiler_t *cc, ast_policy_t *ast);
static int pol_hostent_cmp(const void *a, const void *b);
static int pol_wild_cmp(const void *a, const void *b);


uint32_t
pol_seg_hash(const char *s, size_t len)
{
    uint32_t  h;
    size_t    i;

    h = 2166136261u;
    for (i = 0; i < len; i++) {
        h = (h ^ (unsigned char) s[i]) * 16777619u;
    }
    return h;
}


static int
pol_c_str(pol_compiler_t *cc, pol_str_t *out, const char *s, size_t len)
{
    char  *p;

    p = pol_strndup(cc->a, s, len);
    if (p == NULL) {
        cc->nomem = 1;
        out->data = "";
        out->len = 0;
        return -1;
    }
    out->data = p;
    out->len = len;
    return 0;
}


static int32_t
pol_c_node(pol_compiler_t *cc)
{
    pol_node_t  *n;
    unsigned     cap;

    if (cc->nnodes == cc->capnodes) {
        cap = cc->capnodes ? cc->capnodes * 2 : 64;
        n = realloc(cc->nodes, cap * sizeof(pol_node_t));
        if (n == NULL) {
            cc->nomem = 1;
            return -1;
        }
        cc->nodes = n;
        cc->capnodes = cap;
    }

    memset(&cc->nodes[cc->nnodes], 0, sizeof(pol_node_t));
    return (int32_t) cc->nnodes++;
}


static void
pol_c_operand(pol_compiler_t *cc, const ast_operand_t *o, pol_operand_t *out)
{
    memset(out, 0, sizeof(*out));
    out->type = (uint8_t) o->type;

    if (o->attr >= 0) {
        out->is_attr = 1;
        out->attr = (uint16_t) o->attr;
        return;
    }

    switch (o->kind) {
    case AST_OP_STRING:
        (void) pol_c_str(cc, &out->str, o->text.data, o->text.len);
        if (out->type == POL_T_STRING) {
            out->num = pol_auth_method_bit(o->text.data, o->text.len);
        }
        break;
    case AST_OP_NUMBER:
    case AST_OP_DURATION:
        out->num = o->num;
        break;
    case AST_OP_ADDR:
        memcpy(out->addr, o->addr, 16);
        out->family = o->family;
        break;
    case AST_OP_IDENT:
        out->num = o->value;
        break;
    }
}


static int32_t
pol_c_def(pol_compiler_t *cc, ast_def_t *d)
{
    if (d->node < 0) {
        d->node = pol_c_cond(cc, d->cond);
    }
    return d->node;
}


static int
pol_str_cmp(const void *a, const void *b)
{
    const pol_str_t  *x = a, *y = b;
    size_t            n;
    int               r;

    n = x->len < y->len ? x->len : y->len;
    r = n ? memcmp(x->data, y->data, n) : 0;
    if (r != 0) {
        return r;
    }
    return (x->len > y->len) - (x->len < y->len);
}


static int
pol_str_casecmp(const void *a, const void *b)
{
    const pol_str_t  *x = a, *y = b;
    size_t            n;
    int               r;

    n = x->len < y->len ? x->len : y->len;
    r = n ? strncasecmp(x->data, y->data, n) : 0;
    if (r != 0) {
        return r;
    }
    return (x->len > y->len) - (x->len < y->len);
}


static int32_t
pol_c_set_items(pol_compiler_t *cc, const ast_item_t *items, unsigned n,
    pol_type_t elem, int icase)
{
    pol_set_t         *s;
    const ast_item_t  *it;
    unsigned           i, cap, b, full;

    if (cc->nsets == cc->capsets) {
        cap = cc->capsets ? cc->capsets * 2 : 16;
        s = realloc(cc->sets, cap * sizeof(pol_set_t));
        if (s == NULL) {
            cc->nomem = 1;
            return -1;
        }
        cc->sets = s;
        cc->capsets = cap;
    }

    s = &cc->sets[cc->nsets];
    memset(s, 0, sizeof(*s));
    s->elem = elem;
    s->icase = icase;
    s->n = n;

    if (elem == POL_T_STRING) {
        s->strs = pol_alloc(cc->a, (n ? n : 1) * sizeof(pol_str_t));
        if (s->strs == NULL) {
            cc->nomem = 1;
            return -1;
        }
        for (i = 0, it = items; it != NULL; it = it->next, i++) {
            (void) pol_c_str(cc, &s->strs[i], it->v.text.data,
                             it->v.text.len);
        }
        qsort(s->strs, n, sizeof(pol_str_t),
              icase ? pol_str_casecmp : pol_str_cmp);

    } else if (elem == POL_T_ADDRESS) {
        s->cidrs = pol_alloc(cc->a, (n ? n : 1) * sizeof(pol_cidr_t));
        if (s->cidrs == NULL) {
            cc->nomem = 1;
            return -1;
        }
        for (i = 0, it = items; it != NULL; it = it->next, i++) {
            s->cidrs[i].family = it->v.family;
            memcpy(s->cidrs[i].addr, it->v.addr, 16);
            full = (it->v.family == 4) ? 32 : 128;
            for (b = 0; b < it->v.prefix && b < full; b++) {
                s->cidrs[i].mask[b / 8] |= (uint8_t) (0x80 >> (b % 8));
            }
        }

    } else {
        s->nums = pol_alloc(cc->a, (n ? n : 1) * sizeof(int64_t));
        if (s->nums == NULL) {
            cc->nomem = 1;
            return -1;
        }
        for (i = 0, it = items; it != NULL; it = it->next, i++) {
            s->nums[i] = (it->v.kind == AST_OP_IDENT) ? it->v.value
                                                      : it->v.num;
        }
    }

    return (int32_t) cc->nsets++;
}


static int32_t
pol_c_set(pol_compiler_t *cc, ast_set_t *s, int icase)
{
    ast_def_t  *d;

    d = s->def;
    if (d == NULL) {
        return pol_c_set_items(cc, s->items, s->nitems, s->elem, icase);
    }

    /* definitions are built once; an icase use gets its own copy */
    if (icase) {
        return pol_c_set_items(cc, d->items, d->nitems, s->elem, 1);
    }
    if (d->node < 0) {
        d->node = pol_c_set_items(cc, d->items, d->nitems, s->elem, 0);
    }
    return d->node;
}


static unsigned
pol_set_auth_mask(const pol_set_t *s)
{
    unsigned  i, mask;

    mask = 0;
    if (s->elem != POL_T_STRING) {
        return 0;
    }
    for (i = 0; i < s->n; i++) {
        mask |= (unsigned) pol_auth_method_bit(s->strs[i].data,
                                               s->strs[i].len);
    }
    return mask;
}


static int32_t
pol_c_cond(pol_compiler_t *cc, ast_cond_t *c)
{
    int32_t      idx, k, set;
    uint32_t    *kids, *nk;
    ast_cond_t  *kc;
    pol_node_t  *n;
    unsigned     i, cap, nkids;
    char         text[160];
    const char  *word;

    nkids = 0;
    kids = NULL;

    if (c->kind == AST_AND || c->kind == AST_OR || c->kind == AST_NOT) {
        kids = malloc(c->nkids * sizeof(uint32_t));
        if (kids == NULL) {
            cc->nomem = 1;
            return -1;
        }
        for (kc = c->kids; kc != NULL; kc = kc->next) {
            k = pol_c_cond(cc, kc);
            if (k < 0) {
                free(kids);
                return -1;
            }
            kids[nkids++] = (uint32_t) k;
        }
    }

    idx = pol_c_node(cc);
    if (idx < 0) {
        free(kids);
        return -1;
    }

    if (kids != NULL) {
        if (cc->nkids + nkids > cc->capkids) {
            cap = cc->capkids ? cc->capkids : 64;
            while (cap < cc->nkids + nkids) {
                cap *= 2;
            }
            nk = realloc(cc->kids, cap * sizeof(uint32_t));
            if (nk == NULL) {
                free(kids);
                cc->nomem = 1;
                return -1;
            }
            cc->kids = nk;
            cc->capkids = cap;
        }
        for (i = 0; i < nkids; i++) {
            cc->kids[cc->nkids + i] = kids[i];
        }
        free(kids);
    }

    n = &cc->nodes[idx];
    n->line = c->pos.line;
    n->col = c->pos.col;
    word = NULL;

    switch (c->kind) {
    case AST_AND:
    case AST_OR:
    case AST_NOT:
        n->kind = (c->kind == AST_AND) ? POL_N_AND
                  : (c->kind == AST_OR) ? POL_N_OR : POL_N_NOT;
        word = (c->kind == AST_AND) ? "and"
               : (c->kind == AST_OR) ? "or" : "not";
        n->a = cc->nkids;
        n->n = nkids;
        cc->nkids += nkids;
        break;

    case AST_TEST:
        if (c->lhs.def != NULL) {
            k = pol_c_def(cc, c->lhs.def);
            if (k < 0) {
                return -1;
            }
            n = &cc->nodes[idx];
            n->kind = POL_N_NAMED;
            n->a = (uint32_t) k;
        } else if (c->lhs.attr >= 0) {
            n->kind = POL_N_ATTR;
            pol_c_operand(cc, &c->lhs, &n->l);
        } else {
            n->kind = c->lhs.value ? POL_N_TRUE : POL_N_FALSE;
        }
        break;

    case AST_CMP:
        n->kind = POL_N_CMP;
        n->op = (uint8_t) c->op;
        pol_c_operand(cc, &c->lhs, &n->l);
        pol_c_operand(cc, &c->rhs, &n->r);
        n->icase = (c->lhs.attr == POL_A_REQUEST_METHOD
                    || c->lhs.attr == POL_A_REQUEST_HOST
                    || c->rhs.attr == POL_A_REQUEST_METHOD
                    || c->rhs.attr == POL_A_REQUEST_HOST);
        /* a named condition compared with true/false */
        if (c->lhs.def != NULL || c->rhs.def != NULL) {
            if (c->lhs.def != NULL) {
                k = pol_c_def(cc, c->lhs.def);
                if (k < 0) {
                    return -1;
                }
                cc->nodes[idx].l.num = k;
            }
            if (c->rhs.def != NULL) {
                k = pol_c_def(cc, c->rhs.def);
                if (k < 0) {
                    return -1;
                }
                cc->nodes[idx].r.num = k;
            }
            n = &cc->nodes[idx];
            n->l.type = POL_T_BOOL;
            n->r.type = POL_T_BOOL;
            n->neg = (uint8_t) ((c->lhs.def ? 1 : 0)
                                | (c->rhs.def ? 2 : 0));
        }
        break;

    case AST_IN:
    case AST_NOT_IN:
        n->kind = POL_N_IN;
        n->neg = (c->kind == AST_NOT_IN);
        pol_c_operand(cc, &c->lhs, &n->l);
        n->icase = (c->lhs.attr == POL_A_REQUEST_METHOD
                    || c->lhs.attr == POL_A_REQUEST_HOST);
        if (c->set.attr >= 0) {
            n->set_attr = 1;
            n->r.is_attr = 1;
            n->r.attr = (uint16_t) c->set.attr;
            n->r.type = POL_T_SET;
        } else {
            set = pol_c_set(cc, &c->set, n->icase);
            if (set < 0) {
                return -1;
            }
            n = &cc->nodes[idx];
            n->set = (uint32_t) set;
            n->mask = pol_set_auth_mask(&cc->sets[set]);
        }
        break;

    case AST_CONTAINS:
        n->kind = POL_N_CONTAINS;
        pol_c_operand(cc, &c->lhs, &n->l);
        pol_c_operand(cc, &c->rhs, &n->r);
        if (c->rhs.kind == AST_OP_STRING) {
            n->mask = (unsigned) pol_auth_method_bit(c->rhs.text.data,
                                                     c->rhs.text.len);
        }
        break;
    }

    n = &cc->nodes[idx];
    if (word != NULL) {
        n->text = word;
    } else if (n->kind == POL_N_NAMED) {
        n->text = pol_strndup(cc->a, c->lhs.text.data, c->lhs.text.len);
    } else {
        pol_fmt_cond(text, sizeof(text), c);
        n->text = pol_strndup(cc->a, text, strlen(text));
    }
    if (n->text == NULL) {
        cc->nomem = 1;
        return -1;
    }

    return idx;
}


static int
pol_c_path(pol_compiler_t *cc, const ast_path_t *pa, pol_path_t *out)
{
    const char  *s;
    size_t       len, i, head;
    unsigned     n;

    s = pa->pattern.data;
    len = pa->pattern.len;

    if (pol_c_str(cc, &out->pattern, s, len) != 0) {
        return -1;
    }

    if (pa->prefix) {
        out->kind = POL_PATH_PREFIX;
        while (len > 1 && s[len - 1] == '/') {
            len--;
        }
        return pol_c_str(cc, &out->lit, s, len);
    }

    if (memchr(s, '*', len) == NULL && memchr(s, '?', len) == NULL) {
        out->kind = POL_PATH_EXACT;
        out->lit = out->pattern;
        return 0;
    }

    out->kind = POL_PATH_GLOB;
    out->glob = pol_alloc(cc->a, (len + 1) * sizeof(uint16_t));
    if (out->glob == NULL) {
        cc->nomem = 1;
        return -1;
    }

    head = len;
    n = 0;
    for (i = 0; i < len; i++) {
        if (s[i] == '*' || s[i] == '?') {
            if (head == len) {
                head = i;
            }
            if (s[i] == '?') {
                out->glob[n++] = POL_GLOB_ANY1;
            } else if (i + 1 < len && s[i + 1] == '*') {
                out->glob[n++] = POL_GLOB_DSTAR;
                i++;
            } else {
                out->glob[n++] = POL_GLOB_STAR;
            }
        } else {
            out->glob[n++] = (unsigned char) s[i];
        }
    }
    out->nglob = n;

    return pol_c_str(cc, &out->lit, s, head);
}


/* The rule index key of a path: its first segment, or -1 if it has none. */
static int
pol_path_key(const pol_path_t *p, pol_str_t *key)
{
    const char  *s, *e;
    size_t       len;

    s = p->pattern.data;
    len = p->pattern.len;

    if (p->kind == POL_PATH_PREFIX && p->lit.len == 1) {
        return -1;
    }
    if (len == 0 || s[0] != '/') {
        return -1;
    }

    e = memchr(s + 1, '/', len - 1);
    key->data = s + 1;
    key->len = e ? (size_t) (e - s - 1) : len - 1;

    if (memchr(key->data, '*', key->len) != NULL
        || memchr(key->data, '?', key->len) != NULL)
    {
        return -1;
    }
    return 0;
}


static int
pol_c_rule(pol_compiler_t *cc, ast_rule_t *r, pol_rule_t *out)
{
    ast_path_t    *pa;
    ast_method_t  *m;
    ast_header_t  *h;
    unsigned       i, n, j;
    int            bit;
    char           reason[300];

    if (pol_c_str(cc, &out->name, r->name.data, r->name.len) != 0
        || pol_c_str(cc, &out->file, r->pos.file, strlen(r->pos.file)) != 0)
    {
        return -1;
    }
    out->line = r->pos.line;
    out->col = r->pos.col;
    out->outcome = (pol_outcome_t) r->outcome;
    out->report_only = r->report_only;
    out->ttl_ms = (r->cache >= 0) ? r->cache * 1000 : -1;
    out->cond = -1;

    if (out->outcome == POL_DENY) {
        out->status = r->status ? r->status : 403;
        if (r->has_reason) {
            if (pol_c_str(cc, &out->reason, r->reason.data, r->reason.len)
                != 0)
            {
                return -1;
            }
        } else {
            snprintf(reason, sizeof(reason), "denied by rule %.*s",
                     (int) (r->name.len > 250 ? 250 : r->name.len),
                     r->name.data);
            if (pol_c_str(cc, &out->reason, reason, strlen(reason)) != 0) {
                return -1;
            }
        }
    } else {
        out->reason.data = "";
    }

    n = 0;
    for (pa = r->paths; pa != NULL; pa = pa->next) {
        n++;
    }
    if (n) {
        out->paths = pol_alloc(cc->a, n * sizeof(pol_path_t));
        if (out->paths == NULL) {
            cc->nomem = 1;
            return -1;
        }
        for (pa = r->paths; pa != NULL; pa = pa->next) {
            if (pol_c_path(cc, pa, &out->paths[out->npaths++]) != 0) {
                return -1;
            }
        }
    }

    n = 0;
    for (m = r->methods; m != NULL; m = m->next) {
        n++;
    }
    if (n) {
        out->xmethods = pol_alloc(cc->a, n * sizeof(pol_str_t));
        if (out->xmethods == NULL) {
            cc->nomem = 1;
            return -1;
        }
    }
    for (m = r->methods; m != NULL; m = m->next) {
        bit = 0;
        for (j = 0; j < sizeof(pol_methods) / sizeof(pol_methods[0]); j++) {
            if (strlen(pol_methods[j].name) == m->name.len
                && strncasecmp(pol_methods[j].name, m->name.data,
                               m->name.len) == 0)
            {
                bit = (int) pol_methods[j].bit;
            }
        }
        if (bit == 0) {
            bit = POL_M_OTHER;
            if (pol_c_str(cc, &out->xmethods[out->nxmethods++], m->name.data,
                          m->name.len) != 0)
            {
                return -1;
            }
        }
        out->methods |= (unsigned) bit;
    }

    if (r->when != NULL) {
        out->cond = pol_c_cond(cc, r->when);
        if (out->cond < 0) {
            return -1;
        }
    }

    if (r->nheaders) {
        out->headers = pol_alloc(cc->a,
                                 r->nheaders * sizeof(pol_rule_header_t));
        if (out->headers == NULL) {
            cc->nomem = 1;
            return -1;
        }
        i = 0;
        for (h = r->headers; h != NULL && i < POL_MAX_HEADERS; h = h->next) {
            if (pol_c_str(cc, &out->headers[i].name, h->name.data,
                          h->name.len) != 0)
            {
                return -1;
            }
            pol_c_operand(cc, &h->value, &out->headers[i].value);
            i++;
        }
        out->nheaders = i;
    }

    return cc->nomem ? -1 : 0;
}


static int
pol_keyref_cmp(const void *a, const void *b)
{
    const pol_keyref_t  *x = a, *y = b;
    int                  r;

    r = pol_str_cmp(&x->key, &y->key);
    if (r != 0) {
        return r;
    }
    return (x->rule > y->rule) - (x->rule < y->rule);
}


/*
 * Builds the rule index of an app: each enforced rule goes into the list
 * of every first path segment its patterns start with, or into the
 * catch-all list when a pattern starts with a wildcard or it has no path.
 */
static int
pol_c_index(pol_compiler_t *cc, pol_app_t *app)
{
    pol_keyref_t   *refs;
    pol_rule_t     *r;
    pol_segment_t  *seg;
    pol_str_t       key;
    unsigned        i, j, nrefs, cap, nseg, start, ncatch, nrep;
    uint32_t        h;
    int             catchall;

    cap = 0;
    ncatch = 0;
    nrep = 0;
    for (i = 0; i < app->nrules; i++) {
        cap += app->rules[i].npaths;
        if (app->rules[i].report_only) {
            nrep++;
        }
    }

    app->catchall = pol_alloc(cc->a, (app->nrules + 1) * sizeof(uint32_t));
    app->reports = pol_alloc(cc->a, (nrep + 1) * sizeof(uint32_t));
    refs = malloc((cap + 1) * sizeof(pol_keyref_t));
    if (app->catchall == NULL || app->reports == NULL || refs == NULL) {
        free(refs);
        cc->nomem = 1;
        return -1;
    }

    nrefs = 0;
    app->catchall_lastdeny = -1;

    for (i = 0; i < app->nrules; i++) {
        r = &app->rules[i];
        if (r->report_only) {
            app->reports[app->nreports++] = i;
            continue;
        }

        catchall = (r->npaths == 0);
        for (j = 0; j < r->npaths; j++) {
            if (pol_path_key(&r->paths[j], &key) != 0) {
                catchall = 1;
            }
        }

        if (catchall) {
            app->catchall[ncatch++] = i;
            if (r->outcome == POL_DENY) {
                app->catchall_lastdeny = (int32_t) i;
            }
            continue;
        }

        for (j = 0; j < r->npaths; j++) {
            (void) pol_path_key(&r->paths[j], &key);
            refs[nrefs].key = key;
            refs[nrefs].rule = i;
            nrefs++;
        }
    }
    app->ncatchall = ncatch;

    if (nrefs == 0) {
        free(refs);
        return 0;
    }

    qsort(refs, nrefs, sizeof(pol_keyref_t), pol_keyref_cmp);

    nseg = 1;
    for (i = 1; i < nrefs; i++) {
        if (pol_str_cmp(&refs[i].key, &refs[i - 1].key) != 0) {
            nseg++;
        }
    }

    cap = 8;
    while (cap < nseg * 2) {
        cap *= 2;
    }
    app->segs = pol_alloc(cc->a, cap * sizeof(pol_segment_t));
    if (app->segs == NULL) {
        free(refs);
        cc->nomem = 1;
        return -1;
    }
    app->segmask = cap - 1;

    for (start = 0; start < nrefs; start = i) {
        for (i = start + 1; i < nrefs; i++) {
            if (pol_str_cmp(&refs[i].key, &refs[start].key) != 0) {
                break;
            }
        }

        h = pol_seg_hash(refs[start].key.data, refs[start].key.len)
            & app->segmask;
        while (app->segs[h].key.data != NULL) {
            h = (h + 1) & app->segmask;
        }
        seg = &app->segs[h];

        if (pol_c_str(cc, &seg->key, refs[start].key.data,
                      refs[start].key.len) != 0)
        {
            free(refs);
            return -1;
        }
        seg->rules = pol_alloc(cc->a, (i - start) * sizeof(uint32_t));
        if (seg->rules == NULL) {
            free(refs);
            cc->nomem = 1;
            return -1;
        }
        seg->lastdeny = -1;
        for (j = start; j < i; j++) {
            if (seg->n > 0 && seg->rules[seg->n - 1] == refs[j].rule) {
                continue;
            }
            seg->rules[seg->n++] = refs[j].rule;
            if (app->rules[refs[j].rule].outcome == POL_DENY) {
                seg->lastdeny = (int32_t) refs[j].rule;
            }
        }
    }

    free(refs);
    return 0;
}


static int
pol_c_app(pol_compiler_t *cc, ast_app_t *app, pol_app_t *out)
{
    ast_rule_t  *r;
    unsigned     n;

    if (pol_c_str(cc, &out->name, app->name.data, app->name.len) != 0) {
        return -1;
    }

    n = 0;
    for (r = app->rules; r != NULL; r = r->next) {
        n++;
    }
    out->rules = pol_alloc(cc->a, (n ? n : 1) * sizeof(pol_rule_t));
    if (out->rules == NULL) {
        cc->nomem = 1;
        return -1;
    }

    for (r = app->rules; r != NULL; r = r->next) {
        if (pol_c_rule(cc, r, &out->rules[out->nrules++]) != 0) {
            return -1;
        }
    }

    return pol_c_index(cc, out);
}


static int
pol_hostent_cmp(const void *a, const void *b)
{
    return pol_str_cmp(&((const pol_hostent_t *) a)->host,
                       &((const pol_hostent_t *) b)->host);
}


static int
pol_wild_cmp(const void *a, const void *b)
{
    const pol_hostent_t  *x = a, *y = b;

    if (x->host.len != y->host.len) {
        return (x->host.len < y->host.len) ? 1 : -1;
    }
    return pol_str_cmp(&x->host, &y->host);
}


static int
pol_c_hosts(pol_compiler_t *cc, ast_policy_t *ast)
{
    pol_t       *pol;
    ast_app_t   *app;
    ast_host_t  *h;
    unsigned     n, ai;
    size_t       i;
    char        *lc;

    pol = cc->pol;
    pol->fallback = -1;

    n = 0;
    for (app = ast->apps; app != NULL; app = app->next) {
        for (h = app->hosts; h != NULL; h = h->next) {
            n++;
        }
    }

    pol->exact = pol_alloc(cc->a, (n + 1) * sizeof(pol_hostent_t));
    pol->wild = pol_alloc(cc->a, (n + 1) * sizeof(pol_hostent_t));
    if (pol->exact == NULL || pol->wild == NULL) {
        cc->nomem = 1;
        return -1;
    }

    for (ai = 0, app = ast->apps; app != NULL; app = app->next, ai++) {
        for (h = app->hosts; h != NULL; h = h->next) {
            if (h->pattern.len == 1 && h->pattern.data[0] == '*') {
                pol->fallback = (int) ai;
                continue;
            }
            if (h->pattern.data[0] == '*') {
                lc = pol_strndup(cc->a, h->pattern.data + 1,
                                 h->pattern.len - 1);
            } else {
                lc = pol_strndup(cc->a, h->pattern.data, h->pattern.len);
            }
            if (lc == NULL) {
                cc->nomem = 1;
                return -1;
            }
            for (i = 0; lc[i] != '\0'; i++) {
                if (lc[i] >= 'A' && lc[i] <= 'Z') {
                    lc[i] = (char) (lc[i] + 32);
                }
            }
            if (h->pattern.data[0] == '*') {
                pol->wild[pol->nwild].host.data = lc;
                pol->wild[pol->nwild].host.len = h->pattern.len - 1;
                pol->wild[pol->nwild].app = ai;
                pol->nwild++;
            } else {
                pol->exact[pol->nexact].host.data = lc;
                pol->exact[pol->nexact].host.len = h->pattern.len;
                pol->exact[pol->nexact].app = ai;
                pol->nexact++;
            }
        }
    }

    qsort(pol->exact, pol->nexact, sizeof(pol_hostent_t), pol_hostent_cmp);
    qsort(pol->wild, pol->nwild, sizeof(pol_hostent_t), pol_wild_cmp);
    return 0;
}


/*
 * Compiles a checked AST.  Returns the policy (owned by the caller, free
 * with pol_free) or NULL with an error in diags when out of memory.
 */
pol_t *
pol_compile(ast_policy_t *ast, const char *version, pol_diags_t *diags)
{
    pol_compiler_t   cc;
    pol_t           *pol;
    pol_arena_t      arena;
    ast_app_t       *app;
    ast_def_t       *d;

    memset(&arena, 0, sizeof(arena));
    pol = pol_alloc(&arena, sizeof(pol_t));
    if (pol == NULL) {
        pol_diag_add(diags, 0, "", 0, 0, "out of memory");
        return NULL;
    }

    memset(&cc, 0, sizeof(cc));
    cc.pol = pol;
    cc.a = &arena;

    snprintf(pol->version, sizeof(pol->version), "%s", version);
    pol->tz_offset = ast->tz_offset;

    for (d = ast->defs; d != NULL; d = d->next) {
        d->node = -1;
    }

    pol->apps = pol_alloc(&arena, (ast->napps + 1) * sizeof(pol_app_t));
    if (pol->apps == NULL) {
        cc.nomem = 1;
        goto failed;
    }

    for (app = ast->apps; app != NULL; app = app->next) {
        if (pol_c_app(&cc, app, &pol->apps[pol->napps]) != 0) {
            goto failed;
        }
        pol->nrules += pol->apps[pol->napps].nrules;
        pol->napps++;
    }

    if (pol_c_hosts(&cc, ast) != 0) {
        goto failed;
    }

    pol->nodes = pol_alloc(&arena, (cc.nnodes + 1) * sizeof(pol_node_t));
    pol->kids = pol_alloc(&arena, (cc.nkids + 1) * sizeof(uint32_t));
    pol->sets = pol_alloc(&arena, (cc.nsets + 1) * sizeof(pol_set_t));
    if (pol->nodes == NULL || pol->kids == NULL || pol->sets == NULL) {
        cc.nomem = 1;
        goto failed;
    }
    if (cc.nnodes) {
        memcpy(pol->nodes, cc.nodes, cc.nnodes * sizeof(pol_node_t));
    }
    if (cc.nkids) {
        memcpy(pol->kids, cc.kids, cc.nkids * sizeof(uint32_t));
    }
    if (cc.nsets) {
        memcpy(pol->sets, cc.sets, cc.nsets * sizeof(pol_set_t));
    }
    pol->nnodes = cc.nnodes;
    pol->nkids = cc.nkids;
    pol->nsets = cc.nsets;

    if (cc.nomem) {
        goto failed;
    }

    free(cc.nodes);
    free(cc.kids);
    free(cc.sets);

    /* the arena header lives inside the policy it owns */
    pol->arena = arena;
    return pol;

failed:

    free(cc.nodes);
    free(cc.kids);
    free(cc.sets);
    pol_arena_free(&arena);
    pol_diag_add(diags, 0, "", 0, 0, "out of memory");
    return NULL;
}
