/*
 * Key files: loading, creating and rotating them.  See identity.h for the
 * contract.
 *
 * A key file is refused when it is not a regular file or when its mode
 * lets group or others read it, as ssh refuses a private key.  New files
 * are written under umask 077 to a temporary name opened O_EXCL with mode
 * 0600, synced, and then linked (never replacing an existing key) or
 * renamed (rotation) into place, so that a crash never leaves a torn key
 * under the real name.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "id_internal.h"


#define ID_SECRET_FILE      "secret.key"
#define ID_SECRET_PREV_FILE "secret.key.prev"
#define ID_SESSION_FILE     "session.key"
#define ID_PREV_FILE        "session.key.prev"
#define ID_ASSERTION_FILE   "assertion.key"

#define ID_KEY_TOO_OPEN     (-2)    /* id_file_read(): refused by mode */

#define ID_KEY_RAW          0       /* 32 random bytes */
#define ID_KEY_EC           1       /* EC P-256 private key, PEM */


static int id_path(char *out, const char *dir, const char *name,
    id_err_t *err);
static int id_dir_prepare(const char *dir, int create, id_err_t *err);
static int id_file_read(const char *path, uint8_t *buf, size_t size,
    size_t *len, struct stat *st, id_err_t *err);
static int id_file_write(const char *dir, const char *name,
    const uint8_t *data, size_t len, int replace, id_err_t *err);
static int id_sync_dir(const char *dir, id_err_t *err);
static int id_key_generate(int type, unsigned char **data, size_t *len,
    id_err_t *err);
static int id_no_pass(char *buf, int size, int rwflag, void *u);
static int id_bio_copy(BIO *bio, unsigned char **out, size_t *len,
    id_err_t *err);
static int id_kid(const uint8_t *data, size_t len, char *kid,
    id_err_t *err);
static int id_key_parse_hs(const uint8_t *data, size_t len,
    const char *path, id_session_key_t *k, id_err_t *err);
static int id_key_parse_ec(const uint8_t *data, size_t len,
    const char *path, id_session_key_t *k, EVP_PKEY **pkey, id_err_t *err);
static int id_key_load_one(const char *dir, const char *name, int type,
    int create, int optional, uint8_t *raw, id_session_key_t *k,
    EVP_PKEY **pkey, struct stat *st, id_err_t *err);
static void id_session_key_clear(id_session_key_t *k);
static int id_key_keep_prev(const char *dir, const char *cur,
    const char *prev, const char *prev_name, id_err_t *err);


static uint64_t  id_keys_gen;


static int
id_path(char *out, const char *dir, const char *name, id_err_t *err)
{
    int  n;

    n = snprintf(out, PATH_MAX, "%s/%s", dir, name);

    if (n < 0 || n >= PATH_MAX) {
        id_seterr(err, "%s: path too long", dir);
        return -1;
    }

    return 0;
}


/*
 * A directory others can write to lets them replace our keys: refuse it,
 * whatever the files' own modes.
 */
static int
id_dir_prepare(const char *dir, int create, id_err_t *err)
{
    struct stat  st;

    if (create && mkdir(dir, 0700) != 0 && errno != EEXIST) {
        id_seterr(err, "mkdir %s: %s", dir, strerror(errno));
        return -1;
    }

    if (stat(dir, &st) != 0) {
        id_seterr(err, "%s: %s", dir, strerror(errno));
        return -1;
    }

    if (!S_ISDIR(st.st_mode)) {
        id_seterr(err, "%s: not a directory", dir);
        return -1;
    }

    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        id_seterr(err, "%s: mode %04o is too open; chmod 700", dir,
                  (unsigned) (st.st_mode & 07777));
        return -1;
    }

    return 0;
}


/* 0 read, 1 no such file, ID_KEY_TOO_OPEN, -1 other errors. */
static int
id_file_read(const char *path, uint8_t *buf, size_t size, size_t *len,
    struct stat *st, id_err_t *err)
{
    int      fd, rc;
    ssize_t  n;
    size_t   got;

