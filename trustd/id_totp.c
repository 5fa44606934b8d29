/*
 * TOTP (RFC 6238) through liboath, the otpauth:// URI and its QR code
 * through libqrencode.  See identity.h for the contract.
 */

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <liboath/oath.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <qrencode.h>

#include "id_internal.h"


#define ID_TOTP_WINDOW_MAX  10      /* steps each way: 5 min at 30 s */
#define ID_TOTP_PERIOD_MAX  300
#define ID_QR_QUIET         2       /* modules; terminals are small */
#define ID_QR_SVG_QUIET     4       /* modules, as ISO/IEC 18004 asks */
#define ID_QR_SVG_SCALE_MAX 16


static void id_oath_init_once(void);
static int id_oath_ready(id_err_t *err);
static int id_totp_check(const id_totp_t *t, id_err_t *err);
static int id_totp_flags(id_totp_algo_t algo);
static const char *id_totp_algo_name(id_totp_algo_t algo);
static int id_pct_encode(const char *in, char *out, size_t size);
static int id_qr_dark(const QRcode *qr, int x, int y);
static int id_svg_add(char *out, size_t size, size_t *n, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));


static pthread_once_t  id_oath_once = PTHREAD_ONCE_INIT;
static int             id_oath_rc = OATH_OK;


static void
id_oath_init_once(void)
{
    id_oath_rc = oath_init();
}


static int
id_oath_ready(id_err_t *err)
{
    if (pthread_once(&id_oath_once, id_oath_init_once) != 0) {
        id_seterr(err, "pthread_once failed");
        return -1;
    }

    if (id_oath_rc != OATH_OK) {
        id_seterr(err, "oath_init: %s", oath_strerror(id_oath_rc));
        return -1;
    }

    return 0;
}


static int
id_totp_check(const id_totp_t *t, id_err_t *err)
{
    if (t == NULL) {
        id_seterr(err, "TOTP: NULL parameters");
        return -1;
    }

    if (t->secret_len == 0 || t->secret_len > ID_SECRET_MAX) {
        id_seterr(err, "TOTP: secret length %zu out of range",
                  t->secret_len);
        return -1;
    }

    if (t->algo != ID_TOTP_SHA1 && t->algo != ID_TOTP_SHA256
        && t->algo != ID_TOTP_SHA512)
    {
        id_seterr(err, "TOTP: unknown algorithm %d", (int) t->algo);
        return -1;
    }

    if (t->digits < 6 || t->digits > 8) {
        id_seterr(err, "TOTP: %u digits (6 to 8 allowed)", t->digits);
        return -1;
    }

    if (t->period == 0 || t->period > ID_TOTP_PERIOD_MAX) {
        id_seterr(err, "TOTP: period %u s out of range", t->period);
        return -1;
    }

    return 0;
}


static int
id_totp_flags(id_totp_algo_t algo)
{
    switch (algo) {
    case ID_TOTP_SHA256:
        return OATH_TOTP_HMAC_SHA256;
    case ID_TOTP_SHA512:
        return OATH_TOTP_HMAC_SHA512;
    default:
        return 0;
    }
}


static const char *
id_totp_algo_name(id_totp_algo_t algo)
{
    switch (algo) {
    case ID_TOTP_SHA256:
        return "SHA256";
    case ID_TOTP_SHA512:
        return "SHA512";
    default:
        return "SHA1";
    }
}


int
id_totp_new(id_totp_t *t, id_totp_algo_t algo, unsigned digits,
    id_err_t *err)
{
    size_t  len;

    if (t == NULL) {
        id_seterr(err, "id_totp_new: NULL argument");
        return -1;
    }

    switch (algo) {
    case ID_TOTP_SHA1:
        len = 20;
        break;
    case ID_TOTP_SHA256:
        len = 32;
        break;
    case ID_TOTP_SHA512:
        len = 64;
        break;
    default:
        id_seterr(err, "TOTP: unknown algorithm %d", (int) algo);
        return -1;
    }

    if (digits != 6 && digits != 8) {
        id_seterr(err, "TOTP: %u digits (6 or 8 allowed)", digits);
        return -1;
    }

    memset(t, 0, sizeof(*t));

    if (RAND_bytes(t->secret, (int) len) != 1) {
        id_ssl_err(err, "RAND_bytes");
        return -1;
    }

    t->secret_len = len;
    t->algo = algo;
    t->digits = digits;
    t->period = OATH_TOTP_DEFAULT_TIME_STEP_SIZE;

    return 0;
}


