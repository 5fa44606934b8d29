/*
 * Milliseconds on a clock: CLOCK_MONOTONIC for intervals and deadlines,
 * CLOCK_REALTIME for times that are recorded or compared with another
 * host's (the journal, the cluster's change log).
 */

#ifndef ZT_CLOCK_H
#define ZT_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t
zt_clock_ms(clockid_t id)
{
    struct timespec  ts;

    clock_gettime(id, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif /* ZT_CLOCK_H */
