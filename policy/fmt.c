/*
 * Policy formatter: prints a parsed policy in canonical form (definitions
 * first, 4-space indentation, one rule line per line, conditions with the
 * fewest parentheses that keep their structure).  The output parses back
 * to an equivalent policy, and formatting it again gives the same text.
 * Comments are not kept.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_int.h"

typedef struct {
    char    *p;
    size_t   len;
    size_t   cap;
    int      nomem;
} pol_buf_t;

static void pol_buf_add(pol_buf_t *b, const char *s, size_t n);
static void pol_buf_str(pol_buf_t *b, const char *s);
static void pol_buf_printf(pol_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void pol_buf_quote(pol_buf_t *b, const pol_str_t *s);
static void pol_buf_operand(pol_buf_t *b, const ast_operand_t *o);
static void pol_buf_set(pol_buf_t *b, const ast_set_t *s);
static void pol_buf_cond(pol_buf_t *b, const ast_cond_t *c);
static void pol_buf_kid(pol_buf_t *b, const ast_cond_t *k);
static int pol_is_ident(const pol_str_t *s);
static void pol_buf_rule(pol_buf_t *b, const ast_rule_t *r);


static void
pol_buf_add(pol_buf_t *b, const char *s, size_t n)
{
    char    *np;
    size_t   cap;

    if (b->nomem) {
        return;
    }

    if (b->len + n + 1 > b->cap) {
        cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        np = realloc(b->p, cap);
        if (np == NULL) {
            b->nomem = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }

    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}


static void
pol_buf_str(pol_buf_t *b, const char *s)
{
    pol_buf_add(b, s, strlen(s));
}


static void
pol_buf_printf(pol_buf_t *b, const char *fmt, ...)
{
    va_list  ap;
    char     tmp[512];
    int      n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);

    if (n > 0) {
        pol_buf_add(b, tmp, (size_t) n < sizeof(tmp) ? (size_t) n
                                                     : sizeof(tmp) - 1);
    }
}


static void
pol_buf_quote(pol_buf_t *b, const pol_str_t *s)
{
    size_t  i, start;
    char    c;

    pol_buf_add(b, "\"", 1);
    start = 0;
    for (i = 0; i < s->len; i++) {
        c = s->data[i];
        if (c == '"' || c == '\\' || c == '\n' || c == '\t') {
            pol_buf_add(b, s->data + start, i - start);
            switch (c) {
            case '\n':
                pol_buf_add(b, "\\n", 2);
                break;
            case '\t':
                pol_buf_add(b, "\\t", 2);
                break;
            default:
                pol_buf_add(b, "\\", 1);
                pol_buf_add(b, &c, 1);
                break;
            }
            start = i + 1;
        }
    }
    pol_buf_add(b, s->data + start, s->len - start);
    pol_buf_add(b, "\"", 1);
}


static void
pol_buf_operand(pol_buf_t *b, const ast_operand_t *o)
{
    char  tmp[64];

    switch (o->kind) {
    case AST_OP_IDENT:
        pol_buf_add(b, o->text.data, o->text.len);
        break;
    case AST_OP_STRING:
        pol_buf_quote(b, &o->text);
        break;
    case AST_OP_NUMBER:
        pol_buf_printf(b, "%lld", (long long) o->num);
        break;
    case AST_OP_DURATION:
        pol_fmt_duration(tmp, sizeof(tmp), o->num);
        pol_buf_str(b, tmp);
        break;
    case AST_OP_ADDR:
        pol_fmt_addr(tmp, sizeof(tmp), o->family, o->addr, o->prefix);
        pol_buf_str(b, tmp);
        break;
    }
}


static void
pol_buf_set(pol_buf_t *b, const ast_set_t *s)
{
    const ast_item_t  *it;

    switch (s->kind) {
    case AST_SET_LIST:
        pol_buf_add(b, "(", 1);
        for (it = s->items; it != NULL; it = it->next) {
            pol_buf_operand(b, &it->v);
            if (it->next != NULL) {
                pol_buf_add(b, ", ", 2);
            }
        }
        pol_buf_add(b, ")", 1);
        break;
    case AST_SET_NETWORK:
        pol_buf_str(b, "network ");
        pol_buf_add(b, s->name.data, s->name.len);
        break;
    case AST_SET_GROUP:
        pol_buf_str(b, "group ");
        pol_buf_add(b, s->name.data, s->name.len);
        break;
    case AST_SET_NAME:
        pol_buf_add(b, s->name.data, s->name.len);
        break;
    }
}


static void
pol_buf_kid(pol_buf_t *b, const ast_cond_t *k)
{
    if (k->kind == AST_AND || k->kind == AST_OR) {
        pol_buf_add(b, "(", 1);
        pol_buf_cond(b, k);
        pol_buf_add(b, ")", 1);
    } else {
        pol_buf_cond(b, k);
    }
}


static void
pol_buf_cond(pol_buf_t *b, const ast_cond_t *c)
{
    static const char  *ops[] = { " == ", " != ", " < ", " <= ", " > ",
                                  " >= " };
    const ast_cond_t   *k;

    switch (c->kind) {
    case AST_AND:
    case AST_OR:
        for (k = c->kids; k != NULL; k = k->next) {
            pol_buf_kid(b, k);
            if (k->next != NULL) {
                pol_buf_str(b, c->kind == AST_AND ? " and " : " or ");
            }
        }
        break;
    case AST_NOT:
        pol_buf_str(b, "not ");
        pol_buf_kid(b, c->kids);
        break;
    case AST_TEST:
        pol_buf_operand(b, &c->lhs);
        break;
    case AST_CMP:
        pol_buf_operand(b, &c->lhs);
        pol_buf_str(b, ops[c->op]);
        pol_buf_operand(b, &c->rhs);
        break;
    case AST_IN:
    case AST_NOT_IN:
        pol_buf_operand(b, &c->lhs);
        pol_buf_str(b, c->kind == AST_IN ? " in " : " not in ");
        pol_buf_set(b, &c->set);
        break;
    case AST_CONTAINS:
        pol_buf_operand(b, &c->lhs);
        pol_buf_str(b, " contains ");
        pol_buf_operand(b, &c->rhs);
        break;
    }
}


/* Canonical text of one condition, truncated to fit buf. */
size_t
pol_fmt_cond(char *buf, size_t size, const ast_cond_t *c)
{
    pol_buf_t  b;
    size_t     n;

    memset(&b, 0, sizeof(b));
    pol_buf_cond(&b, c);

    if (size == 0) {
        free(b.p);
        return 0;
    }

    n = (b.p == NULL) ? 0 : b.len;
    if (n >= size) {
        n = size - 1;
    }
    if (n) {
        memcpy(buf, b.p, n);
    }
    buf[n] = '\0';
    free(b.p);
    return n;
}


