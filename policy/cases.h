/*
 * ztgate policy test cases: the .cases files that "ztpolicy test" and
 * "ztpolicy explain" run (format in docs/policy.md), parsed into ready
 * pol_input_t values plus the expected decision.  In the library so that
 * trustd's admin tools can reuse it; like pol_load(), it reads files only
 * when loading.
 */

#ifndef ZT_POLICY_CASES_H
#define ZT_POLICY_CASES_H

#include <stddef.h>

#include "policy.h"

typedef struct pol_cases_s  pol_cases_t;   /* owns every case and string */

typedef enum {
    POL_EXPECT_RULE_ANY = 0,        /* no rule given: not checked */
    POL_EXPECT_RULE_NAMED,          /* rule "name" */
    POL_EXPECT_RULE_NONE            /* rule none: the default deny */
} pol_expect_rule_t;

typedef struct {
    pol_str_t            name;
    const char          *file;
    unsigned             line;
    pol_input_t          input;     /* strings point into the pol_cases_t */
    pol_outcome_t        expect;
    unsigned             expect_status;     /* 0 = not checked */
    pol_expect_rule_t    expect_rule_kind;
    pol_str_t            expect_rule;
} pol_case_t;

/*
 * Default "now" of a case without a time line, so that runs are
 * reproducible: 2026-01-01T12:00:00Z.
 */
#define POL_CASE_DEFAULT_NOW    1767268800

/*
 * Load the cases at path: a .cases file, or a directory whose *.cases
 * files (in name order) are read.  On success returns 0 and *out owns the
 * cases (free with pol_cases_free); on failure returns -1, *out is NULL
 * and *diags holds the errors, each with file, line and column.
 */
int pol_cases_load(const char *path, pol_cases_t **out, pol_diags_t *diags);

/* Same, from a string (name is used in diagnostics). */
int pol_cases_load_string(const char *name, const char *text, size_t len,
    pol_cases_t **out, pol_diags_t *diags);

void pol_cases_free(pol_cases_t *cs);

size_t pol_cases_count(const pol_cases_t *cs);

/* The i-th case, in file order; NULL when i is out of range. */
const pol_case_t *pol_cases_get(const pol_cases_t *cs, size_t i);

/* The first case called name, or NULL. */
const pol_case_t *pol_cases_find(const pol_cases_t *cs, const char *name);

/*
 * Compare a decision with the case's expectation.  Returns 1 if it meets
 * it; otherwise 0 and a sentence into why, e.g.
 * expected allow by "x", got deny by "y" (hr.policy:21)
 */
int pol_case_check(const pol_case_t *c, const pol_decision_t *d, char *why,
    size_t size);

#endif /* ZT_POLICY_CASES_H */
