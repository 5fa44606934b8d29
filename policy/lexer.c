/*
 * Policy lexer: turns the text of one file into tokens, each with the line
 * and column (1-based, counted in characters) where it starts.  A lexical
 * error is reported once and the lexer carries on with a best-effort token,
 * so that the parser sees a plausible stream and does not cascade.
 */

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "policy_int.h"

static int pol_lex_peek(const pol_lexer_t *lx, size_t off);
static void pol_lex_advance(pol_lexer_t *lx);
static void pol_lex_error(pol_lexer_t *lx, unsigned line, unsigned col,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int pol_is_ident_start(int c);
static int pol_is_ident_char(int c);
static int pol_is_hex(int c);
static void pol_lex_string(pol_lexer_t *lx, pol_tok_t *tok);
static void pol_lex_ident(pol_lexer_t *lx, pol_tok_t *tok);
static void pol_lex_number(pol_lexer_t *lx, pol_tok_t *tok);
static int pol_lex_try_addr(pol_lexer_t *lx, pol_tok_t *tok, int ident);
static size_t pol_utf8_len(const unsigned char *p, const unsigned char *end);


void
pol_lexer_init(pol_lexer_t *lx, const char *file, const char *text,
    size_t len, pol_arena_t *arena, pol_diags_t *diags)
{
    lx->file = file;
    lx->start = text;
    lx->p = text;
    lx->end = text + len;
    lx->line = 1;
    lx->col = 1;
    lx->arena = arena;
    lx->diags = diags;
}


static int
pol_lex_peek(const pol_lexer_t *lx, size_t off)
{
    if ((size_t) (lx->end - lx->p) <= off) {
        return -1;
    }
    return (unsigned char) lx->p[off];
}


static void
pol_lex_advance(pol_lexer_t *lx)
{
    unsigned char  c;

    if (lx->p >= lx->end) {
        return;
    }

    c = (unsigned char) *lx->p++;

    if (c == '\n') {
        lx->line++;
        lx->col = 1;
    } else if ((c & 0xc0) != 0x80) {
        lx->col++;
    }
}


static void
pol_lex_error(pol_lexer_t *lx, unsigned line, unsigned col,
    const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    pol_diag_vadd(lx->diags, 0, lx->file, line, col, fmt, ap);
    va_end(ap);
}


static int
pol_is_ident_start(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}


static int
pol_is_ident_char(int c)
{
    return pol_is_ident_start(c) || (c >= '0' && c <= '9') || c == '-';
}


static int
pol_is_hex(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
           || (c >= 'A' && c <= 'F');
}


void
pol_lexer_next(pol_lexer_t *lx, pol_tok_t *tok)
{
    int  c, c2;

    for ( ;; ) {
        memset(tok, 0, sizeof(*tok));

        /* whitespace and comments */
        for ( ;; ) {
            c = pol_lex_peek(lx, 0);
            if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
                pol_lex_advance(lx);
                continue;
            }
            if (c == '#') {
                while (c != -1 && c != '\n') {
                    pol_lex_advance(lx);
                    c = pol_lex_peek(lx, 0);
                }
                continue;
            }
            break;
        }

        tok->line = lx->line;
        tok->col = lx->col;
        tok->text = lx->p;

        if (c == -1) {
            tok->kind = POL_TOK_EOF;
            return;
        }

        c2 = pol_lex_peek(lx, 1);

        switch (c) {
        case '{':
            tok->kind = POL_TOK_LBRACE;
            break;
        case '}':
            tok->kind = POL_TOK_RBRACE;
            break;
        case '(':
            tok->kind = POL_TOK_LPAREN;
            break;
        case ')':
            tok->kind = POL_TOK_RPAREN;
            break;
        case ',':
            tok->kind = POL_TOK_COMMA;
            break;
        case '=':
            tok->kind = (c2 == '=') ? POL_TOK_EQ : POL_TOK_ASSIGN;
            break;
        case '!':
            if (c2 != '=') {
                pol_lex_error(lx, tok->line, tok->col,
                              "unexpected \"!\"; write != or not");
                pol_lex_advance(lx);
                continue;
            }
            tok->kind = POL_TOK_NE;
            break;
        case '<':
            tok->kind = (c2 == '=') ? POL_TOK_LE : POL_TOK_LT;
            break;
        case '>':
            tok->kind = (c2 == '=') ? POL_TOK_GE : POL_TOK_GT;
            break;
        case '"':
            pol_lex_string(lx, tok);
            return;
        default:
            if ((c >= '0' && c <= '9') || c == ':') {
                if (pol_lex_try_addr(lx, tok, 0)) {
                    return;
                }
                if (c == ':') {
                    pol_lex_error(lx, tok->line, tok->col,
                                  "unexpected \":\"");
                    pol_lex_advance(lx);
                    continue;
                }
                pol_lex_number(lx, tok);
                return;
            }
            if (pol_is_ident_start(c)) {
                if (pol_is_hex(c) && pol_lex_try_addr(lx, tok, 1)) {
                    return;
                }
                pol_lex_ident(lx, tok);
                return;
            }
            if (c >= 0x20 && c < 0x7f) {
                pol_lex_error(lx, tok->line, tok->col,
                              "unexpected character \"%c\"", c);
            } else {
                pol_lex_error(lx, tok->line, tok->col,
                              "unexpected byte 0x%02x", (unsigned) c);
            }
            pol_lex_advance(lx);
            continue;
        }

        /* punctuation */
        pol_lex_advance(lx);
        if (tok->kind == POL_TOK_EQ || tok->kind == POL_TOK_NE
            || tok->kind == POL_TOK_LE || tok->kind == POL_TOK_GE)
        {
            pol_lex_advance(lx);
        }
        tok->len = (size_t) (lx->p - tok->text);
        return;
    }
}


