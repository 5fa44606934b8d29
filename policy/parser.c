/*
 * Policy parser: recursive descent over the lexer's tokens, building the
 * AST with a position on every node.  On a syntax error it reports what
 * was expected and what was found, then skips to the next statement (a
 * keyword at the start of a line, or the closing brace) so that one typo
 * gives one error and the rest of the file is still checked.
 */

#include <stdio.h>
#include <string.h>

#include "policy_int.h"

typedef struct {
    pol_lexer_t      lx;
    pol_tok_t        tok;
    pol_tok_t        ahead;
    int              has_ahead;
    unsigned         prev_line;
    const char      *file;
    pol_arena_t     *arena;
    pol_diags_t     *diags;
    ast_policy_t    *ast;
    int              depth;
    int              nomem;
} pol_parser_t;

static const char  *pol_rule_words[] = {
    "path", "method", "when", "allow", "deny", "step-up", "login",
    "header", "cache", "report-only", NULL
};

static const char  *pol_top_words[] = {
    "timezone", "network", "group", "condition", "app", NULL
};

static const char  *pol_app_words[] = { "host", "rule", NULL };

static const char  *pol_reserved[] = {
    "and", "or", "not", "in", "contains", "true", "false", "source",
    "network", "group", "condition", "app", "rule", "host", "timezone",
    "path", "method", "when", "allow", "deny", "step-up", "login",
    "header", "cache", "report-only", "prefix", NULL
};

