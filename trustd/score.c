/*
 * The trust score.  See score.h and docs/trust.md.
 */

#include <string.h>

#include "score.h"


typedef struct {
    const char  *name;
    int          direction;
    int          weight;
} score_def_t;


/* Indexed by score_signal_t; docs/trust.md has the same table. */
static const score_def_t  score_defs[SCORE_NSIGNALS] = {
    { "factors",            1, 15 },
    { "mfa_recent",         1, 10 },
    { "login_failures",    -1, 20 },
    { "device_enrolled",    1, 10 },
    { "device_bound",       1, 10 },
    { "device_quarantined", -1, 30 },
    { "posture",            1, 10 },
    { "posture_fresh",      1, 15 },
    { "trusted_network",    1, 10 },
    { "blocklisted",       -1, 60 },
    { "new_address",       -1, 15 },
    { "unusual_time",      -1, 10 },
    { "denials",           -1, 30 },
    { "rate",              -1, 15 },
};


void
score_weights_default(score_weights_t *w)
{
    int  i;

    w->base = SCORE_DEFAULT_BASE;

    for (i = 0; i < SCORE_NSIGNALS; i++) {
        w->weight[i] = score_defs[i].weight;
    }
}


int
score_compute(const score_weights_t *w, const score_signals_t *s,
    score_result_t *out)
{
    double  v, sum;
    int     i;

    sum = (double) w->base;

    for (i = 0; i < SCORE_NSIGNALS; i++) {
        v = s->value[i];

        /* NaN fails every comparison: it ends up 0 */
        if (!(v > 0.0)) {
            v = 0.0;
        } else if (v > 1.0) {
            v = 1.0;
        }

        out->value[i] = v;
        /* + 0.0: a lowering signal at 0 contributes 0, not -0 */
        out->contribution[i] = (double) score_defs[i].direction
                               * (double) w->weight[i] * v + 0.0;
        sum += out->contribution[i];
    }

    out->raw = sum;

    if (sum <= 0.0) {
        out->score = 0;
    } else if (sum >= 100.0) {
        out->score = 100;
    } else {
        out->score = (int) (sum + 0.5);
    }

    return out->score;
}


const char *
score_signal_name(score_signal_t sig)
{
    if ((int) sig < 0 || sig >= SCORE_NSIGNALS) {
        return "invalid";
    }

    return score_defs[sig].name;
}


int
score_signal_direction(score_signal_t sig)
{
    if ((int) sig < 0 || sig >= SCORE_NSIGNALS) {
        return 0;
    }

    return score_defs[sig].direction;
}


int
score_signal_parse(const char *name, score_signal_t *sig)
{
    int  i;

    for (i = 0; i < SCORE_NSIGNALS; i++) {
        if (strcmp(score_defs[i].name, name) == 0) {
            *sig = (score_signal_t) i;
            return 0;
        }
    }

    return -1;
}