/* Length of the UTF-8 sequence at p, or 0 if it is not valid UTF-8. */
static size_t
pol_utf8_len(const unsigned char *p, const unsigned char *end)
{
    size_t    n, i;
    uint32_t  cp;

    if (p[0] < 0x80) {
        return 1;
    }
    if ((p[0] & 0xe0) == 0xc0) {
        n = 2;
        cp = p[0] & 0x1f;
    } else if ((p[0] & 0xf0) == 0xe0) {
        n = 3;
        cp = p[0] & 0x0f;
    } else if ((p[0] & 0xf8) == 0xf0) {
        n = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }

    if ((size_t) (end - p) < n) {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (p[i] & 0x3f);
    }

    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800)
        || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))
        || (cp >= 0xd800 && cp <= 0xdfff))
    {
        return 0;
    }
    return n;
}


static void
pol_lex_string(pol_lexer_t *lx, pol_tok_t *tok)
{
    char           *out;
    size_t          n, cap, u, i;
    int             c, bad;
    unsigned        line, col;

    tok->kind = POL_TOK_STRING;
    pol_lex_advance(lx);

    /* the decoded string is never longer than the raw text */
    cap = (size_t) (lx->end - lx->p);
    for (i = 0; i < cap; i++) {
        if (lx->p[i] == '"' && (i == 0 || lx->p[i - 1] != '\\')) {
            break;
        }
        if (lx->p[i] == '\n') {
            break;
        }
    }
    cap = i + 1;

    out = pol_alloc(lx->arena, cap + 1);
    n = 0;
    bad = 0;

    for ( ;; ) {
        c = pol_lex_peek(lx, 0);
        line = lx->line;
        col = lx->col;

        if (c == -1 || c == '\n') {
            if (!bad) {
                pol_lex_error(lx, tok->line, tok->col,
                              "unterminated string; add the closing \"");
            }
            break;
        }

        if (c == '"') {
            pol_lex_advance(lx);
            break;
        }

        if (c == '\\') {
            c = pol_lex_peek(lx, 1);
            switch (c) {
            case '"':
            case '\\':
                break;
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            default:
                if (!bad) {
                    pol_lex_error(lx, line, col,
                                  "invalid escape in string; only \\\", "
                                  "\\\\, \\n and \\t are allowed");
                    bad = 1;
                }
                pol_lex_advance(lx);
                continue;
            }
            pol_lex_advance(lx);
            pol_lex_advance(lx);
            if (out != NULL && n < cap) {
                out[n++] = (char) c;
            }
            continue;
        }

        if (c < 0x20 || c == 0x7f) {
            if (!bad) {
                pol_lex_error(lx, line, col,
                              "control character in string; write \\t "
                              "or \\n");
                bad = 1;
            }
            pol_lex_advance(lx);
            continue;
        }

        u = pol_utf8_len((const unsigned char *) lx->p,
                         (const unsigned char *) lx->end);
        if (u == 0) {
            if (!bad) {
                pol_lex_error(lx, line, col, "invalid UTF-8 in string");
                bad = 1;
            }
            pol_lex_advance(lx);
            continue;
        }

        for (i = 0; i < u; i++) {
            if (out != NULL && n < cap) {
                out[n++] = lx->p[0];
            }
            pol_lex_advance(lx);
        }
    }

    if (out != NULL) {
        out[n] = '\0';
    } else {
        n = 0;
    }
    tok->str.data = out ? out : "";
    tok->str.len = n;
    tok->len = (size_t) (lx->p - tok->text);
}