    rc = -1;
    got = 0;

    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd == -1) {
        if (errno == ENOENT) {
            return 1;
        }

        id_seterr(err, "open %s: %s", path, strerror(errno));
        return -1;
    }

    if (fstat(fd, st) != 0) {
        id_seterr(err, "fstat %s: %s", path, strerror(errno));
        goto done;
    }

    if (!S_ISREG(st->st_mode)) {
        id_seterr(err, "%s: not a regular file", path);
        goto done;
    }

    if (st->st_mode & (S_IRWXG | S_IRWXO)) {
        id_seterr(err, "%s: mode %04o is too open; chmod 600", path,
                  (unsigned) (st->st_mode & 07777));
        rc = ID_KEY_TOO_OPEN;
        goto done;
    }

    if (st->st_size <= 0 || (size_t) st->st_size > size) {
        id_seterr(err, "%s: size %lld out of range", path,
                  (long long) st->st_size);
        goto done;
    }

    while (got < size) {
        n = read(fd, buf + got, size - got);

        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }

            id_seterr(err, "read %s: %s", path, strerror(errno));
            goto done;
        }

        if (n == 0) {
            break;
        }

        got += (size_t) n;
    }

    if (got != (size_t) st->st_size) {
        id_seterr(err, "%s: changed while being read", path);
        goto done;
    }

    *len = got;
    rc = 0;

done:

    if (close(fd) != 0 && rc == 0) {
        id_seterr(err, "close %s: %s", path, strerror(errno));
        rc = -1;
    }

    return rc;
}


static int
id_sync_dir(const char *dir, id_err_t *err)
{
    int  fd, rc;

    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd == -1) {
        id_seterr(err, "open %s: %s", dir, strerror(errno));
        return -1;
    }

    rc = 0;

    if (fsync(fd) != 0) {
        id_seterr(err, "fsync %s: %s", dir, strerror(errno));
        rc = -1;
    }

    (void) close(fd);

    return rc;
}


/*
 * Write data as dir/name, mode 0600.  Without replace an existing file is
 * kept and 1 returned; with it the file is atomically replaced.  The
 * caller has set umask 077.
 */
static int
id_file_write(const char *dir, const char *name, const uint8_t *data,
    size_t len, int replace, id_err_t *err)
{
    int       fd, rc, n, linked;
    ssize_t   w;
    size_t    off;
    char      path[PATH_MAX], tmp[PATH_MAX];
    unsigned  seq;

    rc = -1;
    fd = -1;
    linked = 0;

    if (id_path(path, dir, name, err) != 0) {
        return -1;
    }

    seq = __atomic_add_fetch(&id_keys_gen, 1, __ATOMIC_RELAXED);

    n = snprintf(tmp, sizeof(tmp), "%s/.%s.%ld.%u.tmp", dir, name,
                 (long) getpid(), seq);
    if (n < 0 || (size_t) n >= sizeof(tmp)) {
        id_seterr(err, "%s: path too long", dir);
        return -1;
    }

    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
              0600);
    if (fd == -1) {
        id_seterr(err, "create %s: %s", tmp, strerror(errno));
        return -1;
    }

    for (off = 0; off < len; off += (size_t) w) {
        w = write(fd, data + off, len - off);

        if (w == -1) {
            if (errno == EINTR) {
                w = 0;
                continue;
            }

            id_seterr(err, "write %s: %s", tmp, strerror(errno));
            goto done;
        }
    }

    if (fsync(fd) != 0) {
        id_seterr(err, "fsync %s: %s", tmp, strerror(errno));
        goto done;
    }

    n = close(fd);
    fd = -1;

    if (n != 0) {
        id_seterr(err, "close %s: %s", tmp, strerror(errno));
        goto done;
    }

    if (replace) {
        if (rename(tmp, path) != 0) {
            id_seterr(err, "rename %s to %s: %s", tmp, path,
                      strerror(errno));
            goto done;
        }

        linked = 1;

    } else if (link(tmp, path) != 0) {
        if (errno != EEXIST) {
            id_seterr(err, "link %s to %s: %s", tmp, path, strerror(errno));
            goto done;
        }

        /* Someone else created it meanwhile: theirs stands. */
        rc = 1;
        goto done;
    }

    if (id_sync_dir(dir, err) != 0) {
        goto done;
    }

    rc = 0;

