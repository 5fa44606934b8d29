/*
 * Identity library helpers: error messages, strict base64, hex, claim
 * syntax.  See identity.h and id_internal.h.
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "id_internal.h"


static int id_b64_value(int c, int alphabet);


static const char  id_b64_std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char  id_b64_url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";


void
id_seterr(id_err_t *err, const char *fmt, ...)
{
    va_list  ap;

    if (err == NULL) {
        return;
    }

    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}


void
id_ssl_err(id_err_t *err, const char *what)
{
    unsigned long  e;
    char           buf[160];

    e = ERR_peek_last_error();

    if (e == 0) {
        id_seterr(err, "%s failed", what);

    } else {
        ERR_error_string_n(e, buf, sizeof(buf));
        id_seterr(err, "%s failed: %s", what, buf);
    }

    /* Leave nothing behind for the next, unrelated OpenSSL caller. */
    ERR_clear_error();
}


int
id_b64_encode(const uint8_t *in, size_t len, int alphabet, char *out,
    size_t size)
{
    size_t       i, n, need;
    uint32_t     v;
    const char  *a;

    a = (alphabet == ID_B64_URL) ? id_b64_url : id_b64_std;
    need = (len / 3) * 4 + ((len % 3) ? (len % 3) + 1 : 0);

    if (out == NULL || size <= need) {
        return -1;
    }

    n = 0;

    for (i = 0; i + 2 < len; i += 3) {
        v = ((uint32_t) in[i] << 16) | ((uint32_t) in[i + 1] << 8)
            | in[i + 2];
        out[n++] = a[(v >> 18) & 63];
        out[n++] = a[(v >> 12) & 63];
        out[n++] = a[(v >> 6) & 63];
        out[n++] = a[v & 63];
    }

    if (len - i == 1) {
        v = (uint32_t) in[i] << 16;
        out[n++] = a[(v >> 18) & 63];
        out[n++] = a[(v >> 12) & 63];

    } else if (len - i == 2) {
        v = ((uint32_t) in[i] << 16) | ((uint32_t) in[i + 1] << 8);
        out[n++] = a[(v >> 18) & 63];
        out[n++] = a[(v >> 12) & 63];
        out[n++] = a[(v >> 6) & 63];
    }

    out[n] = '\0';

    return (int) n;
}


static int
id_b64_value(int c, int alphabet)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }

    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }

    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }

    if (alphabet == ID_B64_URL) {
        if (c == '-') {
            return 62;
        }

        if (c == '_') {
            return 63;
        }

    } else {
        if (c == '+') {
            return 62;
        }

        if (c == '/') {
            return 63;
        }
    }

    return -1;
}


int
id_b64_decode(const char *in, size_t len, int alphabet, uint8_t *out,
    size_t size)
{
    size_t    i, n, need;
    uint32_t  v;
    int       d, k;

    if (in == NULL || len % 4 == 1) {
        return -1;
    }

    need = (len / 4) * 3 + ((len % 4) ? (len % 4) - 1 : 0);

    if (need > size || need > (size_t) 0x7fffffff) {
        return -1;
    }

    n = 0;
    v = 0;
    k = 0;

    for (i = 0; i < len; i++) {
        d = id_b64_value((unsigned char) in[i], alphabet);

        if (d < 0) {
            return -1;
        }

        v = (v << 6) | (uint32_t) d;

        if (++k == 4) {
            out[n++] = (uint8_t) (v >> 16);
            out[n++] = (uint8_t) (v >> 8);
            out[n++] = (uint8_t) v;
            v = 0;
            k = 0;
        }
    }

    if (k == 2) {
        if (v & 0xf) {
            return -1;
        }

        out[n++] = (uint8_t) (v >> 4);

    } else if (k == 3) {
        if (v & 0x3) {
            return -1;
        }

        out[n++] = (uint8_t) (v >> 10);
        out[n++] = (uint8_t) (v >> 2);
    }

    return (int) n;
}


void
id_hex(const uint8_t *in, size_t len, char *out)
{
    static const char  hex[] = "0123456789abcdef";
    size_t             i;

    for (i = 0; i < len; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 0xf];
    }

    out[2 * len] = '\0';
}


int
id_sid_ok(const char *sid)
{
    size_t  i;

    if (sid == NULL) {
        return 0;
    }

    for (i = 0; i < ID_SID_LEN; i++) {
        if (!((sid[i] >= '0' && sid[i] <= '9')
              || (sid[i] >= 'a' && sid[i] <= 'f')))
        {
            return 0;
        }
    }

    return sid[ID_SID_LEN] == '\0';
}


/* A user name as it may appear in a token: 1..63 printable ASCII. */
int
id_sub_ok(const char *sub)
{
    size_t  i;

    if (sub == NULL) {
        return 0;
    }

    for (i = 0; i < ID_NAME_MAX && sub[i] != '\0'; i++) {
        if ((unsigned char) sub[i] < 0x20 || (unsigned char) sub[i] > 0x7e) {
            return 0;
        }
    }

    return i > 0 && i < ID_NAME_MAX;
}


const char *
id_alg_name(id_alg_t alg)
{
    switch (alg) {
    case ID_ALG_HS256:
        return "HS256";
    case ID_ALG_ES256:
        return "ES256";
    }

    return "unknown";
}