static void
pol_lex_ident(pol_lexer_t *lx, pol_tok_t *tok)
{
    tok->kind = POL_TOK_IDENT;

    for ( ;; ) {
        while (pol_is_ident_char(pol_lex_peek(lx, 0))) {
            pol_lex_advance(lx);
        }
        if (pol_lex_peek(lx, 0) == '.'
            && pol_is_ident_start(pol_lex_peek(lx, 1)))
        {
            pol_lex_advance(lx);
            continue;
        }
        break;
    }

    tok->len = (size_t) (lx->p - tok->text);
    tok->str.data = tok->text;
    tok->str.len = tok->len;
}


static void
pol_lex_number(pol_lexer_t *lx, pol_tok_t *tok)
{
    static const char  units[] = "dhms";
    static const int64_t  mult[] = { 86400, 3600, 60, 1 };
    int64_t            v, total;
    const char        *u;
    int                c, last, bad, isdur;

    v = 0;
    total = 0;
    last = -1;
    bad = 0;
    isdur = 0;

    for ( ;; ) {
        c = pol_lex_peek(lx, 0);
        if (!(c >= '0' && c <= '9')) {
            break;
        }

        v = 0;
        while (c >= '0' && c <= '9') {
            if (v > 1000000000000LL) {
                bad = 2;
            } else {
                v = v * 10 + (c - '0');
            }
            pol_lex_advance(lx);
            c = pol_lex_peek(lx, 0);
        }

        u = (c > 0) ? strchr(units, c) : NULL;
        if (u == NULL || c == 0) {
            if (isdur) {
                bad = bad ? bad : 3;
            }
            break;
        }

        isdur = 1;
        if ((int) (u - units) <= last) {
            bad = bad ? bad : 1;
        }
        last = (int) (u - units);
        pol_lex_advance(lx);
        if (v > POL_MAX_DURATION) {
            bad = 2;
        } else {
            total += v * mult[u - units];
        }
    }

    while (pol_is_ident_char(pol_lex_peek(lx, 0))) {
        bad = bad ? bad : 1;
        pol_lex_advance(lx);
    }

    tok->len = (size_t) (lx->p - tok->text);

    if (isdur) {
        tok->kind = POL_TOK_DURATION;
        tok->num = total;
        if (total > POL_MAX_DURATION) {
            bad = 2;
        }
    } else {
        tok->kind = POL_TOK_NUMBER;
        tok->num = v;
    }

    if (bad == 2) {
        pol_lex_error(lx, tok->line, tok->col, "number \"%.*s\" is too large",
                      (int) (tok->len > 40 ? 40 : tok->len), tok->text);
        tok->num = 0;
    } else if (bad) {
        pol_lex_error(lx, tok->line, tok->col,
                      "invalid number or duration \"%.*s\"; write a number "
                      "such as 15 or a duration such as 90s, 15m, 8h, 30d "
                      "or 1h30m",
                      (int) (tok->len > 40 ? 40 : tok->len), tok->text);
        tok->num = 0;
    }
}


/*
 * Parses "addr" or "addr/prefix" (IPv4 or IPv6).  Returns 0 and sets
 * *hostbits when bits beyond the prefix are set (the address is then
 * masked), or -1 for malformed text (-2: bad prefix length).
 */
int
pol_parse_cidr(const char *s, size_t len, uint8_t *addr, int *family,
    unsigned *prefix, int *hostbits)
{
    char        buf[64];
    const char  *slash;
    size_t       alen, i;
    unsigned     p, full, b;
    int          v6;

    *hostbits = 0;

    if (len == 0 || len >= sizeof(buf)) {
        return -1;
    }

    slash = memchr(s, '/', len);
    alen = slash ? (size_t) (slash - s) : len;
    memcpy(buf, s, alen);
    buf[alen] = '\0';

    v6 = (memchr(buf, ':', alen) != NULL);
    memset(addr, 0, 16);

    if (inet_pton(v6 ? AF_INET6 : AF_INET, buf, addr) != 1) {
        return -1;
    }

    *family = v6 ? 6 : 4;
    full = v6 ? 128 : 32;
    p = full;

    if (slash != NULL) {
        if (slash + 1 == s + len || len - alen - 1 > 3) {
            return -2;
        }
        p = 0;
        for (i = alen + 1; i < len; i++) {
            if (s[i] < '0' || s[i] > '9') {
                return -2;
            }
            p = p * 10 + (unsigned) (s[i] - '0');
        }
        if (p > full) {
            return -2;
        }
    }

    *prefix = p;

    for (b = p; b < full; b++) {
        if (addr[b / 8] & (0x80 >> (b % 8))) {
            *hostbits = 1;
            addr[b / 8] &= (uint8_t) ~(0x80 >> (b % 8));
        }
    }

    return 0;
}


