/*
 * Fuzz target for device posture reports: arbitrary bytes go to
 * portal_posture_parse(), the parser of what an agent POSTs to the
 * portal.  A report that parses must hold only what the contract allows
 * (NUL-terminated printable text, known flag values, a reported time in
 * range, fp and received_at zero, source "agent"); a refused one must
 * come with a message.  Any broken invariant aborts.
 */

#include <stdlib.h>
#include <string.h>

#include "portal.h"
#include "fuzz.h"

static void fuzz_check_text(const char *s, size_t size);
static void fuzz_check_flag(store_flag_t f);


static void
fuzz_check_text(const char *s, size_t size)
{
    size_t  i, len;

    len = strnlen(s, size);
    if (len == size) {
        abort();
    }

    for (i = 0; i < len; i++) {
        if ((unsigned char) s[i] < 0x20 || (unsigned char) s[i] > 0x7e) {
            abort();
        }
    }
}


static void
fuzz_check_flag(store_flag_t f)
{
    if (f != STORE_FLAG_UNREPORTED && f != STORE_FLAG_FALSE
        && f != STORE_FLAG_TRUE)
    {
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    store_posture_t   rep;
    char             *buf, err[256];
    size_t            i;

    /* an exactly sized heap copy: ASan flags any read past the end */
    buf = malloc(size ? size : 1);
    if (buf == NULL) {
        return 0;
    }
    if (size) {
        memcpy(buf, data, size);
    }

    err[0] = '\0';

    if (portal_posture_parse(buf, size, &rep, err, sizeof(err)) == 0) {
        fuzz_check_text(rep.os, sizeof(rep.os));
        fuzz_check_text(rep.os_version, sizeof(rep.os_version));
        fuzz_check_flag(rep.disk_encrypted);
        fuzz_check_flag(rep.firewall);
        fuzz_check_flag(rep.screen_lock);
        fuzz_check_flag(rep.endpoint_protection);
        if (rep.reported_at <= 0 || rep.patch_time < 0
            || rep.received_at != 0 || strcmp(rep.source, "agent") != 0)
        {
            abort();
        }
        for (i = 0; i < sizeof(rep.fp); i++) {
            if (rep.fp[i] != 0) {
                abort();
            }
        }

    } else if (err[0] == '\0' || strnlen(err, sizeof(err)) == sizeof(err)) {
        abort();
    }

    free(buf);

    return 0;
}