static void pol_next(pol_parser_t *p);
static pol_tok_t *pol_peek(pol_parser_t *p);
static void pol_pos(const pol_parser_t *p, pol_pos_t *pos);
static void pol_error(pol_parser_t *p, const pol_tok_t *t,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pol_describe(const pol_tok_t *t, char *buf, size_t size);
static void pol_expected(pol_parser_t *p, const char *what);
static int pol_word_in(const pol_tok_t *t, const char **words);
static void *pol_new(pol_parser_t *p, size_t size);
static void pol_sync(pol_parser_t *p, const char **words);
static int pol_parse_timezone(pol_parser_t *p);
static int pol_parse_def(pol_parser_t *p);
static int pol_parse_name(pol_parser_t *p, pol_str_t *name);
static int pol_parse_app(pol_parser_t *p);
static int pol_parse_hosts(pol_parser_t *p, ast_app_t *app,
    ast_host_t ***tail);
static int pol_parse_rule(pol_parser_t *p, ast_rule_t *r);
static int pol_parse_rule_line(pol_parser_t *p, ast_rule_t *r,
    ast_path_t ***ptail, ast_method_t ***mtail, ast_header_t ***htail);
static ast_cond_t *pol_parse_or(pol_parser_t *p);
static ast_cond_t *pol_parse_and(pol_parser_t *p);
static ast_cond_t *pol_parse_unary(pol_parser_t *p);
static ast_cond_t *pol_parse_test(pol_parser_t *p);
static int pol_parse_operand(pol_parser_t *p, ast_operand_t *o,
    const char *what);
static int pol_parse_set(pol_parser_t *p, ast_set_t *s);
static int pol_parse_value(pol_parser_t *p, ast_operand_t *o);
static ast_cond_t *pol_group_cond(pol_parser_t *p, ast_cond_kind_t kind,
    ast_cond_t *first, const char *word);


void
pol_ast_init(ast_policy_t *ast)
{
    memset(ast, 0, sizeof(*ast));
    ast->defs_tail = &ast->defs;
    ast->apps_tail = &ast->apps;
}


static void
pol_next(pol_parser_t *p)
{
    p->prev_line = p->tok.line;

    if (p->has_ahead) {
        p->tok = p->ahead;
        p->has_ahead = 0;
        return;
    }
    pol_lexer_next(&p->lx, &p->tok);
}


static pol_tok_t *
pol_peek(pol_parser_t *p)
{
    if (!p->has_ahead) {
        pol_lexer_next(&p->lx, &p->ahead);
        p->has_ahead = 1;
    }
    return &p->ahead;
}


static void
pol_pos(const pol_parser_t *p, pol_pos_t *pos)
{
    pos->file = p->file;
    pos->line = p->tok.line;
    pos->col = p->tok.col;
}


static void
pol_error(pol_parser_t *p, const pol_tok_t *t, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    pol_diag_vadd(p->diags, 0, p->file, t->line, t->col, fmt, ap);
    va_end(ap);
}


static void
pol_describe(const pol_tok_t *t, char *buf, size_t size)
{
    int  n;

    n = (int) (t->len > 40 ? 40 : t->len);

    switch (t->kind) {
    case POL_TOK_EOF:
        snprintf(buf, size, "end of file");
        break;
    case POL_TOK_IDENT:
        snprintf(buf, size, "\"%.*s\"", n, t->text);
        break;
    case POL_TOK_STRING:
        snprintf(buf, size, "string %.*s%s", n, t->text,
                 t->len > 40 ? "...\"" : "");
        break;
    case POL_TOK_NUMBER:
    case POL_TOK_DURATION:
    case POL_TOK_ADDR:
        snprintf(buf, size, "%s %.*s", pol_tok_kind_name(t->kind), n,
                 t->text);
        break;
    default:
        snprintf(buf, size, "%s", pol_tok_kind_name(t->kind));
        break;
    }
}


static void
pol_expected(pol_parser_t *p, const char *what)
{
    char  found[80];

    pol_describe(&p->tok, found, sizeof(found));
    pol_error(p, &p->tok, "expected %s, found %s", what, found);
}


static int
pol_word_in(const pol_tok_t *t, const char **words)
{
    int  i;

    for (i = 0; words[i] != NULL; i++) {
        if (pol_tok_is(t, words[i])) {
            return 1;
        }
    }
    return 0;
}


static void *
pol_new(pol_parser_t *p, size_t size)
{
    void  *v;

    v = pol_alloc(p->arena, size);
    if (v == NULL && !p->nomem) {
        p->nomem = 1;
        pol_diag_add(p->diags, 0, p->file, 0, 0, "out of memory");
    }
    return v;
}


/*
 * Skips to the next statement: one of words at the start of a line, or a
 * "}" that closes the enclosing block (left as the current token), or the
 * end of the file.  Braces opened while skipping are skipped whole.
 */
static void
pol_sync(pol_parser_t *p, const char **words)
{
    int  depth;

    depth = 0;

    for ( ;; ) {
        if (p->tok.kind == POL_TOK_EOF) {
            return;
        }
        if (p->tok.kind == POL_TOK_LBRACE) {
            depth++;
        } else if (p->tok.kind == POL_TOK_RBRACE) {
            if (depth == 0) {
                return;
            }
            depth--;
            if (depth == 0 && words == pol_top_words) {
                /* the end of a broken block at top level */
                pol_next(p);
                continue;
            }
        } else if (depth == 0 && p->tok.line != p->prev_line
                   && pol_word_in(&p->tok, words))
        {
            return;
        }
        pol_next(p);
    }
}


/*
 * Parses one file into ast (which may already hold other files).  Returns
 * 0, or -1 if the file had syntax errors (all of them are in diags).
 */
int
pol_parse(ast_policy_t *ast, const char *file, const char *text, size_t len,
    pol_arena_t *arena, pol_diags_t *diags)
{
    pol_parser_t  p;
    unsigned      errors;
    int           rc;
    char          found[80];

    memset(&p, 0, sizeof(p));
    p.file = file;
    p.arena = arena;
    p.diags = diags;
    p.ast = ast;
    errors = diags->nerrors;

    pol_lexer_init(&p.lx, file, text, len, arena, diags);
    pol_next(&p);
    p.prev_line = 0;

    while (p.tok.kind != POL_TOK_EOF && !p.nomem) {
        if (pol_tok_is(&p.tok, "timezone")) {
            rc = pol_parse_timezone(&p);
        } else if (pol_tok_is(&p.tok, "network")
                   || pol_tok_is(&p.tok, "group")
                   || pol_tok_is(&p.tok, "condition"))
        {
            rc = pol_parse_def(&p);
        } else if (pol_tok_is(&p.tok, "app")) {
            rc = pol_parse_app(&p);
        } else {
            pol_describe(&p.tok, found, sizeof(found));
            if (pol_tok_is(&p.tok, "rule") || pol_tok_is(&p.tok, "host")) {
                pol_error(&p, &p.tok, "%s is only allowed inside an app "
                          "block: app \"name\" { ... }", found);
            } else if (p.tok.kind == POL_TOK_RBRACE) {
                pol_error(&p, &p.tok, "unexpected \"}\" with no block "
                          "open");
            } else {
                pol_error(&p, &p.tok, "expected timezone, network, group, "
                          "condition or app, found %s", found);
            }
            pol_next(&p);
            rc = -1;
        }

        if (rc != 0) {
            pol_sync(&p, pol_top_words);
            if (p.tok.kind == POL_TOK_RBRACE) {
                pol_next(&p);
            }
        }
    }

    return (diags->nerrors > errors) ? -1 : 0;
}


static int
pol_parse_timezone(pol_parser_t *p)
{
    pol_tok_t    kw;
    const char  *s;
    int          h, m;

    kw = p->tok;
    pol_next(p);

    if (p->tok.kind != POL_TOK_STRING) {
        pol_expected(p, "a quoted UTC offset such as \"+08:00\" after "
                     "timezone");
        return -1;
    }

    s = p->tok.str.data;
    if (p->tok.str.len != 6 || (s[0] != '+' && s[0] != '-')
        || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9'
        || s[3] != ':' || s[4] < '0' || s[4] > '5' || s[5] < '0'
        || s[5] > '9'
        || (h = (s[1] - '0') * 10 + (s[2] - '0')) > 14)
    {
        pol_error(p, &p->tok, "invalid timezone %.*s; expected a UTC offset "
                  "from \"-14:00\" to \"+14:00\" such as \"+08:00\"",
                  (int) (p->tok.len > 40 ? 40 : p->tok.len), p->tok.text);
        pol_next(p);
        return 0;
    }
    m = (s[4] - '0') * 10 + (s[5] - '0');

    if (p->ast->has_tz) {
        pol_error(p, &kw, "timezone is set twice; first set at %s:%u",
                  p->ast->tz_pos.file, p->ast->tz_pos.line);
        pol_next(p);
        return 0;
    }

    p->ast->has_tz = 1;
    p->ast->tz_pos.file = p->file;
    p->ast->tz_pos.line = kw.line;
    p->ast->tz_pos.col = kw.col;
    p->ast->tz = p->tok.str;
    p->ast->tz_offset = (h * 3600 + m * 60) * (s[0] == '-' ? -1 : 1);

    pol_next(p);
    return 0;
}


static int
pol_parse_name(pol_parser_t *p, pol_str_t *name)
{
    char  found[80];

    if (p->tok.kind != POL_TOK_IDENT) {
        pol_expected(p, "a name");
        return -1;
    }

    if (memchr(p->tok.text, '.', p->tok.len) != NULL) {
        pol_error(p, &p->tok, "a name cannot contain \".\": \"%.*s\"",
                  (int) (p->tok.len > 60 ? 60 : p->tok.len), p->tok.text);
        return -1;
    }

    if (pol_word_in(&p->tok, pol_reserved)
        || pol_keyword_value(POL_T_WEEKDAY, p->tok.text, p->tok.len) >= 0
        || pol_keyword_value(POL_T_STATUS, p->tok.text, p->tok.len) >= 0)
    {
        pol_describe(&p->tok, found, sizeof(found));
        pol_error(p, &p->tok, "%s is a reserved word; choose another name",
                  found);
        return -1;
    }

    *name = p->tok.str;
    pol_next(p);
    return 0;
}


static int
pol_parse_def(pol_parser_t *p)
{
    ast_def_t    *d;
    ast_item_t   *it, **tail;

    d = pol_new(p, sizeof(ast_def_t));
    if (d == NULL) {
        return -1;
    }

    pol_pos(p, &d->pos);
    d->node = -1;
    if (pol_tok_is(&p->tok, "network")) {
        d->kind = AST_DEF_NETWORK;
    } else if (pol_tok_is(&p->tok, "group")) {
        d->kind = AST_DEF_GROUP;
    } else {
        d->kind = AST_DEF_CONDITION;
    }
    pol_next(p);

    if (pol_parse_name(p, &d->name) != 0) {
        return -1;
    }

    if (p->tok.kind != POL_TOK_ASSIGN) {
        pol_expected(p, "\"=\" after the name");
        return -1;
    }
    pol_next(p);

    if (d->kind == AST_DEF_CONDITION) {
        d->cond = pol_parse_or(p);
        if (d->cond == NULL) {
            return -1;
        }
    } else {
        tail = &d->items;
        for ( ;; ) {
            if (d->kind == AST_DEF_NETWORK && p->tok.kind != POL_TOK_ADDR) {
                pol_expected(p, "a network such as 10.0.0.0/8 or "
                             "2001:db8::/32");
                return -1;
            }
            if (d->kind == AST_DEF_GROUP && p->tok.kind != POL_TOK_STRING) {
                pol_expected(p, "a quoted group name");
                return -1;
            }
            it = pol_new(p, sizeof(ast_item_t));
            if (it == NULL) {
                return -1;
            }
            if (pol_parse_value(p, &it->v) != 0) {
                return -1;
            }
            *tail = it;
            tail = &it->next;
            d->nitems++;
            if (p->tok.kind != POL_TOK_COMMA) {
                break;
            }
            pol_next(p);
        }
    }

    *p->ast->defs_tail = d;
    p->ast->defs_tail = &d->next;
    return 0;
}


static int
pol_parse_app(pol_parser_t *p)
{
    ast_app_t    *app;
    ast_host_t  **htail;
    ast_rule_t   *r, **rtail;
    unsigned      open_line;
    char          found[80];

    app = pol_new(p, sizeof(ast_app_t));
    if (app == NULL) {
        return -1;
    }
    pol_pos(p, &app->pos);
    pol_next(p);

    if (p->tok.kind != POL_TOK_STRING) {
        pol_expected(p, "a quoted app name after app");
        return -1;
    }
    app->name = p->tok.str;
    pol_next(p);

    if (p->tok.kind != POL_TOK_LBRACE) {
        pol_expected(p, "\"{\" to open the app");
        return -1;
    }
    open_line = p->tok.line;
    pol_next(p);

    htail = &app->hosts;
    rtail = &app->rules;

    /* linked before its body so the checker sees even a broken app */
    *p->ast->apps_tail = app;
    p->ast->apps_tail = &app->next;
    p->ast->napps++;

    for ( ;; ) {
        if (p->nomem) {
            return -1;
        }

        if (p->tok.kind == POL_TOK_RBRACE) {
            pol_next(p);
            return 0;
        }

        if (p->tok.kind == POL_TOK_EOF) {
            pol_error(p, &p->tok, "unexpected end of file; expected \"}\" "
                      "to close app \"%.*s\" opened at line %u",
                      (int) app->name.len, app->name.data, open_line);
            return 0;
        }

        if (pol_tok_is(&p->tok, "host")) {
            if (pol_parse_hosts(p, app, &htail) == 0) {
                continue;
            }
        } else if (pol_tok_is(&p->tok, "rule")) {
            r = pol_new(p, sizeof(ast_rule_t));
            if (r == NULL) {
                return -1;
            }
            *rtail = r;
            rtail = &r->next;
            p->ast->nrules++;
            if (pol_parse_rule(p, r) == 0) {
                continue;
            }
        } else {
            pol_describe(&p->tok, found, sizeof(found));
            pol_error(p, &p->tok, "expected host, rule or \"}\" in app "
                      "\"%.*s\", found %s", (int) app->name.len,
                      app->name.data, found);
            pol_next(p);
        }

        pol_sync(p, pol_app_words);
    }
}


static int
pol_parse_hosts(pol_parser_t *p, ast_app_t *app, ast_host_t ***tail)
{
    ast_host_t  *h;

    (void) app;
    pol_next(p);

    for ( ;; ) {
        if (p->tok.kind != POL_TOK_STRING) {
            pol_expected(p, "a quoted host pattern such as "
                         "\"hr.example.com\", \"*.example.com\" or \"*\"");
            return -1;
        }
        h = pol_new(p, sizeof(ast_host_t));
        if (h == NULL) {
            return -1;
        }
        pol_pos(p, &h->pos);
        h->pattern = p->tok.str;
        **tail = h;
        *tail = &h->next;
        pol_next(p);

        if (p->tok.kind != POL_TOK_COMMA) {
            return 0;
        }
        pol_next(p);
    }
}


static int
pol_parse_rule(pol_parser_t *p, ast_rule_t *r)
{
    ast_path_t    **ptail;
    ast_method_t  **mtail;
    ast_header_t  **htail;
    unsigned        errors, open_line;

    errors = p->diags->nerrors;
    pol_pos(p, &r->pos);
    r->cache = -1;
    pol_next(p);

    if (p->tok.kind != POL_TOK_STRING) {
        pol_expected(p, "a quoted rule name after rule");
        return -1;
    }
    r->name = p->tok.str;
    pol_next(p);

    if (p->tok.kind != POL_TOK_LBRACE) {
        pol_expected(p, "\"{\" to open the rule");
        return -1;
    }
    open_line = p->tok.line;
    pol_next(p);

    ptail = &r->paths;
    mtail = &r->methods;
    htail = &r->headers;

    for ( ;; ) {
        if (p->nomem) {
            return -1;
        }

        if (p->tok.kind == POL_TOK_RBRACE) {
            pol_next(p);
            break;
        }

        if (p->tok.kind == POL_TOK_EOF) {
            pol_error(p, &p->tok, "unexpected end of file; expected \"}\" "
                      "to close rule \"%.*s\" opened at line %u",
                      (int) r->name.len, r->name.data, open_line);
            return 0;
        }

        if (pol_parse_rule_line(p, r, &ptail, &mtail, &htail) != 0) {
            pol_sync(p, pol_rule_words);
        }
    }

    if (r->outcome == 0 && p->diags->nerrors == errors) {
        pol_diag_add(p->diags, 0, r->pos.file, r->pos.line, r->pos.col,
                     "rule \"%.*s\" has no outcome; add allow, deny, "
                     "step-up or login", (int) r->name.len, r->name.data);
    }

    return 0;
}


static int
pol_parse_rule_line(pol_parser_t *p, ast_rule_t *r, ast_path_t ***ptail,
    ast_method_t ***mtail, ast_header_t ***htail)
{
    ast_path_t    *pa;
    ast_method_t  *m;
    ast_header_t  *h;
    pol_tok_t      kw;
    int            outcome;
    char           found[80];

    kw = p->tok;

    if (pol_tok_is(&kw, "path")) {
        pa = pol_new(p, sizeof(ast_path_t));
        if (pa == NULL) {
            return -1;
        }
        pol_next(p);
        if (pol_tok_is(&p->tok, "prefix")) {
            pa->prefix = 1;
            pol_next(p);
        }
        if (p->tok.kind != POL_TOK_STRING) {
            pol_expected(p, pa->prefix ? "a quoted path after prefix"
                         : "a quoted path pattern such as \"/docs/*.pdf\" "
                         "or prefix \"/admin\"");
            return -1;
        }
        pol_pos(p, &pa->pos);
        pa->pattern = p->tok.str;
        **ptail = pa;
        *ptail = &pa->next;
        pol_next(p);
        return 0;
    }

    if (pol_tok_is(&kw, "method")) {
        pol_next(p);
        for ( ;; ) {
            if (p->tok.kind != POL_TOK_IDENT
                && p->tok.kind != POL_TOK_STRING)
            {
                pol_expected(p, "an HTTP method such as GET or POST");
                return -1;
            }
            m = pol_new(p, sizeof(ast_method_t));
            if (m == NULL) {
                return -1;
            }
            pol_pos(p, &m->pos);
            m->name = p->tok.str;
            **mtail = m;
            *mtail = &m->next;
            pol_next(p);
            if (p->tok.kind != POL_TOK_COMMA) {
                return 0;
            }
            pol_next(p);
        }
    }

    if (pol_tok_is(&kw, "when")) {
        if (r->when != NULL) {
            pol_error(p, &kw, "rule \"%.*s\" has a second when line; "
                      "combine the conditions with and",
                      (int) r->name.len, r->name.data);
            pol_next(p);
            return -1;
        }
        pol_next(p);
        r->when_pos.file = p->file;
        r->when_pos.line = kw.line;
        r->when_pos.col = kw.col;
        r->when = pol_parse_or(p);
        return (r->when == NULL) ? -1 : 0;
    }

    outcome = 0;
    if (pol_tok_is(&kw, "allow")) {
        outcome = POL_ALLOW;
    } else if (pol_tok_is(&kw, "deny")) {
        outcome = POL_DENY;
    } else if (pol_tok_is(&kw, "step-up")) {
        outcome = POL_STEP_UP;
    } else if (pol_tok_is(&kw, "login")) {
        outcome = POL_LOGIN;
    }

    if (outcome != 0) {
        if (r->outcome != 0) {
            pol_error(p, &kw, "rule \"%.*s\" has a second outcome; a rule "
                      "has exactly one of allow, deny, step-up or login",
                      (int) r->name.len, r->name.data);
            pol_next(p);
            return -1;
        }
        r->outcome = outcome;
        r->outcome_pos.file = p->file;
        r->outcome_pos.line = kw.line;
        r->outcome_pos.col = kw.col;
        pol_next(p);

        if (outcome != POL_DENY) {
            return 0;
        }
        if (p->tok.kind == POL_TOK_NUMBER && p->tok.line == kw.line) {
            pol_pos(p, &r->status_pos);
            if (p->tok.num < 400 || p->tok.num > 599) {
                pol_error(p, &p->tok, "deny status must be from 400 to "
                          "599, not %lld", (long long) p->tok.num);
                r->status = 403;
            } else {
                r->status = (unsigned) p->tok.num;
            }
            pol_next(p);
        }
        if (p->tok.kind == POL_TOK_STRING) {
            r->has_reason = 1;
            r->reason = p->tok.str;
            pol_next(p);
        }
        return 0;
    }

    if (pol_tok_is(&kw, "header")) {
        pol_next(p);
        if (p->tok.kind != POL_TOK_STRING) {
            pol_expected(p, "a quoted header name after header");
            return -1;
        }
        h = pol_new(p, sizeof(ast_header_t));
        if (h == NULL) {
            return -1;
        }
        pol_pos(p, &h->pos);
        h->name = p->tok.str;
        pol_next(p);
        if (p->tok.kind != POL_TOK_ASSIGN) {
            pol_expected(p, "\"=\" after the header name");
            return -1;
        }
        pol_next(p);
        if (p->tok.kind != POL_TOK_STRING && p->tok.kind != POL_TOK_IDENT) {
            pol_expected(p, "a quoted header value or a string attribute "
                         "such as user.name");
            return -1;
        }
        if (pol_parse_value(p, &h->value) != 0) {
            return -1;
        }
        **htail = h;
        *htail = &h->next;
        r->nheaders++;
        return 0;
    }

    if (pol_tok_is(&kw, "cache")) {
        pol_next(p);
        if (p->tok.kind != POL_TOK_DURATION) {
            pol_expected(p, "a duration such as 5s or 1m after cache");
            return -1;
        }
        pol_pos(p, &r->cache_pos);
        r->cache = p->tok.num;
        pol_next(p);
        return 0;
    }

    if (pol_tok_is(&kw, "report-only")) {
        r->report_only = 1;
        pol_next(p);
        return 0;
    }

    pol_describe(&p->tok, found, sizeof(found));

    if (r->outcome == 0 && r->when != NULL) {
        pol_error(p, &p->tok, "expected an outcome (allow, deny, step-up or "
                  "login) after the rule's conditions, found %s", found);
    } else if (r->outcome == 0) {
        pol_error(p, &p->tok, "expected path, method, when or an outcome "
                  "(allow, deny, step-up or login) in rule \"%.*s\", "
                  "found %s", (int) r->name.len, r->name.data, found);
    } else {
        pol_error(p, &p->tok, "expected path, method, when, header, cache, "
                  "report-only or \"}\" in rule \"%.*s\", found %s",
                  (int) r->name.len, r->name.data, found);
    }
    pol_next(p);
    return -1;
}


static ast_cond_t *
pol_group_cond(pol_parser_t *p, ast_cond_kind_t kind, ast_cond_t *first,
    const char *word)
{
    ast_cond_t   *c, *k, **tail;

    c = pol_new(p, sizeof(ast_cond_t));
    if (c == NULL) {
        return NULL;
    }
    c->kind = kind;
    c->pos = first->pos;
    c->kids = first;
    c->nkids = 1;
    tail = &first->next;

    while (pol_tok_is(&p->tok, word)) {
        pol_next(p);
        k = (kind == AST_OR) ? pol_parse_and(p) : pol_parse_unary(p);
        if (k == NULL) {
            return NULL;
        }
        *tail = k;
        tail = &k->next;
        c->nkids++;
    }

    return c;
}


static ast_cond_t *
pol_parse_or(pol_parser_t *p)
{
    ast_cond_t  *c;

    c = pol_parse_and(p);
    if (c == NULL || !pol_tok_is(&p->tok, "or")) {
        return c;
    }
    return pol_group_cond(p, AST_OR, c, "or");
}


static ast_cond_t *
pol_parse_and(pol_parser_t *p)
{
    ast_cond_t  *c;

    c = pol_parse_unary(p);
    if (c == NULL || !pol_tok_is(&p->tok, "and")) {
        return c;
    }
    return pol_group_cond(p, AST_AND, c, "and");
}


static ast_cond_t *
pol_parse_unary(pol_parser_t *p)
{
    ast_cond_t  *c, *k;
    pol_pos_t    pos;

    if (p->depth >= POL_MAX_NESTING) {
        pol_error(p, &p->tok, "condition is nested too deeply (at most %d "
                  "levels of not and parentheses)", POL_MAX_NESTING);
        return NULL;
    }

    if (pol_tok_is(&p->tok, "not")) {
        pol_pos(p, &pos);
        pol_next(p);
        p->depth++;
        k = pol_parse_unary(p);
        p->depth--;
        if (k == NULL) {
            return NULL;
        }
        c = pol_new(p, sizeof(ast_cond_t));
        if (c == NULL) {
            return NULL;
        }
        c->kind = AST_NOT;
        c->pos = pos;
        c->kids = k;
        c->nkids = 1;
        return c;
    }

    if (p->tok.kind == POL_TOK_LPAREN) {
        pol_next(p);
        p->depth++;
        c = pol_parse_or(p);
        p->depth--;
        if (c == NULL) {
            return NULL;
        }
        if (p->tok.kind != POL_TOK_RPAREN) {
            pol_expected(p, "\")\" to close the parenthesis, or and/or");
            return NULL;
        }
        pol_next(p);
        return c;
    }

    return pol_parse_test(p);
}


static ast_cond_t *
pol_parse_test(pol_parser_t *p)
{
    ast_cond_t  *c;

    c = pol_new(p, sizeof(ast_cond_t));
    if (c == NULL) {
        return NULL;
    }
    pol_pos(p, &c->pos);

    if (pol_parse_operand(p, &c->lhs, "a condition (an attribute, a named "
                          "condition, true, false, not or \"(\")") != 0)
    {
        return NULL;
    }

    switch (p->tok.kind) {
    case POL_TOK_EQ:
        c->op = POL_CMP_EQ;
        break;
    case POL_TOK_NE:
        c->op = POL_CMP_NE;
        break;
    case POL_TOK_LT:
        c->op = POL_CMP_LT;
        break;
    case POL_TOK_LE:
        c->op = POL_CMP_LE;
        break;
    case POL_TOK_GT:
        c->op = POL_CMP_GT;
        break;
    case POL_TOK_GE:
        c->op = POL_CMP_GE;
        break;
    case POL_TOK_ASSIGN:
        pol_error(p, &p->tok, "\"=\" is not a comparison; write ==");
        return NULL;
    default:
        if (pol_tok_is(&p->tok, "in")) {
            c->kind = AST_IN;
            pol_next(p);
            return (pol_parse_set(p, &c->set) == 0) ? c : NULL;
        }
        if (pol_tok_is(&p->tok, "not")) {
            pol_next(p);
            if (!pol_tok_is(&p->tok, "in")) {
                pol_expected(p, "\"in\" after \"not\" (not in)");
                return NULL;
            }
            c->kind = AST_NOT_IN;
            pol_next(p);
            return (pol_parse_set(p, &c->set) == 0) ? c : NULL;
        }
        if (pol_tok_is(&p->tok, "contains")) {
            c->kind = AST_CONTAINS;
            pol_next(p);
            return (pol_parse_operand(p, &c->rhs, "a value after contains")
                    == 0) ? c : NULL;
        }
        c->kind = AST_TEST;
        return c;
    }

    c->kind = AST_CMP;
    pol_next(p);
    return (pol_parse_operand(p, &c->rhs, "a value to compare with") == 0)
           ? c : NULL;
}


static int
pol_parse_operand(pol_parser_t *p, ast_operand_t *o, const char *what)
{
    if (p->tok.kind == POL_TOK_IDENT
        && (pol_word_in(&p->tok, pol_rule_words)
            || pol_tok_is(&p->tok, "and") || pol_tok_is(&p->tok, "or")
            || pol_tok_is(&p->tok, "in") || pol_tok_is(&p->tok, "not")
            || pol_tok_is(&p->tok, "contains")
            || pol_tok_is(&p->tok, "rule")))
    {
        pol_expected(p, what);
        return -1;
    }

    switch (p->tok.kind) {
    case POL_TOK_IDENT:
    case POL_TOK_STRING:
    case POL_TOK_NUMBER:
    case POL_TOK_DURATION:
    case POL_TOK_ADDR:
        return pol_parse_value(p, o);
    default:
        pol_expected(p, what);
        return -1;
    }
}


static int
pol_parse_value(pol_parser_t *p, ast_operand_t *o)
{
    memset(o, 0, sizeof(*o));
    pol_pos(p, &o->pos);
    o->attr = -1;
    o->text = p->tok.str;

    switch (p->tok.kind) {
    case POL_TOK_IDENT:
        o->kind = AST_OP_IDENT;
        break;
    case POL_TOK_STRING:
        o->kind = AST_OP_STRING;
        break;
    case POL_TOK_NUMBER:
        o->kind = AST_OP_NUMBER;
        o->num = p->tok.num;
        break;
    case POL_TOK_DURATION:
        o->kind = AST_OP_DURATION;
        o->num = p->tok.num;
        break;
    case POL_TOK_ADDR:
        o->kind = AST_OP_ADDR;
        memcpy(o->addr, p->tok.addr, 16);
        o->family = p->tok.family;
        o->prefix = p->tok.prefix;
        break;
    default:
        pol_expected(p, "a value");
        return -1;
    }

    pol_next(p);
    return 0;
}


static int
pol_parse_set(pol_parser_t *p, ast_set_t *s)
{
    ast_item_t   *it, **tail;

    memset(s, 0, sizeof(*s));
    pol_pos(p, &s->pos);
    s->attr = -1;

    if (p->tok.kind == POL_TOK_LPAREN) {
        s->kind = AST_SET_LIST;
        pol_next(p);
        tail = &s->items;
        for ( ;; ) {
            if (p->tok.kind != POL_TOK_IDENT && p->tok.kind != POL_TOK_STRING
                && p->tok.kind != POL_TOK_NUMBER
                && p->tok.kind != POL_TOK_DURATION
                && p->tok.kind != POL_TOK_ADDR)
            {
                pol_expected(p, "a value in the list");
                return -1;
            }
            it = pol_new(p, sizeof(ast_item_t));
            if (it == NULL) {
                return -1;
            }
            if (pol_parse_value(p, &it->v) != 0) {
                return -1;
            }
            *tail = it;
            tail = &it->next;
            s->nitems++;
            if (p->tok.kind == POL_TOK_RPAREN) {
                pol_next(p);
                return 0;
            }
            if (p->tok.kind != POL_TOK_COMMA) {
                pol_expected(p, "\",\" or \")\" in the list");
                return -1;
            }
            pol_next(p);
        }
    }

    if ((pol_tok_is(&p->tok, "network") || pol_tok_is(&p->tok, "group"))
        && pol_peek(p)->kind == POL_TOK_IDENT)
    {
        s->kind = pol_tok_is(&p->tok, "network") ? AST_SET_NETWORK
                                                  : AST_SET_GROUP;
        pol_next(p);
        pol_pos(p, &s->pos);
        s->name = p->tok.str;
        pol_next(p);
        return 0;
    }

    if (p->tok.kind == POL_TOK_IDENT && !pol_word_in(&p->tok, pol_rule_words))
    {
        s->kind = AST_SET_NAME;
        s->name = p->tok.str;
        pol_next(p);
        return 0;
    }

    pol_expected(p, "a set: a list such as (\"a\", \"b\"), a network or "
                 "group name, or a set attribute");
    return -1;
}