/*
 * A run of hex digits, colons and dots is an address when it has a colon
 * (IPv6) or, starting with a digit, a dot (IPv4).  Returns 1 and fills the
 * token if the text at the cursor is one.
 */
static int
pol_lex_try_addr(pol_lexer_t *lx, pol_tok_t *tok, int ident)
{
    char          good[64];
    size_t        n, m;
    int           c, colon, dot, rc, hostbits;

    n = 0;
    colon = 0;
    dot = 0;

    for ( ;; ) {
        c = pol_lex_peek(lx, n);
        if (c == ':') {
            colon = 1;
        } else if (c == '.') {
            dot = 1;
        } else if (!pol_is_hex(c)) {
            break;
        }
        n++;
    }

    if (!colon && !(dot && !ident)) {
        return 0;
    }

    m = n;
    if (pol_lex_peek(lx, m) == '/') {
        m++;
        while ((c = pol_lex_peek(lx, m)) >= '0' && c <= '9') {
            m++;
        }
    }

    if (ident && pol_is_ident_char(pol_lex_peek(lx, m))) {
        return 0;
    }

    /* swallow trailing junk such as "10.0.0.0/8x" into the token */
    while (pol_is_ident_char(pol_lex_peek(lx, m))
           || pol_lex_peek(lx, m) == '.' || pol_lex_peek(lx, m) == ':')
    {
        m++;
    }

    tok->kind = POL_TOK_ADDR;
    while (m--) {
        pol_lex_advance(lx);
    }
    tok->len = (size_t) (lx->p - tok->text);
    tok->str.data = tok->text;
    tok->str.len = tok->len;

    rc = pol_parse_cidr(tok->text, tok->len, tok->addr, &tok->family,
                        &tok->prefix, &hostbits);
    if (rc == -2) {
        pol_lex_error(lx, tok->line, tok->col,
                      "invalid prefix length in \"%.*s\"; IPv4 takes /0 "
                      "to /32, IPv6 /0 to /128",
                      (int) (tok->len > 60 ? 60 : tok->len), tok->text);
    } else if (rc != 0) {
        pol_lex_error(lx, tok->line, tok->col,
                      "invalid address \"%.*s\"; expected an IPv4 or IPv6 "
                      "address or network such as 10.0.0.0/8",
                      (int) (tok->len > 60 ? 60 : tok->len), tok->text);
    } else if (hostbits) {
        pol_fmt_addr(good, sizeof(good), tok->family, tok->addr,
                     tok->prefix);
        pol_lex_error(lx, tok->line, tok->col,
                      "%.*s has host bits set; did you mean %s?",
                      (int) tok->len, tok->text, good);
    }

    if (rc != 0) {
        tok->family = 4;
        tok->prefix = 32;
        memset(tok->addr, 0, 16);
    }

    return 1;
}


const char *
pol_tok_kind_name(pol_tok_kind_t k)
{
    switch (k) {
    case POL_TOK_EOF:
        return "end of file";
    case POL_TOK_IDENT:
        return "name";
    case POL_TOK_STRING:
        return "string";
    case POL_TOK_NUMBER:
        return "number";
    case POL_TOK_DURATION:
        return "duration";
    case POL_TOK_ADDR:
        return "address";
    case POL_TOK_LBRACE:
        return "\"{\"";
    case POL_TOK_RBRACE:
        return "\"}\"";
    case POL_TOK_LPAREN:
        return "\"(\"";
    case POL_TOK_RPAREN:
        return "\")\"";
    case POL_TOK_COMMA:
        return "\",\"";
    case POL_TOK_ASSIGN:
        return "\"=\"";
    case POL_TOK_EQ:
        return "\"==\"";
    case POL_TOK_NE:
        return "\"!=\"";
    case POL_TOK_LT:
        return "\"<\"";
    case POL_TOK_LE:
        return "\"<=\"";
    case POL_TOK_GT:
        return "\">\"";
    case POL_TOK_GE:
        return "\">=\"";
    }
    return "token";
}


int
pol_tok_is(const pol_tok_t *t, const char *word)
{
    return t->kind == POL_TOK_IDENT && strlen(word) == t->len
           && memcmp(t->text, word, t->len) == 0;
}