done:

    if (fd != -1) {
        (void) close(fd);
    }

    if (!linked) {
        (void) unlink(tmp);
    }

    return rc;
}


static int
id_no_pass(char *buf, int size, int rwflag, void *u)
{
    (void) buf;
    (void) size;
    (void) rwflag;
    (void) u;

    /* Never prompt: an encrypted key file is refused. */
    return -1;
}


/* Copy a memory BIO's contents into an OPENSSL_malloc()ed buffer. */
static int
id_bio_copy(BIO *bio, unsigned char **out, size_t *len, id_err_t *err)
{
    long   n;
    char  *p;

    n = BIO_get_mem_data(bio, &p);
    if (n <= 0) {
        id_ssl_err(err, "BIO_get_mem_data");
        return -1;
    }

    *out = OPENSSL_malloc((size_t) n);
    if (*out == NULL) {
        id_ssl_err(err, "OPENSSL_malloc");
        return -1;
    }

    memcpy(*out, p, (size_t) n);
    *len = (size_t) n;

    return 0;
}


static int
id_key_generate(int type, unsigned char **data, size_t *len, id_err_t *err)
{
    int        rc;
    BIO       *bio;
    EVP_PKEY  *pk;

    rc = -1;
    bio = NULL;
    pk = NULL;
    *data = NULL;

    if (type == ID_KEY_RAW) {
        *data = OPENSSL_malloc(ID_HMAC_KEY_LEN);
        if (*data == NULL) {
            id_ssl_err(err, "OPENSSL_malloc");
            goto done;
        }

        if (RAND_bytes(*data, ID_HMAC_KEY_LEN) != 1) {
            id_ssl_err(err, "RAND_bytes");
            goto done;
        }

        *len = ID_HMAC_KEY_LEN;
        rc = 0;
        goto done;
    }

    pk = EVP_EC_gen("P-256");
    if (pk == NULL) {
        id_ssl_err(err, "EVP_EC_gen(P-256)");
        goto done;
    }

    bio = BIO_new(BIO_s_secmem());
    if (bio == NULL) {
        id_ssl_err(err, "BIO_new");
        goto done;
    }

    if (PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL) != 1) {
        id_ssl_err(err, "PEM_write_bio_PrivateKey");
        goto done;
    }

    if (id_bio_copy(bio, data, len, err) != 0) {
        goto done;
    }

    rc = 0;

done:

    if (rc != 0 && *data != NULL) {
        OPENSSL_clear_free(*data, type == ID_KEY_RAW ? ID_HMAC_KEY_LEN : 0);
        *data = NULL;
    }

    BIO_free(bio);
    EVP_PKEY_free(pk);

    return rc;
}


static int
id_kid(const uint8_t *data, size_t len, char *kid, id_err_t *err)
{
    unsigned char  md[EVP_MAX_MD_SIZE];
    unsigned int   mdlen;

    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1) {
        id_ssl_err(err, "EVP_Digest(SHA-256)");
        return -1;
    }

    id_hex(md, ID_KID_LEN / 2, kid);

    return 0;
}


