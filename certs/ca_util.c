/*
 * ztgate device CA: error messages, files written atomically, private
 * key files, the CA lock, serial numbers and times.
 *
 * Files other than keys are replaced with a temporary file, fsync() and
 * rename(), so a crash leaves either the old or the new version.  Private
 * keys, and PKCS#12 files holding one, are never replaced: they are
 * created with O_EXCL, mode 0600 under a umask of 077 (as acme-client's
 * keyproc.c does) and removed again if writing them fails.
 */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "certs/ca_local.h"

#define CA_PASS_MAX         1023        /* PEM_BUFSIZE - 1 */

typedef struct {
    const char  *pass;
    int          asked;
} ca_pass_t;

static void ca_err_vset(ca_err_t *err, const char *suffix, const char *fmt,
    va_list ap);
static int ca_write_all(int fd, const char *data, size_t len);
static int ca_write_close(int fd, const char *name, const char *data,
    size_t len, ca_err_t *err);
static void ca_fsync_dir(const char *path);
static int ca_pass_cb(char *buf, int size, int rwflag, void *u);


static void
ca_err_vset(ca_err_t *err, const char *suffix, const char *fmt, va_list ap)
{
    int  n;

    if (err == NULL) {
        return;
    }

    n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    if (n < 0) {
        err->msg[0] = '\0';
        n = 0;
    }

    if (suffix != NULL && (size_t) n < sizeof(err->msg) - 1) {
        snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", suffix);
    }
}


void
ca_err_set(ca_err_t *err, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    ca_err_vset(err, NULL, fmt, ap);
    va_end(ap);
}


/*
 * The first error on the OpenSSL queue is the cause; the rest only say
 * which callers passed it up, so they are dropped.
 */
void
ca_err_ssl(ca_err_t *err, const char *fmt, ...)
{
    char           buf[160];
    unsigned long  e;
    va_list        ap;

    e = ERR_get_error();
    ERR_clear_error();

    if (e != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
    }

    va_start(ap, fmt);
    ca_err_vset(err, e != 0 ? buf : NULL, fmt, ap);
    va_end(ap);
}


void
ca_err_sys(ca_err_t *err, const char *fmt, ...)
{
    int      saved;
    va_list  ap;

    saved = errno;

    va_start(ap, fmt);
    ca_err_vset(err, strerror(saved), fmt, ap);
    va_end(ap);

    errno = saved;
}


int
ca_path(char *buf, size_t size, const char *dir, const char *name,
    ca_err_t *err)
{
    int  n;

    n = snprintf(buf, size, "%s/%s", dir, name);
    if (n < 0 || (size_t) n >= size) {
        ca_err_set(err, "%s/%s: path too long", dir, name);
        return -1;
    }

    return 0;
}


static int
ca_write_all(int fd, const char *data, size_t len)
{
    ssize_t  n;

    while (len > 0) {
        n = write(fd, data, len);
        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        data += n;
        len -= (size_t) n;
    }

    return 0;
}


/* Make a rename or a new file in the directory of path durable. */
static void
ca_fsync_dir(const char *path)
{
    char        dir[CA_PATH_MAX];
    const char *slash;
    int         fd;

    slash = strrchr(path, '/');
    if (slash == NULL) {
        strcpy(dir, ".");

    } else if (slash == path) {
        strcpy(dir, "/");

    } else {
        if ((size_t) (slash - path) >= sizeof(dir)) {
            return;
        }
        memcpy(dir, path, slash - path);
        dir[slash - path] = '\0';
    }

    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd == -1) {
        return;
    }

    /* Best effort: some file systems refuse fsync on a directory. */
    (void) fsync(fd);
    (void) close(fd);
}


/*
 * Write data to fd, fsync and close it; name is the file in errors.  fd
 * is closed after the call, also on failure.
 */
static int
ca_write_close(int fd, const char *name, const char *data, size_t len,
    ca_err_t *err)
{
    if (ca_write_all(fd, data, len) == -1) {
        ca_err_sys(err, "%s: write failed", name);
        (void) close(fd);
        return -1;
    }

    if (fsync(fd) == -1) {
        ca_err_sys(err, "%s: fsync failed", name);
        (void) close(fd);
        return -1;
    }

    if (close(fd) == -1) {
        ca_err_sys(err, "%s: close failed", name);
        return -1;
    }

    return 0;
}


