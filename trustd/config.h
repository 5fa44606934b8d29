/*
 * trustd configuration file: OpenBSD-style "keyword value" lines, '#'
 * comments and blank lines.  A value may be double-quoted to hold spaces
 * or '#'.  Errors are reported as "file:line: message" quoting the
 * offending keyword or value.  See trustd(8) for the keywords.
 */

#ifndef ZT_CONFIG_H
#define ZT_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "score.h"

#define CONFIG_DEVICE_CACHE     1048576 /* device_cache default */
#define CONFIG_DEFAULT_PATH     "/etc/ztgate/trustd.conf"
#define CONFIG_MAX_PEERS        32
#define CONFIG_LISTEN_MAX       108     /* sizeof(sun_path) */
#define CONFIG_PATH_MAX         4096
#define CONFIG_MAX_HOSTS        32
#define CONFIG_MAX_WA_ORIGINS   8
#define CONFIG_MAX_BLOCKLISTS   16
#define CONFIG_MAX_NETWORKS     32

#define CONFIG_METRICS_INTERVAL_MS  5000    /* metrics_interval default */
#define CONFIG_CLUSTER_STALENESS_MS 60000   /* cluster_max_staleness */

#define CONFIG_LOG_TARGET_DEFAULT   0   /* stderr with -f, else syslog */
#define CONFIG_LOG_TARGET_STDERR    1
#define CONFIG_LOG_TARGET_SYSLOG    2

typedef struct {
    char        listen[CONFIG_LISTEN_MAX];
    mode_t      listen_mode;
    uid_t       peer_uids[CONFIG_MAX_PEERS];
    size_t      npeers;
    char        store[CONFIG_PATH_MAX];
    size_t      store_map_size;             /* bytes */
    int         log_level;                  /* LOG_LEVEL_* */
    int         log_target;                 /* CONFIG_LOG_TARGET_* */
    int         log_format;                 /* LOG_FORMAT_*, default kv */
    char        pid_file[CONFIG_PATH_MAX];  /* "" if none */
    unsigned    max_clients;
    uint32_t    allow_ttl_ms;
    uint32_t    shutdown_timeout_ms;
    char        policy[CONFIG_PATH_MAX];    /* "" = built-in device rule */
    char        portal_url[1024];           /* "" = no portal */
    char        admin_listen[CONFIG_LISTEN_MAX];    /* "" = none */
    uid_t       admin_uids[CONFIG_MAX_PEERS];
    size_t      nadmins;

    /* identity (stage one): on when identity_keys is set */
    char        identity_keys[CONFIG_PATH_MAX];     /* key directory */
    int         token_alg;                  /* id_alg_t */
    uint32_t    key_grace_ms;
    uint32_t    session_lifetime_ms;
    uint32_t    session_idle_ms;
    unsigned    totp_window;
    unsigned    lockout_threshold;
    uint32_t    lockout_time_ms;
    unsigned    source_limit;               /* attempts per minute */
    char        portal_listen[CONFIG_LISTEN_MAX];   /* "" = no portal */
    char        portal_hosts[CONFIG_MAX_HOSTS][256];
    size_t      nportal_hosts;

    /* WebAuthn (docs/webauthn.md): on when webauthn_rp_id is set */
    char        webauthn_rp_id[256];
    char        webauthn_origins[CONFIG_MAX_WA_ORIGINS][256];
    size_t      nwebauthn_origins;
    int         webauthn_uv;                /* 1: user verification
                                               required (default) */
    uint32_t    assertion_ttl_ms;

    /* devices: a posture report older than this is stale */
    uint32_t    posture_max_age_ms;

    /* trust inference (docs/trust.md) */
    score_weights_t  trust;                 /* base and weights */
    uint32_t    behaviour_window_ms;
    char        trusted_networks[CONFIG_MAX_NETWORKS][64];
    size_t      ntrusted_networks;
    struct {
        char        name[64];
        char        path[CONFIG_PATH_MAX];
        int64_t     expires;                /* 0: never */
    }           blocklists[CONFIG_MAX_BLOCKLISTS];
    size_t      nblocklists;

    /* the decision journal (docs/journal.md) */
    uint32_t    journal_flush_ms;
    unsigned    journal_queue;
    int64_t     journal_retention_ms;       /* 0: keep every record */
    int         journal_fail_open;          /* journal_failure open */

    /* device records cached by the decision thread (0: none) */
    unsigned    device_cache;

    /* Prometheus metrics: "" = no endpoint; a socket path or ADDR:PORT */
    char        metrics_listen[CONFIG_LISTEN_MAX];
    uint32_t    metrics_interval_ms;        /* snapshot period */

    /* cluster mode (docs/cluster.md): off unless cluster on */
    int         cluster;
    char        cluster_database[1024];     /* libpq connection string */
    char        cluster_node[64];           /* default: the host name */
    uint32_t    cluster_max_staleness_ms;   /* fail closed after this */
    uint32_t    cluster_poll_ms;            /* change-log poll fallback */
    uint32_t    cluster_timeout_ms;         /* connect and statements */
    uint32_t    cluster_retention_ms;       /* change-log entries kept */
} config_t;

typedef struct {
    char    msg[512];
} config_err_t;

/*
 * Read and check the configuration file path into *cfg (a plain value;
 * nothing to free).  Peer user names are resolved to uids now.  Returns
 * 0, or -1 with "file:line: message" (or "file: message") in *err, in
 * which case *cfg is unspecified.
 */
int config_load(const char *path, config_t *cfg, config_err_t *err);

/*
 * Parse a size with an optional k/K, m/M or g/G suffix (powers of 1024).
 * Returns 0 and sets *out, or -1.
 */
int config_parse_size(const char *s, size_t *out);

/*
 * Parse a duration: a number with an ms, s, m, h or d suffix (a bare
 * number is seconds).  Returns 0 and sets *ms, or -1 (including a value over
 * max_ms).
 */
int config_parse_duration(const char *s, uint32_t max_ms, uint32_t *ms);

/*
 * Parse "ADDR:PORT" where ADDR is a loopback address: 127.0.0.0/8,
 * "[::1]" or "localhost" (127.0.0.1, not resolved).  Returns 0 with the
 * address in *addr and its length in *len, or -1.
 */
int config_parse_loopback(const char *s, struct sockaddr_storage *addr,
    socklen_t *len);

/* 1 if uid is one of the configured peers. */
int config_peer_allowed(const config_t *cfg, uid_t uid);

/* 1 if uid may use the admin socket: root, trustd's own user, admin_user. */
int config_admin_allowed(const config_t *cfg, uid_t uid);

/*
 * Split one line of a keyword-value file (trustd.conf, ztconsole's
 * console.conf) in place: the keyword, then one value (quoted when it
 * has spaces) or, for a keyword multiword() accepts, the rest of the
 * line; "#" starts a comment.  Returns 1 with *kw and *value set, 0 for a
 * blank or comment line, or -1 with the reason in msg.
 */
int config_split_line(char *line, int (*multiword)(const char *kw),
    char **kw, char **value, char *msg, size_t size);

#endif /* ZT_CONFIG_H */