static int
id_key_parse_hs(const uint8_t *data, size_t len, const char *path,
    id_session_key_t *k, id_err_t *err)
{
    if (len != ID_HMAC_KEY_LEN) {
        id_seterr(err, "%s: not an HS256 key (%d raw bytes)", path,
                  ID_HMAC_KEY_LEN);
        return -1;
    }

    k->sign = OPENSSL_malloc(len);
    k->verify = OPENSSL_malloc(len);

    if (k->sign == NULL || k->verify == NULL) {
        id_ssl_err(err, "OPENSSL_malloc");
        id_session_key_clear(k);
        return -1;
    }

    memcpy(k->sign, data, len);
    memcpy(k->verify, data, len);
    k->sign_len = len;
    k->verify_len = len;

    if (id_kid(data, len, k->kid, err) != 0) {
        id_session_key_clear(k);
        return -1;
    }

    return 0;
}


/*
 * Parse an EC P-256 private key PEM.  k gets the key re-exported as an
 * unencrypted PKCS#8 PEM (what libjwt signs with), the public key PEM
 * (what libjwt verifies with) and the kid over the SubjectPublicKeyInfo
 * DER.  With pkey set, *pkey receives the key too.
 */
static int
id_key_parse_ec(const uint8_t *data, size_t len, const char *path,
    id_session_key_t *k, EVP_PKEY **pkey, id_err_t *err)
{
    int             rc, derlen;
    BIO            *in, *priv, *pub;
    char            group[64], what[PATH_MAX + 64];
    EVP_PKEY       *pk;
    unsigned char  *der;

    rc = -1;
    in = NULL;
    priv = NULL;
    pub = NULL;
    pk = NULL;
    der = NULL;

    if (len > INT_MAX) {
        id_seterr(err, "%s: too large", path);
        goto done;
    }

    in = BIO_new_mem_buf(data, (int) len);
    if (in == NULL) {
        id_ssl_err(err, "BIO_new_mem_buf");
        goto done;
    }

    pk = PEM_read_bio_PrivateKey(in, NULL, id_no_pass, NULL);
    if (pk == NULL) {
        (void) snprintf(what, sizeof(what),
                        "%s: reading an unencrypted PEM private key", path);
        id_ssl_err(err, what);
        goto done;
    }

    if (!EVP_PKEY_is_a(pk, "EC")
        || EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME,
                                          group, sizeof(group), NULL)
           != 1
        || strcmp(group, "prime256v1") != 0)
    {
        ERR_clear_error();
        id_seterr(err, "%s: not an EC P-256 key", path);
        goto done;
    }

    priv = BIO_new(BIO_s_secmem());
    pub = BIO_new(BIO_s_mem());

    if (priv == NULL || pub == NULL) {
        id_ssl_err(err, "BIO_new");
        goto done;
    }

    if (PEM_write_bio_PrivateKey(priv, pk, NULL, NULL, 0, NULL, NULL) != 1) {
        id_ssl_err(err, "PEM_write_bio_PrivateKey");
        goto done;
    }

    if (PEM_write_bio_PUBKEY(pub, pk) != 1) {
        id_ssl_err(err, "PEM_write_bio_PUBKEY");
        goto done;
    }

    derlen = i2d_PUBKEY(pk, &der);
    if (derlen <= 0) {
        id_ssl_err(err, "i2d_PUBKEY");
        goto done;
    }

    if (id_bio_copy(priv, &k->sign, &k->sign_len, err) != 0
        || id_bio_copy(pub, &k->verify, &k->verify_len, err) != 0
        || id_kid(der, (size_t) derlen, k->kid, err) != 0)
    {
        goto done;
    }

    if (pkey != NULL) {
        *pkey = pk;
        pk = NULL;
    }

    rc = 0;

done:

    if (rc != 0) {
        id_session_key_clear(k);
    }

    OPENSSL_free(der);
    EVP_PKEY_free(pk);
    BIO_free(pub);
    BIO_free(priv);
    BIO_free(in);

    return rc;
}