size_t
pol_fmt_operand(char *buf, size_t size, const ast_operand_t *o)
{
    pol_buf_t  b;
    size_t     n;

    memset(&b, 0, sizeof(b));
    pol_buf_operand(&b, o);

    if (size == 0) {
        free(b.p);
        return 0;
    }

    n = (b.p == NULL) ? 0 : b.len;
    if (n >= size) {
        n = size - 1;
    }
    if (n) {
        memcpy(buf, b.p, n);
    }
    buf[n] = '\0';
    free(b.p);
    return n;
}


static int
pol_is_ident(const pol_str_t *s)
{
    size_t  i;
    int     c;

    if (s->len == 0) {
        return 0;
    }
    for (i = 0; i < s->len; i++) {
        c = (unsigned char) s->data[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'
            || (i > 0 && ((c >= '0' && c <= '9') || c == '-')))
        {
            continue;
        }
        return 0;
    }
    return 1;
}


static void
pol_buf_rule(pol_buf_t *b, const ast_rule_t *r)
{
    const ast_path_t    *pa;
    const ast_method_t  *m;
    const ast_header_t  *h;
    char                 tmp[64];

    pol_buf_str(b, "    rule ");
    pol_buf_quote(b, &r->name);
    pol_buf_str(b, " {\n");

    for (pa = r->paths; pa != NULL; pa = pa->next) {
        pol_buf_str(b, pa->prefix ? "        path prefix " : "        path ");
        pol_buf_quote(b, &pa->pattern);
        pol_buf_str(b, "\n");
    }

    if (r->methods != NULL) {
        pol_buf_str(b, "        method ");
        for (m = r->methods; m != NULL; m = m->next) {
            if (pol_is_ident(&m->name)) {
                pol_buf_add(b, m->name.data, m->name.len);
            } else {
                pol_buf_quote(b, &m->name);
            }
            if (m->next != NULL) {
                pol_buf_str(b, ", ");
            }
        }
        pol_buf_str(b, "\n");
    }

    if (r->when != NULL) {
        pol_buf_str(b, "        when ");
        pol_buf_cond(b, r->when);
        pol_buf_str(b, "\n");
    }

    switch (r->outcome) {
    case POL_ALLOW:
        pol_buf_str(b, "        allow\n");
        break;
    case POL_STEP_UP:
        pol_buf_str(b, "        step-up\n");
        break;
    case POL_LOGIN:
        pol_buf_str(b, "        login\n");
        break;
    case POL_DENY:
        pol_buf_str(b, "        deny");
        if (r->status != 0) {
            pol_buf_printf(b, " %u", r->status);
        }
        if (r->has_reason) {
            pol_buf_str(b, " ");
            pol_buf_quote(b, &r->reason);
        }
        pol_buf_str(b, "\n");
        break;
    default:
        break;
    }

    for (h = r->headers; h != NULL; h = h->next) {
        pol_buf_str(b, "        header ");
        pol_buf_quote(b, &h->name);
        pol_buf_str(b, " = ");
        pol_buf_operand(b, &h->value);
        pol_buf_str(b, "\n");
    }

    if (r->cache >= 0) {
        pol_fmt_duration(tmp, sizeof(tmp), r->cache);
        pol_buf_printf(b, "        cache %s\n", tmp);
    }

    if (r->report_only) {
        pol_buf_str(b, "        report-only\n");
    }

    pol_buf_str(b, "    }\n");
}


