/*
 * ztgate policy language: compile policy files written by administrators
 * and evaluate requests against the compiled policy.
 *
 * The language is specified in docs/policy.md.  pol_load() parses, checks
 * and compiles a file or a directory of *.policy files into one immutable
 * pol_t.  pol_eval() decides a request from a pol_input_t without
 * allocating, parsing or doing I/O, so it is safe on trustd's hot path and
 * from several threads at once on the same pol_t.
 *
 * Conventions: 0 on success, -1 on failure with details in a caller-
 * supplied error record.
 */

#ifndef ZT_POLICY_H
#define ZT_POLICY_H

#include <stddef.h>
#include <stdint.h>

#define POL_MAX_GROUPS      32      /* groups of one user considered */
#define POL_MAX_HEADERS     8       /* headers one rule may set */
#define POL_MAX_REPORTS     8       /* report-only matches returned */
#define POL_MAX_DIAGS       64      /* errors + warnings kept by pol_load */

typedef struct pol_s  pol_t;       /* a compiled policy, immutable */

typedef struct {
    const char  *data;              /* not NUL-terminated */
    size_t       len;
} pol_str_t;

/* One diagnostic: "file:line:col: error: message". */
typedef struct {
    char         file[256];
    unsigned     line;              /* 1-based; 0 when not about a place */
    unsigned     col;               /* 1-based */
    int          warning;           /* 0 error, 1 warning */
    char         msg[256];
} pol_diag_t;

typedef struct {
    unsigned     nerrors;
    unsigned     nwarnings;
    unsigned     ndiags;            /* stored, at most POL_MAX_DIAGS */
    pol_diag_t   diags[POL_MAX_DIAGS];
} pol_diags_t;

/* Authentication methods, a bit set. */
#define POL_AUTH_PASSWORD   0x01u
#define POL_AUTH_TOTP       0x02u
#define POL_AUTH_WEBAUTHN   0x04u
#define POL_AUTH_CERT       0x08u   /* device certificate verified */
#define POL_AUTH_UV         0x10u   /* the WebAuthn authenticator verified
                                       the user (PIN, biometrics) */

/*
 * The NIST SP 800-63B authenticator assurance level a set of methods
 * reaches (auth.aal, X-ZT-AAL): 3 for WebAuthn with user verification
 * (a phishing-resistant, verifier-bound hardware authenticator), 2 for
 * WebAuthn without it or TOTP, 1 for a password alone, 0 for none.
 */
unsigned pol_aal(unsigned methods);

typedef enum {
    POL_DEVICE_NONE = 0,            /* no verified device certificate */
    POL_DEVICE_UNKNOWN,             /* verified certificate, not enrolled */
    POL_DEVICE_ACTIVE,
    POL_DEVICE_QUARANTINED,
    POL_DEVICE_REVOKED
} pol_device_status_t;

/* A posture flag: reported true, reported false, or never reported. */
typedef enum {
    POL_UNREPORTED = -1,
    POL_FALSE = 0,
    POL_TRUE = 1
} pol_flag_t;

/*
 * Everything a decision may look at.  The caller fills what it knows;
 * pol_input_init() sets every field to its "absent" value (not
 * authenticated, no device, posture unreported, score -1 meaning not
 * computed).  Strings are borrowed for the duration of pol_eval().
 */
typedef struct {
    /* request */
    pol_str_t            method;
    pol_str_t            host;          /* without port; any case */
    pol_str_t            path;          /* normalized */
    uint8_t              addr[16];      /* source address */
    int                  addr_family;   /* 4 or 6; 0 = unknown */
    int64_t              now;           /* unix seconds */

    /* user */
    int                  authenticated;
    pol_str_t            user;
    pol_str_t            groups[POL_MAX_GROUPS];
    unsigned             ngroups;
    unsigned             auth_methods;  /* POL_AUTH_* */
    int64_t              mfa_time;      /* last second factor; 0 = never */

    /* device */
    pol_device_status_t  device_status;
    pol_str_t            device_id;
    pol_str_t            device_owner;
    int64_t              posture_time;  /* last report; 0 = never */
    int                  posture_stale; /* no report within trustd's
                                           posture_max_age (absent: 1) */
    pol_flag_t           disk_encrypted;
    pol_flag_t           firewall;
    pol_flag_t           screen_lock;
    pol_flag_t           endpoint_protection;
    pol_str_t            os;
    pol_str_t            os_version;
    int64_t              patch_time;    /* last OS patch; 0 = unknown */

    /* context and inference */
    int                  blocklisted;
    int                  new_address;
    int                  trust_score;   /* 0..100, -1 = not computed */
} pol_input_t;