/*
 * Load dir/name, creating it first when create is set and it is missing.
 * raw (ID_KEY_RAW) receives a secret's 32 bytes; otherwise k (and pkey)
 * receive the parsed key.  optional: a missing file is 1, not an error.
 * Returns 0, 1, ID_KEY_TOO_OPEN or -1.
 */
static int
id_key_load_one(const char *dir, const char *name, int type, int create,
    int optional, uint8_t *raw, id_session_key_t *k, EVP_PKEY **pkey,
    struct stat *st, id_err_t *err)
{
    int             rc, r;
    size_t          len, glen;
    char            path[PATH_MAX];
    uint8_t         buf[ID_KEYFILE_MAX];
    unsigned char  *gen;

    rc = -1;
    gen = NULL;
    glen = 0;

    if (id_path(path, dir, name, err) != 0) {
        return -1;
    }

    r = id_file_read(path, buf, sizeof(buf), &len, st, err);

    if (r == 1 && create && !optional) {
        if (id_key_generate(type, &gen, &glen, err) != 0) {
            goto done;
        }

        if (id_file_write(dir, name, gen, glen, 0, err) < 0) {
            goto done;
        }

        /* Read back what is there now: ours, or a racing creator's. */
        r = id_file_read(path, buf, sizeof(buf), &len, st, err);
    }

    if (r == 1) {
        if (optional) {
            rc = 1;
        } else {
            id_seterr(err, "%s: no such file", path);
        }
        goto done;
    }

    if (r != 0) {
        rc = r;
        goto done;
    }

    if (raw != NULL) {
        if (len != ID_SECRET_KEY_LEN) {
            id_seterr(err, "%s: not a %d-byte secret", path,
                      ID_SECRET_KEY_LEN);
            goto done;
        }

        memcpy(raw, buf, len);
        rc = 0;

    } else if (type == ID_KEY_RAW) {
        rc = id_key_parse_hs(buf, len, path, k, err);

    } else {
        rc = id_key_parse_ec(buf, len, path, k, pkey, err);
    }

done:

    OPENSSL_cleanse(buf, sizeof(buf));

    if (gen != NULL) {
        OPENSSL_clear_free(gen, glen);
    }

    return rc;
}


static void
id_session_key_clear(id_session_key_t *k)
{
    if (k->sign != NULL) {
        OPENSSL_clear_free(k->sign, k->sign_len);
    }

    if (k->verify != NULL) {
        OPENSSL_clear_free(k->verify, k->verify_len);
    }

    memset(k, 0, sizeof(*k));
}


