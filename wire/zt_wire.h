/*
 * ztgate decision protocol: the frames exchanged between the nginx module
 * (the policy enforcement point) and trustd (the policy decision point).
 *
 * This header and zt_wire.c are shared by both sides and depend on
 * nothing but libc; the codec never allocates.  Decoded strings point
 * into the caller's frame buffer and are valid as long as it is.
 *
 * Frame layout, all integers big-endian:
 *
 *     u32  length     bytes that follow this field (8 + body), so a whole
 *                     frame is length + 4 bytes, at most WIRE_MAX_FRAME
 *     u8   version    WIRE_VERSION; any other value closes the connection
 *     u8   type       enum wire_type
 *     u16  flags      0 (reserved; non-zero is rejected)
 *     u32  id         chosen by the module; the answer carries the same id,
 *                     so one connection carries many requests in flight
 *                     and answers may come back in any order
 *     body            fields: u8 tag, u16 len, len bytes of value
 *
 * A field tag that the receiver does not know, a field that appears twice
 * (except WIRE_F_HEADER), a length that runs past the frame, or a missing
 * required field is a protocol error: the receiver logs it and closes the
 * connection.  Changing the format means bumping WIRE_VERSION.
 */

#ifndef ZT_WIRE_H
#define ZT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_VERSION        1
#define WIRE_HDR_LEN        12          /* length + version..id */
#define WIRE_MAX_FRAME      65536       /* whole frame, header included */
#define WIRE_MAX_HEADERS    16          /* upstream headers per answer */
#define WIRE_FP_LEN         32          /* SHA-256 of the certificate DER */

enum wire_type {
    WIRE_DECIDE_REQ  = 1,
    WIRE_DECIDE_RESP = 2
};

/* Field tags.  Request fields are below 32, answer fields from 32 on. */
enum wire_field {
    WIRE_F_METHOD       = 1,    /* HTTP method, e.g. "GET" (required) */
    WIRE_F_SCHEME       = 2,    /* "https" or "http" (required) */
    WIRE_F_HOST         = 3,    /* host the request is for (required) */
    WIRE_F_PATH         = 4,    /* normalized path (required) */
    WIRE_F_QUERY        = 5,    /* query string without '?' */
    WIRE_F_CLIENT_ADDR  = 6,    /* client address as text (required) */
    WIRE_F_CERT_FP      = 7,    /* 32 bytes: SHA-256 of client cert DER */
    WIRE_F_CERT_VERIFY  = 8,    /* 1 byte: enum wire_cert_verify */
    WIRE_F_TOKEN        = 9,    /* session token, if any */
    WIRE_F_USER_AGENT   = 10,

    WIRE_F_DECISION     = 32,   /* 1 byte: enum wire_decision (required) */
    WIRE_F_STATUS       = 33,   /* 2 bytes: HTTP status (required) */
    WIRE_F_TTL          = 34,   /* 4 bytes: cache lifetime in ms, 0 = never */
    WIRE_F_HEADER       = 35,   /* u16 name length, name, value */
    WIRE_F_REDIRECT     = 36,   /* redirect target (login, step-up) */
    WIRE_F_REASON_CODE  = 37,   /* 2 bytes: enum wire_reason */
    WIRE_F_REASON       = 38    /* reason text, for logs and deny pages */
};

enum wire_cert_verify {
    WIRE_CERT_NONE    = 0,      /* no client certificate presented */
    WIRE_CERT_SUCCESS = 1,      /* nginx verified it against its CA */
    WIRE_CERT_FAILED  = 2       /* presented but not verified */
};

enum wire_decision {
    WIRE_ALLOW   = 1,
    WIRE_DENY    = 2,
    WIRE_LOGIN   = 3,           /* redirect to the login portal */
    WIRE_STEP_UP = 4            /* redirect to prove a second factor again */
};