/* RFC 3986 unreserved characters stay, everything else is %XX. */
static int
id_pct_encode(const char *in, char *out, size_t size)
{
    static const char  hex[] = "0123456789ABCDEF";
    size_t             n;
    unsigned char      c;

    n = 0;

    for ( /* void */ ; *in != '\0'; in++) {
        c = (unsigned char) *in;

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
            || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
            || c == '~')
        {
            if (n + 1 >= size) {
                return -1;
            }

            out[n++] = (char) c;

        } else {
            if (n + 3 >= size) {
                return -1;
            }

            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 0xf];
        }
    }

    out[n] = '\0';

    return 0;
}


int
id_totp_uri(const id_totp_t *t, const char *issuer, const char *account,
    char *out, size_t size, id_err_t *err)
{
    int      rc, n, orc;
    char    *b32, *eq;
    char     iss[3 * ID_NAME_MAX + 1], acc[3 * ID_NAME_MAX + 1];
    size_t   b32len;

    rc = -1;
    b32 = NULL;

    if (id_totp_check(t, err) != 0 || id_oath_ready(err) != 0) {
        return -1;
    }

    if (issuer == NULL || account == NULL || out == NULL
        || issuer[0] == '\0' || account[0] == '\0')
    {
        id_seterr(err, "TOTP URI: issuer and account are required");
        return -1;
    }

    if (id_pct_encode(issuer, iss, sizeof(iss)) != 0
        || id_pct_encode(account, acc, sizeof(acc)) != 0)
    {
        id_seterr(err, "TOTP URI: issuer or account too long");
        return -1;
    }

    orc = oath_base32_encode((const char *) t->secret, t->secret_len, &b32,
                             &b32len);
    if (orc != OATH_OK) {
        id_seterr(err, "oath_base32_encode: %s", oath_strerror(orc));
        goto done;
    }

    /* Authenticator apps expect the secret without '=' padding. */
    eq = strchr(b32, '=');
    if (eq != NULL) {
        *eq = '\0';
    }

    n = snprintf(out, size,
                 "otpauth://totp/%s:%s?secret=%s&issuer=%s&algorithm=%s"
                 "&digits=%u&period=%u",
                 iss, acc, b32, iss, id_totp_algo_name(t->algo), t->digits,
                 t->period);

    if (n < 0 || (size_t) n >= size) {
        id_seterr(err, "TOTP URI needs %d bytes, buffer has %zu", n + 1,
                  size);
        if (size > 0) {
            OPENSSL_cleanse(out, size);
            out[0] = '\0';
        }
        goto done;
    }

    rc = 0;

done:

    if (b32 != NULL) {
        OPENSSL_cleanse(b32, b32len);
        free(b32);
    }

    return rc;
}


/* Outside the symbol (quiet zone and beyond) is light. */
static int
id_qr_dark(const QRcode *qr, int x, int y)
{
    if (x < 0 || y < 0 || x >= qr->width || y >= qr->width) {
        return 0;
    }

    return qr->data[y * qr->width + x] & 1;
}


/*
 * Two module rows per text line.  As qrencode -t UTF8 does, light modules
 * are drawn and dark ones left blank, which reads correctly on the usual
 * light-on-dark terminal; the quiet zone is therefore drawn too.
 */