int
id_keys_load(const char *dir, id_alg_t alg, int64_t grace_seconds,
    int create, id_keys_t **keys, id_err_t *err)
{
    int          rc, r, type;
    mode_t       mask;
    id_err_t     perr;
    id_keys_t   *k;
    EVP_PKEY    *apk;
    struct stat  st, cur_st;

    rc = -1;
    k = NULL;
    apk = NULL;
    perr.msg[0] = '\0';

    if (dir == NULL || keys == NULL) {
        id_seterr(err, "id_keys_load: NULL argument");
        return -1;
    }

    if (alg != ID_ALG_HS256 && alg != ID_ALG_ES256) {
        id_seterr(err, "unknown session token algorithm %d", (int) alg);
        return -1;
    }

    if (grace_seconds < 0) {
        id_seterr(err, "negative key grace period");
        return -1;
    }

    *keys = NULL;
    type = (alg == ID_ALG_HS256) ? ID_KEY_RAW : ID_KEY_EC;

    /*
     * umask is per process: this runs at start-up and reload, and only
     * ever narrows what a concurrent thread would create meanwhile.
     */
    mask = umask(077);

    if (id_dir_prepare(dir, create, err) != 0) {
        goto done;
    }

    k = OPENSSL_zalloc(sizeof(*k));
    if (k == NULL) {
        id_ssl_err(err, "OPENSSL_zalloc");
        goto done;
    }

    k->alg = alg;
    k->gen = __atomic_add_fetch(&id_keys_gen, 1, __ATOMIC_RELAXED);

    if (id_key_load_one(dir, ID_SECRET_FILE, ID_KEY_RAW, create, 0,
                        k->secret, NULL, NULL, &st, err)
        != 0)
    {
        goto done;
    }

    /* during a rotation of secret.key (see id_keys_rotate_secret()) */
    r = id_key_load_one(dir, ID_SECRET_PREV_FILE, ID_KEY_RAW, 0, 1,
                        k->secret_prev, NULL, NULL, &st, &perr);
    if (r == 0) {
        k->has_secret_prev = 1;
    } else if (r == ID_KEY_TOO_OPEN) {
        if (err != NULL) {
            *err = perr;
        }
        goto done;
    }

    if (id_key_load_one(dir, ID_SESSION_FILE, type, create, 0, NULL,
                        &k->cur, NULL, &cur_st, err)
        != 0)
    {
        goto done;
    }

    if (id_key_load_one(dir, ID_ASSERTION_FILE, ID_KEY_EC, create, 0, NULL,
                        &k->assertion, &apk, &st, err)
        != 0)
    {
        goto done;
    }

    k->assertion_pkey = apk;
    apk = NULL;

    /*
     * The previous key: a file others can read is refused like any other,
     * but one that does not parse as the pinned algorithm's key (the
     * algorithm was changed and then rotated) is simply not used: nothing
     * signed with it could verify under the pinned algorithm anyway.
     */
    r = id_key_load_one(dir, ID_PREV_FILE, type, 0, 1, NULL, &k->prev,
                        NULL, &st, &perr);

    if (r == 0) {
        k->has_prev = 1;

        if (cur_st.st_mtim.tv_sec > INT64_MAX - grace_seconds) {
            k->prev_until = INT64_MAX;
        } else {
            k->prev_until = (int64_t) cur_st.st_mtim.tv_sec + grace_seconds;
        }

    } else if (r == ID_KEY_TOO_OPEN) {
        if (err != NULL) {
            *err = perr;
        }
        goto done;
    }

    ERR_clear_error();

    *keys = k;
    k = NULL;
    rc = 0;

done:

    (void) umask(mask);

    EVP_PKEY_free(apk);
    id_keys_free(k);

    return rc;
}


void
id_keys_free(id_keys_t *keys)
{
    if (keys == NULL) {
        return;
    }

    id_session_key_clear(&keys->cur);
    id_session_key_clear(&keys->prev);
    id_session_key_clear(&keys->assertion);
    EVP_PKEY_free(keys->assertion_pkey);

    OPENSSL_clear_free(keys, sizeof(*keys));
}


/*
 * Give the key file cur the name prev, atomically, while cur keeps
 * existing: a second name (a hard link under a temporary name) is renamed
 * over prev.  The caller then replaces cur.  0 or -1.
 */
static int
id_key_keep_prev(const char *dir, const char *cur, const char *prev,
    const char *prev_name, id_err_t *err)
{
    char  tmp[PATH_MAX];
    int   n;

    n = snprintf(tmp, sizeof(tmp), "%s/.%s.%ld.tmp", dir, prev_name,
                 (long) getpid());
    if (n < 0 || (size_t) n >= sizeof(tmp)) {
        id_seterr(err, "%s: path too long", dir);
        return -1;
    }

    (void) unlink(tmp);

    if (link(cur, tmp) != 0) {
        id_seterr(err, "link %s to %s: %s", cur, tmp, strerror(errno));
        return -1;
    }

    if (rename(tmp, prev) != 0) {
        id_seterr(err, "rename %s to %s: %s", tmp, prev, strerror(errno));
        (void) unlink(tmp);
        return -1;
    }

    return 0;
}


