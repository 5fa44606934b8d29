/*
 * ztgate fuzz targets: the libFuzzer entry point every target implements.
 * The same objects link either with libFuzzer (make fuzz) or with
 * replay.c (make fuzz-replay), which runs a saved corpus without it.
 */

#ifndef ZT_FUZZ_H
#define ZT_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/*
 * Runs one input.  Returns 0; a violated invariant calls abort() so that
 * both libFuzzer and the replay driver report it as a crash.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif /* ZT_FUZZ_H */
