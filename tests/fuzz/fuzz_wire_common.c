/*
 * ztgate fuzz targets: the frame loop and round-trip checks shared by the
 * wire codec targets.
 */

#include <stdlib.h>
#include <string.h>

#include "fuzz_wire_common.h"

static void fuzz_check_frame(const uint8_t *p, const uint8_t *end,
    const wire_frame_t *f);


void
fuzz_wire_frames(const uint8_t *data, size_t size,
    fuzz_wire_frame_pt handler)
{
    uint8_t        *buf;
    const uint8_t  *p, *end;
    wire_frame_t    f;
    int             rc;

    /* an exactly sized heap copy: ASan flags any read past the end */
    buf = malloc(size ? size : 1);
    if (buf == NULL) {
        return;
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

        handler(&f);

        /* keep going after a bad body: the framing is still known */
        p += f.frame_len;
    }

    free(buf);
}


void
fuzz_wire_decode_failed(int rc)
{
    if (rc != WIRE_ETYPE && rc != WIRE_EMALFORMED
        && rc != WIRE_EFIELD && rc != WIRE_EMISSING)
    {
        abort();
    }
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


void
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


int
fuzz_str_eq(const wire_str_t *a, const wire_str_t *b)
{
    return a->len == b->len
           && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}


/*
 * The output buffer is exactly the expected size, so an encoder writing
 * past it is caught by ASan.
 */
void
fuzz_wire_roundtrip(uint32_t id, unsigned type, const void *msg,
    size_t need, fuzz_wire_encode_pt encode, fuzz_wire_redecode_pt redecode)
{
    uint8_t       *out;
    wire_frame_t   f;
    int            n;

    out = malloc(need);
    if (out == NULL) {
        return;
    }

    n = encode(out, out + need, id, msg);

    if (need > WIRE_MAX_FRAME) {
        /*
         * The encoders always write some fields the decoders take as
         * optional (the request's verify result, the answer's ttl and
         * reason code), so a message that came in near the size limit
         * without them can grow past it.
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
        || f.frame_len != need || f.id != id || f.type != type)
    {
        abort();
    }

    redecode(&f, msg);

    if (encode(out, out + need - 1, id, msg) != WIRE_ENOSPC) {
        abort();
    }

    free(out);
}