/*
 * Canonical text of a parsed policy into a malloc'd NUL-terminated buffer
 * (*out, owned by the caller).  Returns -1 when out of memory.
 */
int
pol_fmt_ast(const ast_policy_t *ast, char **out, size_t *len)
{
    pol_buf_t          b;
    const ast_def_t   *d;
    const ast_app_t   *app;
    const ast_host_t  *h;
    const ast_rule_t  *r;
    const ast_item_t  *it;
    int                any;

    memset(&b, 0, sizeof(b));
    any = 0;

    if (ast->has_tz) {
        pol_buf_str(&b, "timezone ");
        pol_buf_quote(&b, &ast->tz);
        pol_buf_str(&b, "\n");
        any = 1;
    }

    if (ast->defs != NULL && any) {
        pol_buf_str(&b, "\n");
    }

    for (d = ast->defs; d != NULL; d = d->next) {
        any = 1;
        switch (d->kind) {
        case AST_DEF_NETWORK:
            pol_buf_str(&b, "network ");
            break;
        case AST_DEF_GROUP:
            pol_buf_str(&b, "group ");
            break;
        case AST_DEF_CONDITION:
            pol_buf_str(&b, "condition ");
            break;
        }
        pol_buf_add(&b, d->name.data, d->name.len);
        pol_buf_str(&b, " = ");
        if (d->kind == AST_DEF_CONDITION) {
            pol_buf_cond(&b, d->cond);
        } else {
            for (it = d->items; it != NULL; it = it->next) {
                pol_buf_operand(&b, &it->v);
                if (it->next != NULL) {
                    pol_buf_str(&b, ", ");
                }
            }
        }
        pol_buf_str(&b, "\n");
    }

    for (app = ast->apps; app != NULL; app = app->next) {
        if (any) {
            pol_buf_str(&b, "\n");
        }
        any = 1;
        pol_buf_str(&b, "app ");
        pol_buf_quote(&b, &app->name);
        pol_buf_str(&b, " {\n");

        if (app->hosts != NULL) {
            pol_buf_str(&b, "    host ");
            for (h = app->hosts; h != NULL; h = h->next) {
                pol_buf_quote(&b, &h->pattern);
                if (h->next != NULL) {
                    pol_buf_str(&b, ", ");
                }
            }
            pol_buf_str(&b, "\n");
        }

        for (r = app->rules; r != NULL; r = r->next) {
            pol_buf_str(&b, "\n");
            pol_buf_rule(&b, r);
        }

        pol_buf_str(&b, "}\n");
    }

    if (b.p == NULL && !b.nomem) {
        pol_buf_add(&b, "", 0);
    }

    if (b.nomem) {
        free(b.p);
        *out = NULL;
        *len = 0;
        return -1;
    }

    *out = b.p;
    *len = b.len;
    return 0;
}
