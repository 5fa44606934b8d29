/*
 * Fuzz target for decision answers: reads frames out of the input as the
 * nginx module's receiver does (peek, decode, consume, repeat), checks
 * that whatever decoded is safe to copy into HTTP headers, then
 * re-encodes it and checks that decoding the result gives the same
 * answer back, field by field.  Any broken invariant aborts.
 */

#include <stdlib.h>
#include <string.h>

#include "zt_wire.h"
#include "fuzz.h"
#include "fuzz_wire_common.h"

static void fuzz_resp_frame(const wire_frame_t *f);
static int fuzz_is_token(const wire_str_t *s);
static int fuzz_is_header_text(const wire_str_t *s);
static void fuzz_check_resp(const wire_frame_t *f, const wire_resp_t *resp);
static size_t fuzz_resp_size(const wire_resp_t *resp);
static int fuzz_resp_eq(const wire_resp_t *a, const wire_resp_t *b);
static int fuzz_resp_encode(uint8_t *p, uint8_t *end, uint32_t id,
    const void *msg);
static void fuzz_resp_redecode(const wire_frame_t *f, const void *msg);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_wire_frames(data, size, fuzz_resp_frame);

    return 0;
}


static void
fuzz_resp_frame(const wire_frame_t *f)
{
    wire_resp_t  resp;
    int          rc;

    rc = wire_decode_resp(f, &resp);

    if (rc == WIRE_OK) {
        fuzz_check_resp(f, &resp);
        fuzz_wire_roundtrip(f->id, WIRE_DECIDE_RESP, &resp,
                            fuzz_resp_size(&resp), fuzz_resp_encode,
                            fuzz_resp_redecode);

    } else {
        fuzz_wire_decode_failed(rc);
    }
}


/* RFC 9110 token, written out here rather than trusting the codec's. */
static int
fuzz_is_token(const wire_str_t *s)
{
    static const char  tchar[] = "!#$%&'*+-.^_`|~";
    size_t             i;
    unsigned char      c;

    if (s->len == 0) {
        return 0;
    }

    for (i = 0; i < s->len; i++) {
        c = (unsigned char) s->data[i];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9'))
        {
            continue;
        }

        if (c == '\0' || memchr(tchar, c, sizeof(tchar) - 1) == NULL) {
            return 0;
        }
    }

    return 1;
}


/* What the module may copy into a header: no CR, LF or NUL. */
static int
fuzz_is_header_text(const wire_str_t *s)
{
    size_t  i;

    for (i = 0; i < s->len; i++) {
        if (s->data[i] == '\r' || s->data[i] == '\n' || s->data[i] == '\0') {
            return 0;
        }
    }

    return 1;
}


static void
fuzz_check_resp(const wire_frame_t *f, const wire_resp_t *resp)
{
    unsigned  i;

    if (resp->decision < WIRE_ALLOW || resp->decision > WIRE_STEP_UP
        || resp->status < 100 || resp->status > 599
        || resp->nheaders > WIRE_MAX_HEADERS)
    {
        abort();
    }

    fuzz_check_str(f, &resp->reason);
    fuzz_check_str(f, &resp->redirect);

    if (!fuzz_is_header_text(&resp->reason)
        || !fuzz_is_header_text(&resp->redirect))
    {
        abort();
    }

    for (i = 0; i < resp->nheaders; i++) {
        fuzz_check_str(f, &resp->headers[i].name);
        fuzz_check_str(f, &resp->headers[i].value);

        if (!fuzz_is_token(&resp->headers[i].name)
            || !fuzz_is_header_text(&resp->headers[i].value))
        {
            abort();
        }
    }
}


/*
 * The size wire_encode_resp() must produce, computed independently:
 * decision, status, ttl and reason code always, reason and redirect when
 * not empty, each header as u16 name length + name + value.
 */
static size_t
fuzz_resp_size(const wire_resp_t *resp)
{
    size_t    n;
    unsigned  i;

    n = WIRE_HDR_LEN;
    n += FUZZ_FIELD_HDR + 1;
    n += FUZZ_FIELD_HDR + 2;
    n += FUZZ_FIELD_HDR + 4;
    n += FUZZ_FIELD_HDR + 2;
    n += resp->reason.len ? FUZZ_FIELD_HDR + resp->reason.len : 0;
    n += resp->redirect.len ? FUZZ_FIELD_HDR + resp->redirect.len : 0;

    for (i = 0; i < resp->nheaders; i++) {
        n += FUZZ_FIELD_HDR + 2 + resp->headers[i].name.len
             + resp->headers[i].value.len;
    }

    return n;
}


static int
fuzz_resp_eq(const wire_resp_t *a, const wire_resp_t *b)
{
    unsigned  i;

    if (a->decision != b->decision || a->status != b->status
        || a->ttl_ms != b->ttl_ms || a->reason_code != b->reason_code
        || !fuzz_str_eq(&a->reason, &b->reason)
        || !fuzz_str_eq(&a->redirect, &b->redirect)
        || a->nheaders != b->nheaders)
    {
        return 0;
    }

    /* order matters: the module adds the headers in this order */
    for (i = 0; i < a->nheaders; i++) {
        if (!fuzz_str_eq(&a->headers[i].name, &b->headers[i].name)
            || !fuzz_str_eq(&a->headers[i].value, &b->headers[i].value))
        {
            return 0;
        }
    }

    return 1;
}


static int
fuzz_resp_encode(uint8_t *p, uint8_t *end, uint32_t id, const void *msg)
{
    return wire_encode_resp(p, end, id, msg);
}


/* decode(encode(resp)) must equal resp. */
static void
fuzz_resp_redecode(const wire_frame_t *f, const void *msg)
{
    wire_resp_t  again;

    if (wire_decode_resp(f, &again) != WIRE_OK) {
        abort();
    }

    fuzz_check_resp(f, &again);

    if (!fuzz_resp_eq(msg, &again)) {
        abort();
    }
}
