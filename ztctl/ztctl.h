/*
 * ztctl's shared parts: the command tables' types, the exit statuses and
 * the helpers every command group uses.  ztctl.c holds the groups of
 * devices, users, sessions, blocklists, policy and explain; audit.c the
 * audit journal's commands; maint.c store backup/restore and the secret
 * key's rotation; status.c "ztctl status"; admin.c the client
 * of trustd's admin socket; json.c the JSON forms of the store's records;
 * complete.c the candidates for shell completion.
 */

#ifndef ZT_ZTCTL_H
#define ZT_ZTCTL_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "trustd/config.h"
#include "trustd/store.h"
#include "trustd/cluster.h"

#define ZTCTL_OK            0
#define ZTCTL_FAILED        1
#define ZTCTL_USAGE         2
#define ZTCTL_NOTFOUND      3

/* ztctl's own options, before the command: -c FILE, -s DIR, --actor */
#define ZTCTL_GLOBAL_SHORTOPTS  "+c:s:h"

/* the members every command's option table ends with, and --json */
#define ZTCTL_OPT_JSON      { "json", no_argument, NULL, 'j' }
#define ZTCTL_OPT_HELP      { "help", no_argument, NULL, 'h' }
#define ZTCTL_OPT_END       { NULL, 0, NULL, 0 }


typedef struct ztctl_s      ztctl_t;
typedef struct ztctl_cmd_s  ztctl_cmd_t;

typedef int (*ztctl_handler_pt)(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);

/*
 * A command.  Its handler parses its options with getopt_long() and
 * exactly the table opts (never a list of its own), and "ztctl
 * __complete" offers the same table: completion cannot drift from what
 * the command takes.
 */
struct ztctl_cmd_s {
    const char              *name;
    ztctl_handler_pt         handler;
    const struct option     *opts;      /* long options, --help last */
    const char              *args;      /* synopsis after the command name */
    const char              *help;      /* what it does, options */
};

typedef struct {
    const char          *name;
    const ztctl_cmd_t   *cmds;
    const char          *summary;
    int                  is_cmd;    /* the group is its one command
                                       ("ztctl status"), named as the
                                       group */
} ztctl_group_t;

struct ztctl_s {
    const char          *config_path;
    int                  config_given;
    const char          *store_dir;
    const char          *actor;
    char                 actor_buf[64];
    const char          *group;
    store_t             *store;
    int                  store_write;
    cluster_t           *cluster;       /* cluster mode: writes go there */
    char                 store_path[CONFIG_PATH_MAX];   /* once opened */
};

/* The command groups, and the options before the command (ztctl.c). */
extern const ztctl_group_t   ztctl_groups[];
extern const struct option   ztctl_global_opts[];

/* Option tables shared by commands: --help only; --json and --help. */
extern const struct option   ztctl_opts_help[];
extern const struct option   ztctl_opts_json[];

/* The audit group's commands (audit.c). */
extern const ztctl_cmd_t  ztctl_audit_cmds[];

/* ztctl policy check|test|explain, through ztpolicy (policy_tools.c). */
int ztctl_policy_check(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv);
int ztctl_policy_test(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv);
int ztctl_policy_explain(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv);

/* The store group's commands, backup and restore (maint.c). */
extern const ztctl_cmd_t  ztctl_store_cmds[];
extern const ztctl_cmd_t  ztctl_cluster_cmds[];

/*
 * Whether trustd (or anything else) is using the store in store_dir: its
 * admin socket answers, or its pid file names a live process.  1 with
 * why, or 0.
 */
int ztctl_trustd_running(ztctl_t *ctl, const char *store_dir, char *why,
    size_t size);

/* "ztctl keys rotate-secret" (maint.c). */
int ztctl_keys_rotate_secret(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv);

/* The status group's one command (status.c). */
extern const ztctl_cmd_t  ztctl_status_cmds[];

/* "ztctl explain --decision SEQ" (audit.c). */
int ztctl_explain_decision(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv);

/* Report a usage error; returns ZTCTL_USAGE. */
int ztctl_usage_error(const ztctl_t *ctl, const ztctl_cmd_t *cmd,
    const char *msg);

/*
 * Open the store (lazily), from -s or the config file's "store", and
 * note its directory in ctl->store_path.  ztctl_open() reports a failure
 * on stderr; ztctl_open_quiet() leaves it in msg instead.  Both return a
 * ZTCTL_* status.
 */
int ztctl_open(ztctl_t *ctl, int write);
/* Let go of the store (and the cluster connection). */
void ztctl_close_store(ztctl_t *ctl);

int ztctl_open_quiet(ztctl_t *ctl, int write, char *msg, size_t size);

/* An option no case of a getopt loop took (--help or an invalid one). */
int ztctl_other_opt(const ztctl_t *ctl, const ztctl_cmd_t *cmd, int ch);

/*
 * Parse the options of a command that takes none but --help and, when
 * json is not NULL, --json (*json set to 0 or 1).  Returns 1 when the
 * command is done (help shown or a bad option), with its exit status in
 * *status; 0 to go on with optind at the first argument.
 */
int ztctl_simple_opts(const ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv, int *json, int *status);