/* Why a decision was made; the text travels in WIRE_F_REASON. */
enum wire_reason {
    WIRE_R_NONE                 = 0,
    WIRE_R_DEVICE_OK            = 1,
    WIRE_R_NO_CERT              = 2,
    WIRE_R_CERT_UNVERIFIED      = 3,
    WIRE_R_DEVICE_UNKNOWN       = 4,
    WIRE_R_DEVICE_REVOKED       = 5,
    WIRE_R_DEVICE_QUARANTINED   = 6,
    WIRE_R_DEVICE_EXPIRED       = 7,
    WIRE_R_INTERNAL             = 8,    /* trustd could not decide */
    WIRE_R_POLICY               = 9,    /* a policy rule decided */
    WIRE_R_NO_RULE              = 10    /* default deny */
};

/* Results.  WIRE_OK and WIRE_AGAIN are not errors. */
enum wire_rc {
    WIRE_OK         = 0,
    WIRE_AGAIN      = 1,        /* peek: the frame is not complete yet */
    WIRE_ETOOBIG    = -1,       /* frame longer than WIRE_MAX_FRAME */
    WIRE_EVERSION   = -2,       /* unknown protocol version */
    WIRE_ETYPE      = -3,       /* unknown or unexpected frame type */
    WIRE_EMALFORMED = -4,       /* bad lengths, flags or field values */
    WIRE_EFIELD     = -5,       /* unknown or duplicated field */
    WIRE_EMISSING   = -6,       /* required field absent */
    WIRE_ENOSPC     = -7        /* encode: output buffer too small */
};

typedef struct {
    const char  *data;          /* not NUL-terminated */
    size_t       len;
} wire_str_t;

/* A frame located in a buffer by wire_frame_peek(). */
typedef struct {
    uint8_t         type;
    uint32_t        id;
    const uint8_t  *body;
    const uint8_t  *body_end;
    size_t          frame_len;  /* bytes to consume for this frame */
} wire_frame_t;

typedef struct {
    wire_str_t  method;
    wire_str_t  scheme;
    wire_str_t  host;
    wire_str_t  path;
    wire_str_t  query;
    wire_str_t  client_addr;
    wire_str_t  token;
    wire_str_t  user_agent;
    uint8_t     cert_fp[WIRE_FP_LEN];
    uint8_t     has_cert_fp;
    uint8_t     cert_verify;    /* enum wire_cert_verify */
} wire_req_t;

typedef struct {
    wire_str_t  name;
    wire_str_t  value;
} wire_hdr_t;

typedef struct {
    uint8_t     decision;       /* enum wire_decision */
    uint16_t    status;
    uint32_t    ttl_ms;
    uint16_t    reason_code;    /* enum wire_reason */
    wire_str_t  reason;
    wire_str_t  redirect;
    unsigned    nheaders;
    wire_hdr_t  headers[WIRE_MAX_HEADERS];
} wire_resp_t;

/*
 * Locates the first frame in [p, end).  Returns WIRE_OK and fills *f when a
 * whole frame is there, WIRE_AGAIN when more bytes are needed, or a
 * negative wire_rc when the bytes can never form a valid frame (the length
 * is checked against WIRE_MAX_FRAME before anything else, so a receiver
 * never waits for or buffers an oversized frame).
 */
int wire_frame_peek(const uint8_t *p, const uint8_t *end, wire_frame_t *f);

/*
 * Decode the body of a frame found by wire_frame_peek().  Returns WIRE_OK
 * or a negative wire_rc.  Strings in *req / *resp point into the frame.
 * A decoded answer's header names are HTTP tokens and header values,
 * reason and redirect hold no CR, LF or NUL, so they are safe to emit.
 */
int wire_decode_req(const wire_frame_t *f, wire_req_t *req);
int wire_decode_resp(const wire_frame_t *f, wire_resp_t *resp);

/*
 * Encode a whole frame into [p, end).  Returns the number of bytes
 * written, or WIRE_ENOSPC if it does not fit (nothing useful is written),
 * or WIRE_EMALFORMED if a field is too long for its length prefix, the
 * frame would exceed WIRE_MAX_FRAME, or an answer field holds bytes that
 * the decoder would refuse.
 */
int wire_encode_req(uint8_t *p, uint8_t *end, uint32_t id,
    const wire_req_t *req);
int wire_encode_resp(uint8_t *p, uint8_t *end, uint32_t id,
    const wire_resp_t *resp);

/* Static strings for logs. */
const char *wire_strerror(int rc);
const char *wire_decision_name(unsigned decision);

#endif /* ZT_WIRE_H */