int
ca_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
    ca_err_t *err)
{
    char  tmp[CA_PATH_MAX];
    int   fd, n, rc;

    rc = -1;
    fd = -1;

    n = snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
    if (n < 0 || (size_t) n >= sizeof(tmp)) {
        ca_err_set(err, "%s: path too long", path);
        return -1;
    }

    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd == -1) {
        ca_err_sys(err, "%s: cannot create temporary file", tmp);
        return -1;
    }

    if (fchmod(fd, mode) == -1) {
        ca_err_sys(err, "%s: chmod failed", tmp);
        goto cleanup;
    }

    n = ca_write_close(fd, tmp, data, len, err);
    fd = -1;
    if (n == -1) {
        goto cleanup;
    }

    if (rename(tmp, path) == -1) {
        ca_err_sys(err, "%s: cannot rename to %s", tmp, path);
        goto cleanup;
    }

    ca_fsync_dir(path);
    rc = 0;

cleanup:

    if (fd != -1) {
        (void) close(fd);
    }

    if (rc != 0) {
        (void) unlink(tmp);
    }

    return rc;
}


int
ca_write_bio_atomic(const char *path, BIO *mem, mode_t mode, ca_err_t *err)
{
    char  *data;
    long   len;

    len = BIO_get_mem_data(mem, &data);
    if (len <= 0) {
        ca_err_set(err, "%s: nothing to write", path);
        return -1;
    }

    return ca_write_atomic(path, data, (size_t) len, mode, err);
}


/*
 * Read a whole regular file of at most max bytes.  On success *data is a
 * NUL-terminated buffer owned by the caller (free()).
 */
int
ca_read_file(const char *path, size_t max, char **data, size_t *len,
    ca_err_t *err)
{
    struct stat  st;
    char        *buf;
    ssize_t      n;
    size_t       off;
    int          fd, rc;

    rc = -1;
    buf = NULL;
    off = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        ca_err_sys(err, "%s: cannot open", path);
        return -1;
    }

    if (fstat(fd, &st) == -1) {
        ca_err_sys(err, "%s: cannot stat", path);
        goto cleanup;
    }

    if (!S_ISREG(st.st_mode)) {
        ca_err_set(err, "%s: not a regular file", path);
        goto cleanup;
    }

    if (st.st_size < 0 || (uint64_t) st.st_size > max) {
        ca_err_set(err, "%s: file too large (limit %zu bytes)", path, max);
        goto cleanup;
    }

    buf = malloc(max + 1);
    if (buf == NULL) {
        ca_err_sys(err, "%s: cannot allocate", path);
        goto cleanup;
    }

    for ( ;; ) {
        n = read(fd, buf + off, max + 1 - off);
        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            ca_err_sys(err, "%s: read failed", path);
            goto cleanup;
        }

        if (n == 0) {
            break;
        }

        off += (size_t) n;
        if (off > max) {
            ca_err_set(err, "%s: file too large (limit %zu bytes)", path,
                       max);
            goto cleanup;
        }
    }

    buf[off] = '\0';
    *data = buf;
    *len = off;
    buf = NULL;
    rc = 0;

cleanup:

    free(buf);
    (void) close(fd);

    return rc;
}


/*
 * Create path with O_EXCL, mode 0600 under a umask of 077, and write data
 * to it: for private keys and PKCS#12 files, which are never replaced.  A
 * file created here is removed again if writing it fails.
 */
int
ca_write_secret(const char *path, const void *data, size_t len,
    ca_err_t *err)
{
    mode_t  mask;
    int     fd;

    mask = umask(077);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
              0600);
    (void) umask(mask);

    if (fd == -1) {
        if (errno == EEXIST) {
            ca_err_set(err, "%s: already exists, refusing to overwrite a "
                       "private key", path);
        } else {
            ca_err_sys(err, "%s: cannot create", path);
        }
        return -1;
    }

    if (ca_write_close(fd, path, data, len, err) == -1) {
        (void) unlink(path);
        return -1;
    }

    ca_fsync_dir(path);

    return 0;
}


/*
 * Write pkey as PEM PKCS#8 to a new file, encrypted with AES-256-CBC when a
 * passphrase is given.  The PEM text is built in a secure-memory BIO so
 * that the key is wiped from the heap when the BIO is freed.
 */
