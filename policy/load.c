/*
 * Loading: read the policy file or the directory's *.policy files (the
 * only I/O the library does), parse them into one AST, check it, and
 * compile it into a pol_t.  Also the formatter's entry points.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "policy_int.h"

static void pol_hash_add(uint64_t *h, const char *s, size_t len);
static int pol_finish(ast_policy_t *ast, uint64_t hash, pol_t **out,
    pol_diags_t *diags, pol_counts_t *counts);


static void
pol_hash_add(uint64_t *h, const char *s, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        *h = (*h ^ (unsigned char) s[i]) * 1099511628211ULL;
    }
    *h = (*h ^ 0xffu) * 1099511628211ULL;
}


/*
 * Parses one text into ast.  The text is copied into the arena, so the
 * AST can point into it for as long as the arena lives.
 */
int
pol_parse_text(const char *name, const char *text, size_t len,
    ast_policy_t *ast, pol_arena_t *arena, uint64_t *hash,
    pol_diags_t *diags)
{
    char        *copy, *fname;
    const char  *base;

    fname = pol_strndup(arena, name, strlen(name));
    if (fname == NULL) {
        pol_diag_add(diags, 0, name, 0, 0, "out of memory");
        return -1;
    }

    if (len > POL_MAX_FILE_SIZE) {
        pol_diag_add(diags, 0, name, 0, 0,
                     "file is larger than 4 MiB; refusing to load it");
        return -1;
    }

    copy = pol_strndup(arena, text, len);
    if (copy == NULL) {
        pol_diag_add(diags, 0, name, 0, 0, "out of memory");
        return -1;
    }

    base = strrchr(name, '/');
    base = base ? base + 1 : name;
    pol_hash_add(hash, base, strlen(base));
    pol_hash_add(hash, text, len);

    return pol_parse(ast, fname, copy, len, arena, diags);
}


/*
 * Parses the file or every *.policy file of the directory at path into
 * ast.  Returns 0, or -1 with the errors in diags.
 */
int
pol_parse_path(const char *path, ast_policy_t *ast, pol_arena_t *arena,
    uint64_t *hash, pol_diags_t *diags)
{
    struct stat   st;
    char        **names, *text;
    size_t        n, i, len;
    int           rc;

    if (stat(path, &st) != 0) {
        pol_diag_add(diags, 0, path, 0, 0, "cannot open: %s",
                     strerror(errno));
        return -1;
    }

    if (!S_ISDIR(st.st_mode)) {
        if (pol_read_file(path, &text, &len, diags) != 0) {
            return -1;
        }
        rc = pol_parse_text(path, text, len, ast, arena, hash, diags);
        free(text);
        return rc;
    }

    if (pol_list_dir(path, ".policy", &names, &n, diags) != 0) {
        return -1;
    }

    if (n == 0) {
        pol_diag_add(diags, 0, path, 0, 0,
                     "no *.policy files in this directory");
        pol_free_list(names, n);
        return -1;
    }

    rc = 0;
    for (i = 0; i < n; i++) {
        if (pol_read_file(names[i], &text, &len, diags) != 0) {
            rc = -1;
            continue;
        }
        if (pol_parse_text(names[i], text, len, ast, arena, hash, diags)
            != 0)
        {
            rc = -1;
        }
        free(text);
    }

    pol_free_list(names, n);
    return rc;
}


static int
pol_finish(ast_policy_t *ast, uint64_t hash, pol_t **out, pol_diags_t *diags,
    pol_counts_t *counts)
{
    char  version[17];

    if (counts != NULL) {
        counts->napps = ast->napps;
        counts->nrules = ast->nrules;
    }

    if (pol_check(ast, diags) != 0) {
        return -1;
    }

    snprintf(version, sizeof(version), "%016llx", (unsigned long long) hash);

    *out = pol_compile(ast, version, diags);
    return (*out == NULL) ? -1 : 0;
}


int
pol_load_counts(const char *path, pol_t **out, pol_diags_t *diags,
    pol_counts_t *counts)
{
    pol_arena_t    arena;
    ast_policy_t   ast;
    pol_diags_t    local;
    uint64_t       hash;
    int            rc;

    if (diags == NULL) {
        diags = &local;
    }
    memset(diags, 0, sizeof(*diags));
    memset(&arena, 0, sizeof(arena));
    *out = NULL;
    if (counts != NULL) {
        counts->napps = 0;
        counts->nrules = 0;
    }

    pol_ast_init(&ast);
    hash = 14695981039346656037ULL;

    rc = pol_parse_path(path, &ast, &arena, &hash, diags);
    if (rc == 0) {
        rc = pol_finish(&ast, hash, out, diags, counts);
    } else if (counts != NULL) {
        counts->napps = ast.napps;
        counts->nrules = ast.nrules;
    }

    pol_arena_free(&arena);
    return rc;
}


int
pol_load(const char *path, pol_t **out, pol_diags_t *diags)
{
    return pol_load_counts(path, out, diags, NULL);
}


int
pol_load_string(const char *name, const char *text, size_t len,
    pol_t **out, pol_diags_t *diags)
{
    pol_arena_t    arena;
    ast_policy_t   ast;
    pol_diags_t    local;
    uint64_t       hash;
    int            rc;

    if (diags == NULL) {
        diags = &local;
    }
    memset(diags, 0, sizeof(*diags));
    memset(&arena, 0, sizeof(arena));
    *out = NULL;

    pol_ast_init(&ast);
    hash = 14695981039346656037ULL;

    rc = pol_parse_text(name, text, len, &ast, &arena, &hash, diags);
    if (rc == 0) {
        rc = pol_finish(&ast, hash, out, diags, NULL);
    }

    pol_arena_free(&arena);
    return rc;
}


int
pol_fmt(const char *path, char **out, size_t *len, pol_diags_t *diags)
{
    pol_arena_t    arena;
    ast_policy_t   ast;
    pol_diags_t    local;
    uint64_t       hash;
    int            rc;

    if (diags == NULL) {
        diags = &local;
    }
    memset(diags, 0, sizeof(*diags));
    memset(&arena, 0, sizeof(arena));
    *out = NULL;
    *len = 0;

    pol_ast_init(&ast);
    hash = 0;

    rc = pol_parse_path(path, &ast, &arena, &hash, diags);
    if (rc == 0 && pol_fmt_ast(&ast, out, len) != 0) {
        pol_diag_add(diags, 0, path, 0, 0, "out of memory");
        rc = -1;
    }

    pol_arena_free(&arena);
    return rc;
}


int
pol_fmt_string(const char *name, const char *text, size_t len, char **out,
    size_t *outlen, pol_diags_t *diags)
{
    pol_arena_t    arena;
    ast_policy_t   ast;
    pol_diags_t    local;
    uint64_t       hash;
    int            rc;

    if (diags == NULL) {
        diags = &local;
    }
    memset(diags, 0, sizeof(*diags));
    memset(&arena, 0, sizeof(arena));
    *out = NULL;
    *outlen = 0;

    pol_ast_init(&ast);
    hash = 0;

    rc = pol_parse_text(name, text, len, &ast, &arena, &hash, diags);
    if (rc == 0 && pol_fmt_ast(&ast, out, outlen) != 0) {
        pol_diag_add(diags, 0, name, 0, 0, "out of memory");
        rc = -1;
    }

    pol_arena_free(&arena);
    return rc;
}
