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

#define FUZZ_FIELD_HDR  3               /* u8 tag + u16 len */

static void fuzz_check_frame(const uint8_t *p, const uint8_t *end,
    const wire_frame_t *f);
static void fuzz_check_str(const wire_frame_t *f, const wire_str_t *s);
static int fuzz_is_token(const wire_str_t *s);
static int fuzz_is_header_text(const wire_str_t *s);
static void fuzz_check_resp(const wire_frame_t *f, const wire_resp_t *resp);
static size_t fuzz_resp_size(const wire_resp_t *resp);
static int fuzz_str_eq(const wire_str_t *a, const wire_str_t *b);
static int fuzz_resp_eq(const wire_resp_t *a, const wire_resp_t *b);
static void fuzz_roundtrip(uint32_t id, const wire_resp_t *resp);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t        *buf;
    const uint8_t  *p, *end;
    wire_frame_t    f;
    wire_resp_t     resp;
    int             rc;

    /* an exactly sized heap copy: ASan flags any read past the end */
    buf = malloc(size ? size : 1);
    if (buf == NULL) {
        return 0;
    }

    if (size) {
        memcpy(buf, data, size);
    }

    p = buf;
    end = buf + size;

    for ( ;; ) {
        rc = wire_frame_peek(p, end, &f);

        if (rc == WIRE_AGAIN) {
            /* more bytes could complete it: none may be a whole frame */
            if (end - p >= 4
                && (size_t) (end - p) >= ((size_t) p[0] << 24
                                          | (size_t) p[1] << 16
                                          | (size_t) p[2] << 8
                                          | (size_t) p[3]) + 4)
            {
                abort();
            }
            break;
        }

        if (rc != WIRE_OK) {
            if (rc != WIRE_ETOOBIG && rc != WIRE_EVERSION
                && rc != WIRE_EMALFORMED)
            {
                abort();
            }
            /* the receiver closes the connection: nothing to resync on */
            break;
        }

        fuzz_check_frame(p, end, &f);

        rc = wire_decode_resp(&f, &resp);

        if (rc == WIRE_OK) {
            fuzz_check_resp(&f, &resp);
            fuzz_roundtrip(f.id, &resp);

        } else if (rc != WIRE_ETYPE && rc != WIRE_EMALFORMED
                   && rc != WIRE_EFIELD && rc != WIRE_EMISSING)
        {
            abort();
        }

        /* keep going after a bad body: the framing is still known */
        p += f.frame_len;
    }

    free(buf);

    return 0;
}


/* The frame peek found must lie inside the buffer it was given. */
static void
fuzz_check_frame(const uint8_t *p, const uint8_t *end, const wire_frame_t *f)
{
    if (f->frame_len < WIRE_HDR_LEN || f->frame_len > WIRE_MAX_FRAME
        || f->frame_len > (size_t) (end - p)
        || f->body != p + WIRE_HDR_LEN
        || f->body_end != p + f->frame_len
        || p[4] != WIRE_VERSION || p[6] != 0 || p[7] != 0
        || f->type != p[5])
    {
        abort();
    }
}


/* A decoded string points into the body of its frame, or is empty. */
static void
fuzz_check_str(const wire_frame_t *f, const wire_str_t *s)
{
    if (s->len == 0) {
        return;
    }

    if ((const uint8_t *) s->data < f->body
        || (const uint8_t *) s->data > f->body_end
        || s->len > (size_t) (f->body_end - (const uint8_t *) s->data))
    {
        abort();
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
fuzz_str_eq(const wire_str_t *a, const wire_str_t *b)
{
    return a->len == b->len
           && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
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


/*
 * decode(encode(resp)) must equal resp.  The output buffer is exactly the
 * expected size, so an encoder writing past it is caught by ASan, and one
 * byte less must give WIRE_ENOSPC.
 */
static void
fuzz_roundtrip(uint32_t id, const wire_resp_t *resp)
{
    uint8_t       *out;
    size_t         need;
    wire_frame_t   f;
    wire_resp_t    again;
    int            n;

    need = fuzz_resp_size(resp);

    out = malloc(need);
    if (out == NULL) {
        return;
    }

    n = wire_encode_resp(out, out + need, id, resp);

    if (need > WIRE_MAX_FRAME) {
        /*
         * The encoder always writes ttl and reason code, so an answer
         * that came in near the size limit without them can grow past it.
         */
        if (n != WIRE_EMALFORMED) {
            abort();
        }
        free(out);
        return;
    }

    if (n < 0 || (size_t) n != need) {
        abort();
    }

    if (wire_frame_peek(out, out + need, &f) != WIRE_OK
        || f.frame_len != need || f.id != id || f.type != WIRE_DECIDE_RESP)
    {
        abort();
    }

    if (wire_decode_resp(&f, &again) != WIRE_OK) {
        abort();
    }

    fuzz_check_resp(&f, &again);

    if (!fuzz_resp_eq(resp, &again)) {
        abort();
    }

    if (wire_encode_resp(out, out + need - 1, id, resp) != WIRE_ENOSPC) {
        abort();
    }

    free(out);
}