int
ca_key_write(const char *path, EVP_PKEY *pkey, const char *passphrase,
    ca_err_t *err)
{
    BIO               *mem;
    const EVP_CIPHER  *enc;
    char              *data;
    long               len;
    size_t             plen;
    int                rc;

    rc = -1;
    enc = NULL;
    plen = 0;

    mem = BIO_new(BIO_s_secmem());
    if (mem == NULL) {
        ca_err_ssl(err, "%s: cannot allocate a BIO", path);
        return -1;
    }

    if (passphrase != NULL) {
        plen = strlen(passphrase);
        if (plen == 0 || plen > CA_PASS_MAX) {
            ca_err_set(err, "%s: passphrase must be 1 to %d bytes", path,
                       CA_PASS_MAX);
            goto cleanup;
        }
        enc = EVP_aes_256_cbc();
    }

    if (PEM_write_bio_PrivateKey(mem, pkey, enc,
                                 (const unsigned char *) passphrase,
                                 (int) plen, NULL, NULL) != 1)
    {
        ca_err_ssl(err, "%s: cannot encode the private key", path);
        goto cleanup;
    }

    len = BIO_get_mem_data(mem, &data);
    if (len <= 0) {
        ca_err_set(err, "%s: empty private key encoding", path);
        goto cleanup;
    }

    rc = ca_write_secret(path, data, (size_t) len, err);

cleanup:

    BIO_free(mem);

    return rc;
}


/*
 * Never prompt: a library must not read the terminal.  Without a
 * passphrase an encrypted key simply fails to load.
 */
static int
ca_pass_cb(char *buf, int size, int rwflag, void *u)
{
    ca_pass_t  *pw;
    size_t      len;

    (void) rwflag;

    pw = u;
    pw->asked = 1;

    if (pw->pass == NULL || size <= 0) {
        return -1;
    }

    len = strlen(pw->pass);
    if (len > (size_t) size) {
        return -1;
    }

    memcpy(buf, pw->pass, len);

    return (int) len;
}


/* Read a PEM private key; the caller frees the result. */
EVP_PKEY *
ca_key_read(const char *path, const char *passphrase, ca_err_t *err)
{
    BIO        *bio;
    EVP_PKEY   *pkey;
    ca_pass_t   pw;

    pw.pass = passphrase;
    pw.asked = 0;

    bio = BIO_new_file(path, "r");
    if (bio == NULL) {
        ca_err_ssl(err, "%s: cannot open", path);
        return NULL;
    }

    pkey = PEM_read_bio_PrivateKey(bio, NULL, ca_pass_cb, &pw);
    if (pkey == NULL) {
        if (pw.asked && passphrase == NULL) {
            ERR_clear_error();
            ca_err_set(err, "%s: the key is encrypted and no passphrase "
                       "was given", path);

        } else if (pw.asked) {
            ca_err_ssl(err, "%s: cannot decrypt the key (wrong passphrase?)",
                       path);

        } else {
            ca_err_ssl(err, "%s: cannot read the private key", path);
        }
    }

    BIO_free(bio);

    return pkey;
}


/* A new key of the given type; the caller frees it. */
EVP_PKEY *
ca_key_generate(ca_key_type_t type, ca_err_t *err)
{
    EVP_PKEY  *pkey;

    switch (type) {

    case CA_KEY_EC_P256:
        pkey = EVP_EC_gen("P-256");
        break;

    case CA_KEY_RSA_3072:
        pkey = EVP_RSA_gen(3072);
        break;

    default:
        ca_err_set(err, "unknown key type %d", (int) type);
        return NULL;
    }

    if (pkey == NULL) {
        ca_err_ssl(err, "cannot generate a %s key",
                   type == CA_KEY_EC_P256 ? "P-256" : "RSA 3072");
    }

    return pkey;
}


/* Read the first certificate of a PEM file; the caller frees it. */
X509 *
ca_cert_read(const char *path, ca_err_t *err)
{
    BIO   *bio;
    X509  *x;

    bio = BIO_new_file(path, "r");
    if (bio == NULL) {
        ca_err_ssl(err, "%s: cannot open", path);
        return NULL;
    }

    x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (x == NULL) {
        ca_err_ssl(err, "%s: cannot read a PEM certificate", path);
    }

    BIO_free(bio);

    return x;
}