int
id_keys_rotate(const char *dir, id_alg_t alg, id_err_t *err)
{
    int             rc;
    mode_t          mask;
    size_t          glen;
    char            cur[PATH_MAX], prev[PATH_MAX];
    unsigned char  *gen;
    struct stat     st;

    rc = -1;
    gen = NULL;
    glen = 0;

    if (dir == NULL) {
        id_seterr(err, "id_keys_rotate: NULL argument");
        return -1;
    }

    if (alg != ID_ALG_HS256 && alg != ID_ALG_ES256) {
        id_seterr(err, "unknown session token algorithm %d", (int) alg);
        return -1;
    }

    mask = umask(077);

    if (id_dir_prepare(dir, 0, err) != 0
        || id_path(cur, dir, ID_SESSION_FILE, err) != 0
        || id_path(prev, dir, ID_PREV_FILE, err) != 0)
    {
        goto done;
    }

    if (id_key_generate(alg == ID_ALG_HS256 ? ID_KEY_RAW : ID_KEY_EC, &gen,
                        &glen, err)
        != 0)
    {
        goto done;
    }

    /*
     * session.key exists at every instant: first the current key gets a
     * second name, which then atomically becomes session.key.prev; only
     * then is session.key atomically replaced by the new key.
     */
    if (lstat(cur, &st) == 0) {
        if (id_key_keep_prev(dir, cur, prev, ID_PREV_FILE, err) != 0) {
            goto done;
        }

    } else if (errno != ENOENT) {
        id_seterr(err, "%s: %s", cur, strerror(errno));
        goto done;
    }

    if (id_file_write(dir, ID_SESSION_FILE, gen, glen, 1, err) != 0) {
        goto done;
    }

    rc = 0;

done:

    if (gen != NULL) {
        OPENSSL_clear_free(gen, glen);
    }

    (void) umask(mask);

    return rc;
}


int
id_keys_has_prev_secret(const id_keys_t *keys)
{
    return keys != NULL && keys->has_secret_prev;
}


int
id_keys_rotate_secret(const char *dir, id_err_t *err)
{
    int             rc;
    mode_t          mask;
    size_t          glen;
    char            cur[PATH_MAX], prev[PATH_MAX];
    unsigned char  *gen;
    struct stat     st;

    rc = -1;
    gen = NULL;
    glen = 0;

    mask = umask(077);

    if (dir == NULL) {
        id_seterr(err, "id_keys_rotate_secret: NULL argument");
        goto done;
    }

    if (id_dir_prepare(dir, 0, err) != 0
        || id_path(cur, dir, ID_SECRET_FILE, err) != 0
        || id_path(prev, dir, ID_SECRET_PREV_FILE, err) != 0)
    {
        goto done;
    }

    if (lstat(prev, &st) == 0) {
        id_seterr(err, "%s exists: a rotation of the secret key is not "
                  "finished (re-seal, then remove it)", prev);
        goto done;
    }

    if (lstat(cur, &st) != 0) {
        id_seterr(err, "%s: %s", cur, strerror(errno));
        goto done;
    }

    if (id_key_generate(ID_KEY_RAW, &gen, &glen, err) != 0) {
        goto done;
    }

    /* as id_keys_rotate(): secret.key exists at every instant */
    if (id_key_keep_prev(dir, cur, prev, ID_SECRET_PREV_FILE, err) != 0) {
        goto done;
    }

    if (id_file_write(dir, ID_SECRET_FILE, gen, glen, 1, err) != 0) {
        goto done;
    }

    rc = 0;

done:

    if (gen != NULL) {
        OPENSSL_clear_free(gen, glen);
    }

    (void) umask(mask);

    return rc;
}


int
id_keys_drop_prev_secret(const char *dir, id_err_t *err)
{
    char  prev[PATH_MAX];

    if (id_path(prev, dir, ID_SECRET_PREV_FILE, err) != 0) {
        return -1;
    }

    if (unlink(prev) != 0 && errno != ENOENT) {
        id_seterr(err, "cannot remove %s: %s", prev, strerror(errno));
        return -1;
    }

    return 0;
}
