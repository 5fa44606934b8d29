/*
 * ztgate policy library internals: shared by the lexer, parser, checker,
 * compiler, evaluator, formatter and the cases reader.  Not installed;
 * trustd uses policy.h and cases.h only.
 */

#ifndef ZT_POLICY_INT_H
#define ZT_POLICY_INT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

#define POL_MAX_FILE_SIZE   (4u * 1024 * 1024)
#define POL_MAX_NESTING     64          /* parentheses and not */
#define POL_MAX_GLOB        256         /* tokens in one path pattern */
#define POL_DUR_INFINITE    INT64_MAX
#define POL_MAX_DURATION    (3650LL * 86400)

/* --- memory: one arena per policy, freed at once */

typedef struct pol_chunk_s  pol_chunk_t;

typedef struct {
    pol_chunk_t  *head;
} pol_arena_t;

void *pol_alloc(pol_arena_t *a, size_t size);
char *pol_strndup(pol_arena_t *a, const char *s, size_t len);
void pol_arena_free(pol_arena_t *a);

/* --- diagnostics */

void pol_diag_add(pol_diags_t *d, int warning, const char *file,
    unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
void pol_diag_vadd(pol_diags_t *d, int warning, const char *file,
    unsigned line, unsigned col, const char *fmt, va_list ap);
unsigned pol_edit_distance(const char *a, size_t alen, const char *b,
    size_t blen);

/* --- values */

typedef enum {
    POL_T_NONE = 0,
    POL_T_BOOL,
    POL_T_STRING,
    POL_T_NUMBER,
    POL_T_DURATION,
    POL_T_ADDRESS,
    POL_T_WEEKDAY,
    POL_T_STATUS,
    POL_T_SET
} pol_type_t;

typedef enum {
    POL_A_USER_AUTHENTICATED = 0,
    POL_A_USER_NAME,
    POL_A_USER_GROUPS,
    POL_A_AUTH_METHODS,
    POL_A_AUTH_MFA_AGE,
    POL_A_DEVICE_KNOWN,
    POL_A_DEVICE_STATUS,
    POL_A_DEVICE_ID,
    POL_A_DEVICE_OWNER,
    POL_A_DEVICE_BOUND,
    POL_A_DISK_ENCRYPTED,
    POL_A_FIREWALL,
    POL_A_SCREEN_LOCK,
    POL_A_ENDPOINT_PROTECTION,
    POL_A_POSTURE_REPORTED,
    POL_A_POSTURE_STALE,
    POL_A_POSTURE_AGE,
    POL_A_OS,
    POL_A_OS_VERSION,
    POL_A_PATCH_AGE,
    POL_A_REQUEST_METHOD,
    POL_A_REQUEST_HOST,
    POL_A_REQUEST_PATH,
    POL_A_SOURCE_ADDRESS,
    POL_A_TIME_HOUR,
    POL_A_TIME_MINUTE,
    POL_A_TIME_WEEKDAY,
    POL_A_BLOCKLISTED,
    POL_A_NEW_ADDRESS,
    POL_A_TRUST_SCORE,
    POL_A_AUTH_AAL,
    POL_A_COUNT
} pol_attr_id_t;

typedef struct {
    const char   *name;
    pol_type_t    type;
} pol_attr_info_t;

extern const pol_attr_info_t  pol_attrs[POL_A_COUNT];

int pol_attr_lookup(const char *name, size_t len);
const char *pol_type_name(pol_type_t t);
int pol_keyword_value(pol_type_t t, const char *s, size_t len);
const char *pol_keyword_name(pol_type_t t, int64_t v);
int pol_auth_method_bit(const char *s, size_t len);
size_t pol_fmt_duration(char *buf, size_t size, int64_t secs);
size_t pol_fmt_addr(char *buf, size_t size, int family, const uint8_t *addr,
    unsigned prefix);

/* --- lexer */

typedef enum {
    POL_TOK_EOF = 0,
    POL_TOK_IDENT,
    POL_TOK_STRING,
    POL_TOK_NUMBER,
    POL_TOK_DURATION,
    POL_TOK_ADDR,
    POL_TOK_LBRACE,
    POL_TOK_RBRACE,
    POL_TOK_LPAREN,
    POL_TOK_RPAREN,
    POL_TOK_COMMA,
    POL_TOK_ASSIGN,
    POL_TOK_EQ,
    POL_TOK_NE,
    POL_TOK_LT,
    POL_TOK_LE,
    POL_TOK_GT,
    POL_TOK_GE
} pol_tok_kind_t;

typedef struct {
    pol_tok_kind_t   kind;
    unsigned         line, col;
    const char      *text;          /* raw text in the source */
    size_t           len;
    pol_str_t        str;           /* decoded string (arena) */
    int64_t          num;           /* number; duration in seconds */
    uint8_t          addr[16];
    int              family;        /* 4 or 6 */
    unsigned         prefix;
} pol_tok_t;

typedef struct {
    const char      *file;
    const char      *p, *start, *end;
    unsigned         line, col;
    pol_arena_t     *arena;
    pol_diags_t     *diags;
} pol_lexer_t;

void pol_lexer_init(pol_lexer_t *lx, const char *file, const char *text,
    size_t len, pol_arena_t *arena, pol_diags_t *diags);
void pol_lexer_next(pol_lexer_t *lx, pol_tok_t *tok);
const char *pol_tok_kind_name(pol_tok_kind_t k);
int pol_tok_is(const pol_tok_t *t, const char *word);
int pol_parse_cidr(const char *s, size_t len, uint8_t *addr, int *family,
    unsigned *prefix, int *hostbits);

/* --- abstract syntax tree */

typedef struct {
    const char  *file;
    unsigned     line, col;
} pol_pos_t;

typedef struct ast_def_s   ast_def_t;

typedef enum {
    AST_OP_IDENT = 0,               /* attribute, name, keyword, bool */
    AST_OP_STRING,
    AST_OP_NUMBER,
    AST_OP_DURATION,
    AST_OP_ADDR
} ast_operand_kind_t;

typedef struct {
    pol_pos_t            pos;
    ast_operand_kind_t   kind;
    pol_str_t            text;      /* identifier or string value */
    int64_t              num;
    uint8_t              addr[16];
    int                  family;
    unsigned             prefix;
    /* resolved by the checker */
    pol_type_t           type;
    int                  attr;      /* -1 when not an attribute */
    ast_def_t           *def;       /* a named condition */
    int64_t              value;     /* keyword value, bool literal */
} ast_operand_t;

typedef struct ast_item_s {
    ast_operand_t        v;
    struct ast_item_s   *next;
} ast_item_t;

typedef enum {
    AST_SET_LIST = 0,
    AST_SET_NAME,                   /* definition or set attribute */
    AST_SET_NETWORK,
    AST_SET_GROUP
} ast_set_kind_t;

typedef struct {
    pol_pos_t        pos;
    ast_set_kind_t   kind;
    ast_item_t      *items;
    unsigned         nitems;
    pol_str_t        name;
    /* resolved */
    ast_def_t       *def;
    int              attr;
    pol_type_t       elem;
} ast_set_t;

typedef enum {
    AST_AND = 0,
    AST_OR,
    AST_NOT,
    AST_TEST,                       /* a bool operand */
    AST_CMP,
    AST_IN,
    AST_NOT_IN,
    AST_CONTAINS
} ast_cond_kind_t;

typedef enum {
    POL_CMP_EQ = 0,
    POL_CMP_NE,
    POL_CMP_LT,
    POL_CMP_LE,
    POL_CMP_GT,
    POL_CMP_GE
} pol_cmp_t;

typedef struct ast_cond_s  ast_cond_t;

struct ast_cond_s {
    pol_pos_t        pos;
    ast_cond_kind_t  kind;
    pol_cmp_t        op;
    ast_cond_t      *kids;          /* and, or, not */
    ast_cond_t      *next;          /* sibling */
    unsigned         nkids;
    ast_operand_t    lhs, rhs;
    ast_set_t        set;
};

typedef enum {
    AST_DEF_NETWORK = 0,
    AST_DEF_GROUP,
    AST_DEF_CONDITION
} ast_def_kind_t;

struct ast_def_s {
    pol_pos_t        pos;
    ast_def_kind_t   kind;
    pol_str_t        name;
    ast_item_t      *items;
    unsigned         nitems;
    ast_cond_t      *cond;
    int              used;
    int              mark;          /* cycle check: 0 new, 1 open, 2 done */
    int              bad;
    int32_t          node;          /* compiled root, -1 before */
    ast_def_t       *next;
};

typedef struct ast_host_s {
    pol_pos_t            pos;
    pol_str_t            pattern;
    struct ast_host_s   *next;
} ast_host_t;

typedef struct ast_path_s {
    pol_pos_t            pos;
    int                  prefix;
    pol_str_t            pattern;
    struct ast_path_s   *next;
} ast_path_t;

typedef struct ast_method_s {
    pol_pos_t            pos;
    pol_str_t            name;
    struct ast_method_s *next;
} ast_method_t;

typedef struct ast_header_s {
    pol_pos_t            pos;
    pol_str_t            name;
    ast_operand_t        value;
    struct ast_header_s *next;
} ast_header_t;

typedef struct ast_rule_s {
    pol_pos_t            pos;
    pol_str_t            name;
    ast_path_t          *paths;
    ast_method_t        *methods;
    ast_cond_t          *when;
    pol_pos_t            when_pos;
    int                  outcome;   /* 0 none */
    pol_pos_t            outcome_pos;
    unsigned             status;    /* 0 = not given */
    pol_pos_t            status_pos;
    int                  has_reason;
    pol_str_t            reason;
    ast_header_t        *headers;
    unsigned             nheaders;
    int64_t              cache;     /* -1 = not given */
    pol_pos_t            cache_pos;
    int                  report_only;
    struct ast_rule_s   *next;
} ast_rule_t;

typedef struct ast_app_s {
    pol_pos_t            pos;
    pol_str_t            name;
    ast_host_t          *hosts;
    ast_rule_t          *rules;
    struct ast_app_s    *next;
} ast_app_t;

typedef struct {
    int                  has_tz;
    pol_pos_t            tz_pos;
    pol_str_t            tz;
    int                  tz_offset; /* seconds east of UTC */
    ast_def_t           *defs, **defs_tail;
    ast_app_t           *apps, **apps_tail;
    unsigned             napps, nrules;
} ast_policy_t;

void pol_ast_init(ast_policy_t *ast);
int pol_parse(ast_policy_t *ast, const char *file, const char *text,
    size_t len, pol_arena_t *arena, pol_diags_t *diags);
int pol_check(ast_policy_t *ast, pol_diags_t *diags);
ast_def_t *pol_find_def(const ast_policy_t *ast, const char *name,
    size_t len);
size_t pol_fmt_cond(char *buf, size_t size, const ast_cond_t *c);
size_t pol_fmt_operand(char *buf, size_t size, const ast_operand_t *o);

/* --- compiled policy */

typedef enum {
    POL_PATH_EXACT = 0,
    POL_PATH_PREFIX,
    POL_PATH_GLOB
} pol_path_kind_t;

#define POL_GLOB_ANY1   256
#define POL_GLOB_STAR   257
#define POL_GLOB_DSTAR  258

typedef struct {
    pol_path_kind_t  kind;
    pol_str_t        pattern;       /* as written (for explain) */
    pol_str_t        lit;           /* exact text, prefix, or glob's
                                       literal head */
    uint16_t        *glob;
    unsigned         nglob;
} pol_path_t;

typedef struct {
    uint8_t          is_attr;
    uint8_t          type;          /* pol_type_t */
    uint16_t         attr;
    int64_t          num;
    pol_str_t        str;
    uint8_t          addr[16];
    int              family;
} pol_operand_t;

typedef enum {
    POL_N_AND = 0,
    POL_N_OR,
    POL_N_NOT,
    POL_N_TRUE,
    POL_N_FALSE,
    POL_N_ATTR,                     /* bool attribute */
    POL_N_NAMED,                    /* a named condition: a = its root */
    POL_N_CMP,
    POL_N_IN,                       /* neg for not in */
    POL_N_CONTAINS
} pol_node_kind_t;

typedef struct {
    uint8_t          kind;
    uint8_t          op;            /* pol_cmp_t */
    uint8_t          neg;
    uint8_t          icase;
    uint8_t          set_attr;      /* in: the set is an attribute */
    unsigned         mask;          /* auth.methods bits of a set/value */
    uint32_t         a, n;          /* kids: pol->kids[a..a+n-1] */
    uint32_t         set;           /* in: pol->sets[set] */
    pol_operand_t    l, r;
    const char      *text;          /* canonical form, for explain */
    unsigned         line, col;
} pol_node_t;

typedef struct {
    uint8_t          addr[16];
    uint8_t          mask[16];
    int              family;
} pol_cidr_t;

typedef struct {
    pol_type_t       elem;
    int              icase;
    unsigned         n;
    pol_str_t       *strs;          /* sorted */
    pol_cidr_t      *cidrs;
    int64_t         *nums;
} pol_set_t;

typedef struct {
    pol_str_t        name;
    pol_operand_t    value;
} pol_rule_header_t;

#define POL_M_GET       0x001u
#define POL_M_HEAD      0x002u
#define POL_M_POST      0x004u
#define POL_M_PUT       0x008u
#define POL_M_DELETE    0x010u
#define POL_M_PATCH     0x020u
#define POL_M_OPTIONS   0x040u
#define POL_M_CONNECT   0x080u
#define POL_M_TRACE     0x100u
#define POL_M_OTHER     0x200u

typedef struct {
    pol_str_t            name;
    pol_str_t            file;
    unsigned             line, col;
    pol_outcome_t        outcome;
    unsigned             status;
    pol_str_t            reason;
    int                  report_only;
    pol_path_t          *paths;
    unsigned             npaths;
    unsigned             methods;   /* POL_M_*, 0 = any */
    pol_str_t           *xmethods;  /* methods without a bit */
    unsigned             nxmethods;
    int32_t              cond;      /* node index, -1 = always */
    int64_t              ttl_ms;
    pol_rule_header_t   *headers;
    unsigned             nheaders;
} pol_rule_t;

typedef struct {
    pol_str_t        key;
    uint32_t        *rules;
    unsigned         n;
    int32_t          lastdeny;
} pol_segment_t;

typedef struct {
    pol_str_t        name;
    pol_rule_t      *rules;
    unsigned         nrules;
    uint32_t        *catchall;
    unsigned         ncatchall;
    int32_t          catchall_lastdeny;
    pol_segment_t   *segs;          /* open addressing, NULL keys empty */
    unsigned         segmask;       /* capacity - 1, or 0 when no table */
    uint32_t        *reports;
    unsigned         nreports;
} pol_app_t;

typedef struct {
    pol_str_t        host;          /* lower case; suffix with its dot */
    unsigned         app;
} pol_hostent_t;

struct pol_s {
    pol_arena_t      arena;
    char             version[17];
    int              tz_offset;
    pol_app_t       *apps;
    unsigned         napps;
    unsigned         nrules;
    pol_hostent_t   *exact;
    unsigned         nexact;
    pol_hostent_t   *wild;          /* longest suffix first */
    unsigned         nwild;
    int              fallback;      /* app of "*", -1 none */
    pol_node_t      *nodes;
    unsigned         nnodes;
    uint32_t        *kids;
    unsigned         nkids;
    pol_set_t       *sets;
    unsigned         nsets;
};

pol_t *pol_compile(ast_policy_t *ast, const char *version,
    pol_diags_t *diags);
uint32_t pol_seg_hash(const char *s, size_t len);
int pol_glob_match(const uint16_t *glob, unsigned n, const char *s,
    size_t len);

/* Counts kept for "ztpolicy check" even when the policy has errors. */
typedef struct {
    unsigned         napps;
    unsigned         nrules;
} pol_counts_t;

int pol_load_counts(const char *path, pol_t **out, pol_diags_t *diags,
    pol_counts_t *counts);
int pol_read_file(const char *path, char **text, size_t *len,
    pol_diags_t *diags);
int pol_list_dir(const char *path, const char *ext, char ***names,
    size_t *n, pol_diags_t *diags);
void pol_free_list(char **names, size_t n);

/* Parse every file of path (syntax only) into ast, for fmt. */
int pol_parse_path(const char *path, ast_policy_t *ast, pol_arena_t *arena,
    uint64_t *hash, pol_diags_t *diags);
int pol_parse_text(const char *name, const char *text, size_t len,
    ast_policy_t *ast, pol_arena_t *arena, uint64_t *hash,
    pol_diags_t *diags);
int pol_fmt_ast(const ast_policy_t *ast, char **out, size_t *len);

#endif /* ZT_POLICY_INT_H */