int
id_totp_qr(const char *uri, char *out, size_t size, id_err_t *err)
{
    int          rc, x, y, lo, hi, top, bot;
    size_t       need, n;
    QRcode      *qr;
    const char  *glyph;

    rc = -1;
    qr = NULL;

    if (uri == NULL || out == NULL || uri[0] == '\0') {
        id_seterr(err, "id_totp_qr: NULL or empty argument");
        return -1;
    }

    qr = QRcode_encodeString(uri, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (qr == NULL) {
        id_seterr(err, "QRcode_encodeString failed (URI too long?)");
        goto done;
    }

    lo = -ID_QR_QUIET;
    hi = qr->width + ID_QR_QUIET;

    /* Measure first, so a short buffer fails cleanly. */
    need = 1;

    for (y = lo; y < hi; y += 2) {
        for (x = lo; x < hi; x++) {
            top = !id_qr_dark(qr, x, y);
            bot = (y + 1 < hi) ? !id_qr_dark(qr, x, y + 1) : 0;
            need += (top || bot) ? 3 : 1;
        }

        need++;
    }

    if (need > size) {
        id_seterr(err, "QR code needs %zu bytes, buffer has %zu", need,
                  size);
        goto done;
    }

    n = 0;

    for (y = lo; y < hi; y += 2) {
        for (x = lo; x < hi; x++) {
            top = !id_qr_dark(qr, x, y);
            bot = (y + 1 < hi) ? !id_qr_dark(qr, x, y + 1) : 0;

            if (top && bot) {
                glyph = "\xe2\x96\x88";         /* U+2588 full block */
            } else if (top) {
                glyph = "\xe2\x96\x80";         /* U+2580 upper half */
            } else if (bot) {
                glyph = "\xe2\x96\x84";         /* U+2584 lower half */
            } else {
                glyph = " ";
            }

            memcpy(out + n, glyph, strlen(glyph));
            n += strlen(glyph);
        }

        out[n++] = '\n';
    }

    out[n] = '\0';

    rc = 0;

done:

    QRcode_free(qr);

    return rc;
}


/* Append to out at *n; -1 (and *n unchanged) when it does not fit. */
static int
id_svg_add(char *out, size_t size, size_t *n, const char *fmt, ...)
{
    va_list  ap;
    int      len;

    va_start(ap, fmt);
    len = vsnprintf(out + *n, size - *n, fmt, ap);
    va_end(ap);

    if (len < 0 || (size_t) len >= size - *n) {
        out[*n] = '\0';
        return -1;
    }

    *n += (size_t) len;

    return 0;
}


/*
 * One path for all dark modules, a run of them in a row being one
 * rectangle, keeps the element small (a few kilobytes for an otpauth
 * URI) and free of any script or style.
 */
int
id_totp_qr_svg(const char *uri, unsigned scale, char *out, size_t size,
    id_err_t *err)
{
    int       rc, x, y, run, dim;
    size_t    n;
    QRcode   *qr;

    rc = -1;
    qr = NULL;

    if (uri == NULL || out == NULL || uri[0] == '\0' || size == 0) {
        id_seterr(err, "id_totp_qr_svg: NULL or empty argument");
        return -1;
    }

    if (scale == 0 || scale > ID_QR_SVG_SCALE_MAX) {
        id_seterr(err, "QR code: scale %u out of range (1 to %d)", scale,
                  ID_QR_SVG_SCALE_MAX);
        return -1;
    }

    out[0] = '\0';

    qr = QRcode_encodeString(uri, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (qr == NULL) {
        id_seterr(err, "QRcode_encodeString failed (URI too long?)");
        goto done;
    }

    dim = qr->width + 2 * ID_QR_SVG_QUIET;
    n = 0;

    if (id_svg_add(out, size, &n, "<svg xmlns=\"http://www.w3.org/2000/svg\" "
                   "viewBox=\"0 0 %d %d\" width=\"%u\" height=\"%u\" "
                   "shape-rendering=\"crispEdges\">"
                   "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>"
                   "<path fill=\"#000\" d=\"", dim, dim, dim * scale,
                   dim * scale, dim, dim)
        != 0)
    {
        goto small;
    }

    for (y = 0; y < qr->width; y++) {
        for (x = 0; x < qr->width; x += run) {
            run = 1;

            if (!id_qr_dark(qr, x, y)) {
                continue;
            }

            while (x + run < qr->width && id_qr_dark(qr, x + run, y)) {
                run++;
            }

            if (id_svg_add(out, size, &n, "M%d %dh%dv1h-%dz",
                           x + ID_QR_SVG_QUIET, y + ID_QR_SVG_QUIET, run,
                           run)
                != 0)
            {
                goto small;
            }
        }
    }

    if (id_svg_add(out, size, &n, "\"/></svg>") != 0) {
        goto small;
    }

    rc = 0;
    goto done;

small:

    id_seterr(err, "QR code: the SVG does not fit in %zu bytes", size);
    out[0] = '\0';

done:

    QRcode_free(qr);

    return rc;
}


int
id_totp_secret_text(const id_totp_t *t, char *out, size_t size,
    id_err_t *err)
{
    int      rc, orc;
    char    *b32;
    size_t   b32len, i, n;

    rc = -1;
    b32 = NULL;

    if (id_totp_check(t, err) != 0 || id_oath_ready(err) != 0) {
        return -1;
    }

    if (out == NULL || size == 0) {
        id_seterr(err, "id_totp_secret_text: NULL argument");
        return -1;
    }

    orc = oath_base32_encode((const char *) t->secret, t->secret_len, &b32,
                             &b32len);
    if (orc != OATH_OK) {
        id_seterr(err, "oath_base32_encode: %s", oath_strerror(orc));
        goto done;
    }

    n = 0;

    for (i = 0; i < b32len && b32[i] != '=' && b32[i] != '\0'; i++) {
        if (i > 0 && i % 4 == 0) {
            if (n + 1 >= size) {
                goto small;
            }
            out[n++] = ' ';
        }

        if (n + 1 >= size) {
            goto small;
        }

        out[n++] = b32[i];
    }

    out[n] = '\0';
    rc = 0;
    goto done;

small:

    id_seterr(err, "TOTP secret text needs more than %zu bytes", size);
    OPENSSL_cleanse(out, size);
    out[0] = '\0';

done:

    if (b32 != NULL) {
        OPENSSL_cleanse(b32, b32len);
        free(b32);
    }

    return rc;
}


int
id_totp_code(const id_totp_t *t, int64_t now, char *out, size_t size,
    id_err_t *err)
{
    int  orc;

    if (id_totp_check(t, err) != 0 || id_oath_ready(err) != 0) {
        return -1;
    }

    if (out == NULL || size < t->digits + 1) {
        id_seterr(err, "TOTP code needs %u bytes", t->digits + 1);
        return -1;
    }

    if (now < 0) {
        id_seterr(err, "TOTP: negative time");
        return -1;
    }

    orc = oath_totp_generate2((const char *) t->secret, t->secret_len,
                              (time_t) now, t->period, 0, t->digits,
                              id_totp_flags(t->algo), out);
    if (orc != OATH_OK) {
        id_seterr(err, "oath_totp_generate2: %s", oath_strerror(orc));
        return -1;
    }

    return 0;
}


int
id_totp_verify(const id_totp_t *t, const char *code, int64_t now,
    unsigned window, uint64_t last_counter, uint64_t *counter, id_err_t *err)
{
    int       orc, pos;
    size_t    i, len;
    uint64_t  matched;

    if (id_totp_check(t, err) != 0 || id_oath_ready(err) != 0) {
        return -1;
    }

    if (counter == NULL) {
        id_seterr(err, "id_totp_verify: NULL counter");
        return -1;
    }

    if (now < 0) {
        id_seterr(err, "TOTP: negative time");
        return -1;
    }

    if (window > ID_TOTP_WINDOW_MAX) {
        id_seterr(err, "TOTP: window %u too large (at most %d)", window,
                  ID_TOTP_WINDOW_MAX);
        return -1;
    }

    /* liboath would accept other lengths; the code is what we asked for. */
    len = (code == NULL) ? 0 : strnlen(code, t->digits + 1);

    if (len != t->digits) {
        id_seterr(err, "TOTP code must be %u digits", t->digits);
        return ID_TOTP_BAD;
    }

    for (i = 0; i < len; i++) {
        if (code[i] < '0' || code[i] > '9') {
            id_seterr(err, "TOTP code must be %u digits", t->digits);
            return ID_TOTP_BAD;
        }
    }

    pos = 0;
    matched = 0;

    /* >= 0 is the window position of the match; < 0 an OATH_* code. */
    orc = oath_totp_validate4((const char *) t->secret, t->secret_len,
                              (time_t) now, t->period, 0, window, &pos,
                              &matched, id_totp_flags(t->algo), code);

    if (orc == OATH_INVALID_OTP) {
        id_seterr(err, "wrong TOTP code");
        return ID_TOTP_BAD;
    }

    if (orc < 0) {
        id_seterr(err, "oath_totp_validate4: %s", oath_strerror(orc));
        return -1;
    }

    if (matched <= last_counter) {
        id_seterr(err, "TOTP code already used");
        return ID_TOTP_REPLAY;
    }

    *counter = matched;

    return ID_TOTP_OK;
}