typedef enum {
    POL_ALLOW = 1,                  /* same values as enum wire_decision */
    POL_DENY = 2,
    POL_LOGIN = 3,
    POL_STEP_UP = 4
} pol_outcome_t;

typedef struct {
    pol_str_t    name;
    pol_str_t    value;             /* may point into the input */
} pol_header_t;

/* A report-only rule that matched and would have changed the decision. */
typedef struct {
    pol_str_t       rule;
    pol_outcome_t   outcome;
} pol_report_t;

/*
 * A decision.  Strings point into the compiled policy (valid while the
 * pol_t lives) or into the input (valid while it lives).
 */
typedef struct {
    pol_outcome_t   outcome;
    unsigned        status;         /* HTTP status for deny; 0 otherwise */
    pol_str_t       reason;         /* shown to the user on deny */
    pol_str_t       app;            /* "" when no application matched */
    pol_str_t       rule;           /* "" for the default deny */
    pol_str_t       file;           /* where the deciding rule is */
    unsigned        line;
    int64_t         ttl_ms;         /* rule's cache lifetime; -1 = default */
    unsigned        nheaders;
    pol_header_t    headers[POL_MAX_HEADERS];
    unsigned        nreports;
    pol_report_t    reports[POL_MAX_REPORTS];
} pol_decision_t;

/*
 * Explanation trace: one entry per condition node of the deciding rule (and
 * of every rule that was considered, in order), filled by pol_explain().
 */
typedef struct {
    pol_str_t    rule;
    unsigned     line, col;
    unsigned     depth;             /* nesting, for indentation */
    int          result;            /* 0 false, 1 true */
    char         text[160];         /* the condition in canonical form */
    char         seen[160];         /* the value(s) the condition saw */
} pol_trace_t;

/* Set every field of *in to its absent value. */
void pol_input_init(pol_input_t *in);

/*
 * Load, check and compile the policy at path: a file, or a directory whose
 * *.policy files (in name order) form one policy.  On success returns 0,
 * *out owns the compiled policy (free with pol_free) and *diags holds any
 * warnings.  On failure returns -1, *out is NULL, and *diags holds the
 * errors (each with file, line and column) and warnings.
 */
int pol_load(const char *path, pol_t **out, pol_diags_t *diags);

/* Same, from a string (name is used in diagnostics). */
int pol_load_string(const char *name, const char *text, size_t len,
    pol_t **out, pol_diags_t *diags);

void pol_free(pol_t *pol);

/*
 * Decide.  Never allocates, never fails: an input no rule matches gets the
 * default deny (status 403, reason "no rule allows this request").
 * Thread-safe for concurrent calls on the same pol_t.
 */
void pol_eval(const pol_t *pol, const pol_input_t *in, pol_decision_t *d);

/*
 * Decide as pol_eval() and also record why, into trace[0..max-1]; returns
 * the number of entries written.  For tools (explain), not the hot path.
 */
size_t pol_explain(const pol_t *pol, const pol_input_t *in,
    pol_decision_t *d, pol_trace_t *trace, size_t max);

/* A short identity of the compiled policy (hash of its sources), hex. */
const char *pol_version(const pol_t *pol);

/* Counts, for logs: applications and rules. */
unsigned pol_napps(const pol_t *pol);
unsigned pol_nrules(const pol_t *pol);

/* Format one diagnostic as "file:line:col: error: msg" into buf. */
void pol_diag_format(const pol_diag_t *d, char *buf, size_t size);

const char *pol_outcome_name(pol_outcome_t o);

/*
 * Canonical text of the policy at path (a file or a directory, whose files
 * are merged into one text): definitions first, 4-space indentation, one
 * rule line per line; comments are not kept.  Only syntax is checked.  On
 * success returns 0 and *out is a NUL-terminated buffer of *len bytes that
 * the caller frees with free(); on failure returns -1, *out is NULL and
 * *diags holds the errors.
 */
int pol_fmt(const char *path, char **out, size_t *len, pol_diags_t *diags);

/* Same, from a string (name is used in diagnostics). */
int pol_fmt_string(const char *name, const char *text, size_t len,
    char **out, size_t *outlen, pol_diags_t *diags);

#endif /* ZT_POLICY_H */