/* Write a certificate as PEM, replacing path atomically (mode 0644). */
int
ca_cert_write(const char *path, X509 *x, ca_err_t *err)
{
    BIO  *mem;
    int   rc;

    rc = -1;

    mem = BIO_new(BIO_s_mem());
    if (mem == NULL) {
        ca_err_ssl(err, "%s: cannot allocate a BIO", path);
        return -1;
    }

    if (PEM_write_bio_X509(mem, x) != 1) {
        ca_err_ssl(err, "%s: cannot encode the certificate", path);
        goto cleanup;
    }

    rc = ca_write_bio_atomic(path, mem, 0644, err);

cleanup:

    BIO_free(mem);

    return rc;
}


/*
 * Serialise everything that reads and rewrites the index, the crlnumber
 * or creates the CA: two ztca runs must not both read the old index and
 * each write back their own version.  Returns the descriptor holding the
 * lock, or -1.
 */
int
ca_lock(const char *dir, ca_err_t *err)
{
    char  path[CA_PATH_MAX];
    int   fd;

    if (ca_path(path, sizeof(path), dir, CA_LOCK_FILE, err) == -1) {
        return -1;
    }

    fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd == -1) {
        ca_err_sys(err, "%s: cannot open", path);
        return -1;
    }

    while (flock(fd, LOCK_EX) == -1) {
        if (errno != EINTR) {
            ca_err_sys(err, "%s: cannot lock", path);
            (void) close(fd);
            return -1;
        }
    }

    return fd;
}


void
ca_unlock(int fd)
{
    if (fd != -1) {
        (void) close(fd);
    }
}


/*
 * The one spelling of a serial number used in the index, in ca_cert_info_t
 * and on the command line: upper-case hex without leading zeros.  Accepts
 * an optional 0x prefix and the colons of "openssl x509 -text".
 */
int
ca_serial_normalize(const char *in, char *out, size_t size)
{
    size_t  n;
    int     digits;

    if (size < 2) {
        return -1;
    }

    if (in[0] == '0' && (in[1] == 'x' || in[1] == 'X')) {
        in += 2;
    }

    n = 0;
    digits = 0;

    for ( /* void */ ; *in != '\0'; in++) {
        if (*in == ':') {
            continue;
        }

        if (!isxdigit((unsigned char) *in)) {
            return -1;
        }

        digits++;

        if (n == 0 && *in == '0') {
            continue;
        }

        if (n + 1 >= size) {
            return -1;
        }

        out[n++] = (char) toupper((unsigned char) *in);
    }

    if (digits == 0) {
        return -1;
    }

    if (n == 0) {
        out[n++] = '0';
    }

    out[n] = '\0';

    return 0;
}


int
ca_serial_from_asn1(const ASN1_INTEGER *ai, char *out, size_t size)
{
    BIGNUM  *bn;
    char    *hex;
    int      rc, neg;

    rc = -1;
    hex = NULL;

    bn = ASN1_INTEGER_to_BN(ai, NULL);
    if (bn == NULL) {
        return -1;
    }

    neg = BN_is_negative(bn);
    BN_set_negative(bn, 0);

    hex = BN_bn2hex(bn);
    if (hex == NULL) {
        goto cleanup;
    }

    if (neg) {
        /* Not ours (we only issue positive serials), but describe it. */
        if (size < 3) {
            goto cleanup;
        }
        out[0] = '-';
        rc = ca_serial_normalize(hex, out + 1, size - 1);

    } else {
        rc = ca_serial_normalize(hex, out, size);
    }

cleanup:

    OPENSSL_free(hex);
    BN_free(bn);

    return rc;
}


/* Device ids: 1 to 64 of [A-Za-z0-9-], safe in a URI, a path and a log. */
int
ca_device_id_valid(const char *id)
{
    size_t  i;

    for (i = 0; id[i] != '\0'; i++) {
        if (i >= CA_ID_MAX) {
            return 0;
        }

        if (!isalnum((unsigned char) id[i]) && id[i] != '-') {
            return 0;
        }
    }

    return i > 0;
}


int
ca_time_to_unix(const ASN1_TIME *t, int64_t *out)
{
    struct tm  tm;
    time_t     s;

    memset(&tm, 0, sizeof(tm));

    if (ASN1_TIME_to_tm(t, &tm) != 1) {
        return -1;
    }

    s = timegm(&tm);
    if (s == (time_t) -1 && (tm.tm_year != 69 || tm.tm_yday != 364)) {
        return -1;
    }

    *out = (int64_t) s;

    return 0;
}