/*
 * trustd's configuration (-c) for a command that needs its identity keys
 * (what names the command in messages): refused with -s, or without
 * identity_keys.  A ZTCTL_* status, reported.
 */
int ztctl_identity_conf(const ztctl_t *ctl, const char *what,
    config_t *cfg);

/* Report a failed store call; returns ZTCTL_FAILED. */
int ztctl_store_failed(const store_err_t *err);

/* "2026-11-25T10:00:00Z" for unix seconds, "never" for 0. */
void ztctl_time(int64_t t, char *buf, size_t size);

/* "2026-11-25" for unix seconds, "unknown" for 0. */
void ztctl_date(int64_t t, char *buf, size_t size);

/* "sha1", "sha256" or "sha512" for an id_totp_algo_t. */
const char *ztctl_algo_name(unsigned algo);


/* ---- trustd's admin socket (admin.c) -------------------------------- */

#define ZTCTL_REPLY_MAX     8192

/*
 * The admin socket trustd listens on: admin_listen of the configuration
 * (-c) into path.  Returns ZTCTL_OK; ZTCTL_NOTFOUND when there is none to
 * ask (ztctl was given a store with -s, or the configuration has no
 * admin_listen); ZTCTL_FAILED when the configuration cannot be read.
 * Nothing is printed: msg says why.
 */
int ztctl_admin_socket(const ztctl_t *ctl, char *path, size_t size,
    char *msg, size_t msg_size);

/*
 * Send command to the admin socket at path and read trustd's reply into
 * reply (NUL-terminated), waiting at most timeout seconds.  Returns
 * ZTCTL_OK with the reply, whether it says "ok" or "error", or
 * ZTCTL_FAILED with why trustd could not be asked in msg.  Nothing is
 * printed.
 */
int ztctl_admin_ask(const char *path, const char *command, int timeout,
    char *reply, size_t size, char *msg, size_t msg_size);

/*
 * Ask the running trustd (ztctl_admin_socket(), ztctl_admin_ask()) and
 * print its reply: on stdout if it says "ok", else on stderr.  With reply
 * not NULL (ZTCTL_REPLY_MAX bytes) an "ok" reply is copied there instead
 * of printed.  Returns ZTCTL_OK for an "ok" reply; ZTCTL_USAGE with -s;
 * else ZTCTL_FAILED, the reason (naming the socket when trustd does not
 * answer) or trustd's error on stderr.
 */
int ztctl_trustd(ztctl_t *ctl, const char *command, char *reply);

/*
 * The members of an "ok" reply of "key value ..." pairs ("ok pid 7
 * policy 3f... connections 2"), after an optional leading word (label:
 * "journal" in "ok journal queued 0 ..."): numbers as JSON numbers, the
 * members "policy" and "error" as strings, "error" to the end of the
 * line.  Returns a new object (the caller's), or NULL for a reply that
 * is not "ok" or when out of memory.
 */
json_t *ztctl_admin_json(const char *reply, const char *label);


/* ---- JSON output (json.c) ------------------------------------------- */

/*
 * The JSON forms of the records, documented in ztctl(8) ("JSON OUTPUT"):
 * each returns a new object owned by the caller, or NULL when out of
 * memory.  Times are "2026-11-25T10:00:00Z" (UTC) or null (never,
 * unknown).  No secret goes in: no password hash, no TOTP secret or
 * counter, a session by the first STORE_SID_AUDIT_LEN digits of its id.
 */
json_t *ztctl_json_device(const store_device_t *dev, int64_t now);
json_t *ztctl_json_user(const store_user_t *u, int64_t now);
json_t *ztctl_json_session(const store_session_t *s, int64_t now);
json_t *ztctl_json_blocklist(const store_blocklist_t *e);

/* A device's posture; p NULL when it never reported one. */
json_t *ztctl_json_posture(const store_device_t *dev,
    const store_posture_t *p, int64_t now, int64_t max_age);

/* A JSON string of text: bytes that are not UTF-8 become U+FFFD. */
json_t *ztctl_json_text(const char *s);

/* A time as above: unix seconds, 0 for null. */
json_t *ztctl_json_time(int64_t t);

/*
 * Print root on stdout (two-space indent, members in the order they were
 * set) and release it.  root NULL means "out of memory" (reported).
 * Returns ZTCTL_OK or ZTCTL_FAILED.
 */
int ztctl_json_print(json_t *root);

/* WebAuthn security keys of a user (webauthn.c). */
int ztctl_user_webauthn_enroll(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
int ztctl_user_webauthn_list(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
int ztctl_user_webauthn_remove(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);


/* ---- shell completion (complete.c) ---------------------------------- */

/*
 * "ztctl __complete WORD...": the words after "ztctl" up to the one being
 * completed (the last, possibly empty).  Prints the candidates for it,
 * one a line: ztctl's options, the groups, a group's commands or a
 * command's long options, those starting with the last word.  Prints
 * nothing where a file, a name or an option's value is expected.
 * Returns ZTCTL_OK.
 */
int ztctl_complete(int argc, char **argv);

#endif /* ZT_ZTCTL_H */
