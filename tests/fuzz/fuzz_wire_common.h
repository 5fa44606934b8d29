/*
 * ztgate fuzz targets: the harness the wire codec targets share.  Each
 * target supplies how to decode, check and re-encode its own message; the
 * frame loop and the round-trip checks live here.
 */

#ifndef ZT_FUZZ_WIRE_COMMON_H
#define ZT_FUZZ_WIRE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "zt_wire.h"

#define FUZZ_FIELD_HDR  3               /* u8 tag + u16 len */

/* Decodes and checks one frame whose framing is already known good. */
typedef void (*fuzz_wire_frame_pt)(const wire_frame_t *f);

/* Encodes msg as a frame with the given id; a wire_encode_*() wrapper. */
typedef int (*fuzz_wire_encode_pt)(uint8_t *p, uint8_t *end, uint32_t id,
    const void *msg);

/*
 * Decodes f, checks the result and compares it to msg; calls abort() on
 * any difference.
 */
typedef void (*fuzz_wire_redecode_pt)(const wire_frame_t *f,
    const void *msg);

/*
 * Reads frames out of data as the receivers do (peek, decode, consume,
 * repeat) and hands each well-framed one to handler.  The input is copied
 * to an exactly sized heap buffer first.  Calls abort() on a broken framing
 * invariant.
 */
void fuzz_wire_frames(const uint8_t *data, size_t size,
    fuzz_wire_frame_pt handler);

/* Calls abort() unless rc is an error a decoder may return for bad input. */
void fuzz_wire_decode_failed(int rc);

/* Calls abort() unless a decoded string lies in f's body or is empty. */
void fuzz_check_str(const wire_frame_t *f, const wire_str_t *s);

/* Returns 1 when both strings hold the same bytes, else 0. */
int fuzz_str_eq(const wire_str_t *a, const wire_str_t *b);

/*
 * decode(encode(msg)) must equal msg: encodes msg into a buffer of exactly
 * need bytes (the size computed independently by the target), checks the
 * frame header against type, passes the frame to redecode, and checks that
 * one byte less gives WIRE_ENOSPC.  Calls abort() on any violation.
 */
void fuzz_wire_roundtrip(uint32_t id, unsigned type, const void *msg,
    size_t need, fuzz_wire_encode_pt encode, fuzz_wire_redecode_pt redecode);

#endif /* ZT_FUZZ_WIRE_COMMON_H */
