/*
 * The trust score: a pure function from signals to a number 0..100.
 *
 * Additive model (docs/trust.md): start from a base, and for every signal
 * add direction x weight x value, where value is in [0, 1], direction is
 * +1 for a signal that raises trust and -1 for one that lowers it, and
 * weight is configurable (0..100).  The sum is rounded and clamped to
 * 0..100.  No allocation, no I/O: the decision path calls it per request
 * and the unit tests call it directly.
 */

#ifndef ZT_SCORE_H
#define ZT_SCORE_H

typedef enum {
    /* identity */
    SCORE_FACTORS = 0,          /* + factors used: 0 none .. 1 two or more */
    SCORE_MFA_RECENT,           /* + freshness of the last second factor */
    SCORE_LOGIN_FAILURES,       /* - recent failed sign-ins of the user */
    /* device */
    SCORE_DEVICE_ENROLLED,      /* + a known, active device */
    SCORE_DEVICE_BOUND,         /* + the device belongs to this user */
    SCORE_DEVICE_QUARANTINED,   /* - the device is quarantined */
    SCORE_POSTURE,              /* + share of posture checks reported good */
    SCORE_POSTURE_FRESH,        /* + freshness of the posture report */
    /* context */
    SCORE_TRUSTED_NETWORK,      /* + source in a trusted_network */
    SCORE_BLOCKLISTED,          /* - source on a blocklist */
    SCORE_NEW_ADDRESS,          /* - source address new for this user */
    SCORE_UNUSUAL_TIME,         /* - hour/weekday unusual for this user */
    /* behaviour */
    SCORE_DENIALS,              /* - recent denials (session/device/addr) */
    SCORE_RATE,                 /* - request rate above the session's own */
    SCORE_NSIGNALS
} score_signal_t;

#define SCORE_DEFAULT_BASE  20
#define SCORE_WEIGHT_MAX    100

typedef struct {
    int     base;                       /* 0..100 */
    int     weight[SCORE_NSIGNALS];     /* 0..SCORE_WEIGHT_MAX */
} score_weights_t;

typedef struct {
    double  value[SCORE_NSIGNALS];      /* each in [0, 1]; out of range is
                                           clamped */
} score_signals_t;

typedef struct {
    int     score;                          /* 0..100 */
    double  raw;                            /* before clamping */
    double  value[SCORE_NSIGNALS];          /* as used (clamped) */
    double  contribution[SCORE_NSIGNALS];   /* signed points */
} score_result_t;

/* Fill *w with the documented defaults. */
void score_weights_default(score_weights_t *w);

/*
 * Compute the score of *s with weights *w into *out.  Never fails; a NaN
 * value counts as 0.  Returns out->score.
 */
int score_compute(const score_weights_t *w, const score_signals_t *s,
    score_result_t *out);

/* The signal's configuration name ("mfa_recent"), or "invalid". */
const char *score_signal_name(score_signal_t sig);

/* +1 if the signal raises trust, -1 if it lowers it. */
int score_signal_direction(score_signal_t sig);

/* Parse a signal name; returns 0 and sets *sig, or -1. */
int score_signal_parse(const char *name, score_signal_t *sig);

#endif /* ZT_SCORE_H */
