/*
 * ztctl: ztgate administration.  It opens trustd's store directly (LMDB
 * allows several processes); trustd sees a change at its next decision.
 *
 * Commands are grouped ("device enroll", "user create", "audit tail"); a
 * group is a table of commands and the groups are a table too, so a new
 * group is one table and its handlers.  A command's long options are a
 * table as well, which its handler parses and shell completion offers.
 *
 * Secrets: a password is read from a file, a pipe or the terminal with
 * echo off, hashed at once and wiped; it is never printed or logged.  A
 * TOTP secret is shown once, at enrollment (the otpauth:// URI and its QR
 * code), and stored sealed; ztctl never prints a code.  Neither the text
 * nor the JSON output (--json) ever holds a password hash or a TOTP
 * secret.
 *
 * Exit status: 0 ok, 1 operation failed, 2 usage error, 3 not found.
 */

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "certs/ca.h"
#include "trustd/blocklist.h"
#include "trustd/config.h"
#include "trustd/enroll.h"
#include "trustd/identity.h"
#include "trustd/store.h"
#include "ztctl.h"


#define ZTCTL_MIN_PREFIX    8

#define ZTCTL_PASSWORD_MAX  1024    /* bytes */
#define ZTCTL_TOTP_ISSUER   "ztgate"
#define ZTCTL_TOTP_WINDOW   1       /* steps each way without a config */
#define ZTCTL_QR_MAX        32768


typedef struct {
    char                 prefix[2 * STORE_FP_LEN + 1];
    size_t               len;
    store_device_t      *out;
    unsigned             matches;
} ztctl_prefix_t;

typedef struct {
    const char          *prefix;
    size_t               len;
    store_session_t     *out;
    unsigned             matches;
} ztctl_sid_prefix_t;

typedef struct {
    char                 keys[CONFIG_PATH_MAX];
    unsigned             window;
    id_alg_t             alg;
    int64_t              grace;
} ztctl_identity_t;

/*
 * What a list command's callback writes to: a table row per record, or
 * with --json an element of one array, printed at the end.
 */
typedef struct {
    int64_t              now;
    json_t              *json;          /* NULL: text */
    int                  failed;        /* out of memory for the JSON */
} ztctl_list_t;

/* A posture import being read: the rows, and where each came from. */
#define ZTCTL_IMPORT_FIELDS     8
#define ZTCTL_IMPORT_MAX_ROWS   100000
#define ZTCTL_IMPORT_MAX_BYTES  ((size_t) 32 * 1024 * 1024)

typedef struct {
    const char          *file;
    store_posture_t     *rows;
    char               (*where)[48];        /* "line 7", "[3]" */
    size_t               n;
    size_t               cap;
    unsigned             errors;
    char                 source[STORE_POSTURE_SOURCE_MAX];
} ztctl_import_t;

/* The columns of a CSV import, in order; the keys of a JSON one. */
static const char  *ztctl_import_fields[ZTCTL_IMPORT_FIELDS] = {
    "device", "os", "os_version", "patch_date", "disk_encrypted",
    "firewall", "screen_lock", "endpoint_protection"
};


static void ztctl_usage(FILE *f);
static void ztctl_group_usage(const ztctl_group_t *g, FILE *f);
static void ztctl_synopsis(const char *group, const ztctl_cmd_t *cmd,
    const char *prefix, FILE *f);
static void ztctl_cmd_usage(const ztctl_t *ctl, const ztctl_cmd_t *cmd,
    FILE *f);
static int ztctl_user_only(const ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv, int *json, int *status);
static int ztctl_list_start(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv, int *json, int *status);
static int ztctl_blocklist_add(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_blocklist_remove(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_blocklist_list(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_blocklist_print(const store_blocklist_t *e, void *arg);
static int ztctl_explain(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv);
static int ztctl_open_device(ztctl_t *ctl, int write, const char *arg,
    store_device_t *dev);
static int ztctl_default_actor(ztctl_t *ctl);
static int ztctl_text_ok(const char *s, size_t max, int allow_empty);
static int ztctl_name_ok(const char *s, size_t max);
static int ztctl_resolve(ztctl_t *ctl, const char *arg, store_device_t *dev);
static int ztctl_prefix_cb(const store_device_t *dev, void *arg);
static int ztctl_hex_fp(const char *s, char *hex, size_t size);
static int ztctl_device_enroll(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_device_list(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_list_add(ztctl_list_t *l, json_t *obj);
static int ztctl_list_end(ztctl_list_t *l, int rc, const store_err_t *err);
static int ztctl_device_list_cb(const store_device_t *dev, void *arg);
static int ztctl_device_show(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_device_status(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_posture_max_age(ztctl_t *ctl, const char *opt,
    int64_t *max_age);
static const char *ztctl_flag_text(store_flag_t flag);
static int ztctl_flag_parse(const char *s, store_flag_t *flag);
static int ztctl_date_parse(const char *s, int64_t *t);
static int ztctl_device_posture(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_device_posture_set(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_import_device(ztctl_t *ctl, const char *arg,
    store_device_t *dev, char *msg, size_t size);
static int ztctl_import_row(ztctl_t *ctl, ztctl_import_t *imp,
    const char *const *vals, const char *where);
static int ztctl_import_add(ztctl_import_t *imp, const store_posture_t *p,
    const char *where);
static int ztctl_csv_split(char *line, char **fields, size_t max,
    size_t *n);
static int ztctl_import_csv(ztctl_t *ctl, ztctl_import_t *imp, char *text);
static int ztctl_import_json(ztctl_t *ctl, ztctl_import_t *imp,
    const char *text, size_t len);
static int ztctl_device_posture_import(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_device_reassign(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_policy_reload(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_keys_rotate(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_policy_status(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static void ztctl_tty_signal(int sig);
static int ztctl_read_line(FILE *f, char *buf, size_t size);
static int ztctl_read_hidden(const char *prompt, char *buf, size_t size);
static int ztctl_read_password(const char *name, const char *file,
    char *pw, size_t size);
static int ztctl_user_arg(const ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv, int n);
static int ztctl_find_user(ztctl_t *ctl, int write, const char *name,
    store_user_t *u);
static int ztctl_user_save(ztctl_t *ctl, const store_user_t *u,
    const char *action, const char *detail, int revoke, unsigned *revoked);
static void ztctl_groups_text(const store_user_t *u, char *buf,
    size_t size);
static int ztctl_identity(ztctl_t *ctl, const char *keys_opt,
    ztctl_identity_t *idc);
static int ztctl_enroll_status(int rc, const enroll_err_t *err,
    const char *hint);
static int ztctl_totp_finish(ztctl_t *ctl, const enroll_totp_t *e,
    const char *code, unsigned window);
static int ztctl_user_create(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_user_list(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_user_list_cb(const store_user_t *u, void *arg);
static int ztctl_user_show(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_user_passwd(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_user_groups(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_user_state(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_user_delete(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_user_totp_enroll(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_user_totp_confirm(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_user_totp_reset(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_session_list(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_session_list_cb(const store_session_t *s, void *arg);
static int ztctl_sid_prefix_cb(const store_session_t *s, void *arg);
static int ztctl_session_revoke(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_session_revoke_user(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);


/* The terminal state to restore if a signal arrives during a prompt. */
static struct termios         ztctl_tty_termios;
static volatile sig_atomic_t  ztctl_tty_saved;
static int                    ztctl_tty_fd;


/*
 * Each command's long options.  Its handler parses exactly these (through
 * cmd->opts) and "ztctl __complete" offers them, so that completion and
 * the commands cannot disagree.  --help comes last in every table.
 */
const struct option  ztctl_global_opts[] = {
    { "actor", required_argument, NULL, 'a' },
    ZTCTL_OPT_HELP,
    ZTCTL_OPT_END
};

const struct option  ztctl_opts_help[] = {
    ZTCTL_OPT_HELP,
    ZTCTL_OPT_END
};

const struct option  ztctl_opts_json[] = {
    ZTCTL_OPT_JSON,
    ZTCTL_OPT_HELP,
    ZTCTL_OPT_END
};

static const struct option  ztctl_device_enroll_opts[] = {
    { "cert", required_argument, NULL, 'C' },
    { "owner", required_argument, NULL, 'o' },
    { "name", required_argument, NULL, 'N' },
    { "platform", required_argument, NULL, 'p' },
    ZTCTL_OPT_HELP,
    ZTCTL_OPT_END
};

static const struct option  ztctl_device_status_opts[] = {
    { "reason", required_argument, NULL, 'r' },
    ZTCTL_OPT_HELP,
    ZTCTL_OPT_END
};

static const struct option  ztctl_device_posture_opts[] = {
    { "max-age", required_argument, NULL, 'm' },
    ZTCTL_OPT_JSON,
    ZTCTL_OPT_HELP,
    ZTCTL_OPT_END
};

static const struct option  ztctl_device_posture_set_opts[] = {
    { "os", required_argument, NULL, 'o' },
    { "os-version", required_argument, NULL, 'v' },
    { "patch-date", required_argument, NULL, 'p' },
    { "disk-encrypted", required_argument, NULL, 'd' },
    { "firewall", required_argument, NULL, 'f' },
    { "screen-lock", required_argument, NULL, 'l' },
    { "endpoint-protection", required_argument, NULL, 'e' },
    ZTCTL_OPT_HELP,
    ZTCTL_OPT_END
};

static const struct option  ztctl_device_reassign_opts[] = {
    { "owner", required_argument, NULL, 'o' },
    ZTCTL_OPT_HELP,
    ZTCTL_OPT_END
};

static const struct option  ztctl_user_create_opts[] = {
    { "display", required_argument, NULL, 'd' },
    { "group", required_argument, NULL, 'g' },
    ZTCTL_OPT_HELP,
    ZTCTL_OPT_END
};

static const struct option  ztctl_user_passwd_opts[] = {
    { "password-file", required_argument, NULL, 'f' },
    ZTCTL_OPT_HELP,
    ZTCTL_OPT_END
};

static const struct option  ztctl_user_groups_opts[] = {
    { "clear", no_argument, NULL, 'c' },
    ZTCTL_OPT_HELP,
    ZTCTL_OPT_END
};

static const struct option  ztctl_user_totp_enroll_opts[] = {
    { "algo", required_argument, NULL, 'a' },
    { "digits", required_argument, NULL, 'd' },
    { "code", required_argument, NULL, 'C' },
    { "keys", required_argument, NULL, 'k' },
    ZTCTL_OPT_HELP,
    ZTCTL_OPT_END
};

static const struct option  ztctl_user_totp_confirm_opts[] = {
    { "code", required_argument, NULL, 'C' },
    { "keys", required_argument, NULL, 'k' },
    ZTCTL_OPT_HELP,
    ZTCTL_OPT_END
};

static const struct option  ztctl_session_list_opts[] = {
    { "user", required_argument, NULL, 'u' },
    ZTCTL_OPT_JSON,
    ZTCTL_OPT_HELP,
    ZTCTL_OPT_END
};

static const struct option  ztctl_blocklist_add_opts[] = {
    { "feed", required_argument, NULL, 'f' },
    { "expires", required_argument, NULL, 'e' },
    { "reason", required_argument, NULL, 'r' },
    ZTCTL_OPT_HELP,
    ZTCTL_OPT_END
};

static const struct option  ztctl_blocklist_remove_opts[] = {
    { "feed", required_argument, NULL, 'f' },
    ZTCTL_OPT_HELP,
    ZTCTL_OPT_END
};

static const struct option  ztctl_explain_opts[] = {
    { "user", required_argument, NULL, 'u' },
    { "device", required_argument, NULL, 'd' },
    { "source", required_argument, NULL, 's' },
    ZTCTL_OPT_HELP,
    ZTCTL_OPT_END
};


static const ztctl_cmd_t  ztctl_device_cmds[] = {
    { "enroll", ztctl_device_enroll, ztctl_device_enroll_opts,
      "--cert FILE --owner USER [--name NAME] [--platform P]",
      "Enroll the device that holds the certificate FILE (PEM) for USER.\n"
      "The certificate must carry a urn:ztgate:device: URI SAN; its\n"
      "expiry becomes the enrollment's expiry." },
    { "list", ztctl_device_list, ztctl_opts_json, "[--json]",
      "List enrolled devices.  --json prints an array of the objects\n"
      "\"device show --json\" prints." },
    { "show", ztctl_device_show, ztctl_opts_json, "FP|ID [--json]",
      "Show one device.  FP is the certificate's SHA-256 fingerprint\n"
      "(64 hex digits, or a unique prefix of at least 8); ID is the\n"
      "device urn.  --json prints an object (keys in ztctl(8))." },
    { "revoke", ztctl_device_status, ztctl_device_status_opts,
      "FP|ID [--reason TEXT]",
      "Revoke a device: its requests are denied from trustd's next\n"
      "decision on (cached allow decisions expire within allow_ttl)." },
    { "quarantine", ztctl_device_status, ztctl_device_status_opts,
      "FP|ID [--reason TEXT]",
      "Quarantine a device: its requests are denied until it is\n"
      "activated again." },
    { "activate", ztctl_device_status, ztctl_device_status_opts,
      "FP|ID [--reason TEXT]",
      "Activate a quarantined or revoked device." },
    { "posture", ztctl_device_posture, ztctl_device_posture_opts,
      "FP|ID [--max-age DURATION] [--json]",
      "Show the last posture of a device: OS and version, patch date,\n"
      "disk encryption, firewall, screen lock, endpoint protection, when\n"
      "it was reported and received, who reported it (agent, staff:NAME,\n"
      "mdm:NAME), and whether it is stale: received longer ago than\n"
      "--max-age, by default posture_max_age of -c trustd.conf (24h with\n"
      "-s).  --json prints an object (keys in ztctl(8))." },
    { "posture-set", ztctl_device_posture_set, ztctl_device_posture_set_opts,
      "FP|ID [--os NAME] [--os-version V] [--patch-date YYYY-MM-DD]\n"
      "        [--disk-encrypted yes|no] [--firewall yes|no]\n"
      "        [--screen-lock yes|no] [--endpoint-protection yes|no]",
      "Record a device's posture by hand (source staff:ACTOR), received\n"
      "now.  It replaces the previous posture as a whole: a flag not\n"
      "given is unreported, an OS or patch date not given is unknown." },
    { "posture-import", ztctl_device_posture_import, ztctl_opts_help, "FILE",
      "Import postures exported from an MDM (source mdm:ACTOR), all in one\n"
      "transaction: every row is checked first, each bad row is reported\n"
      "(file line or array index, and the field), and if any is bad\n"
      "nothing is imported (exit 1).  FILE is CSV with the header\n"
      "  device,os,os_version,patch_date,disk_encrypted,firewall,"
      "screen_lock,endpoint_protection\n"
      "or a JSON array of objects with those keys.  device is a\n"
      "fingerprint (64 hex digits) or a device id; patch_date is\n"
      "YYYY-MM-DD; flags are yes/no/true/false/1/0 (CSV) or true/false\n"
      "(JSON); an empty value or null is unknown/unreported.  A device\n"
      "must be enrolled, not revoked, and given once." },
    { "reassign", ztctl_device_reassign, ztctl_device_reassign_opts,
      "FP|ID --owner USER",
      "Give a device to another owner.  Sessions of other users bound to\n"
      "this device are revoked in the same transaction; the change is in\n"
      "the audit log (device.reassign)." },
    { NULL, NULL, NULL, NULL, NULL }
};

static const struct option  policy_tool_opts[] = {
    { "policy", required_argument, NULL, 'p' },
    { "case", required_argument, NULL, 'C' },
    ZTCTL_OPT_HELP,
    ZTCTL_OPT_END
};

static const ztctl_cmd_t  ztctl_policy_cmds[] = {
    { "reload", ztctl_policy_reload, ztctl_opts_help, "",
      "Ask the running trustd to reload its configuration and policy.\n"
      "The reload is atomic: if the policy does not load, trustd keeps\n"
      "the running one and the errors are printed here (exit 1).\n"
      "Needs admin_listen in trustd.conf (-c)." },
    { "status", ztctl_policy_status, ztctl_opts_json, "[--json]",
      "Show the running trustd's pid, loaded policy version and\n"
      "connections.  Needs admin_listen in trustd.conf (-c).  --json\n"
      "prints an object: pid, policy, connections." },
    { "check", ztctl_policy_check, policy_tool_opts, "[--policy PATH]",
      "Check the policy (trustd.conf's, -c, or PATH) without loading it:\n"
      "every error and warning as file:line:col (ztpolicy check).  Exit\n"
      "0 clean, 1 errors." },
    { "test", ztctl_policy_test, policy_tool_opts,
      "[--policy PATH] CASES...",
      "Run the expected-decision cases in CASES against the policy\n"
      "(ztpolicy test, docs/policy.md section 12).  Exit 0 all pass." },
    { "explain", ztctl_policy_explain, policy_tool_opts,
      "[--policy PATH] CASEFILE [--case NAME]",
      "Show how the policy decides each case: every rule tried and why\n"
      "it matched or not (ztpolicy explain)." },
    { NULL, NULL, NULL, NULL, NULL }
};

static const ztctl_cmd_t  ztctl_user_cmds[] = {
    { "create", ztctl_user_create, ztctl_user_create_opts,
      "NAME [--display TEXT] [--group G]...",
      "Create user NAME (a-z, 0-9 and . _ -, starting with a letter or a\n"
      "digit, at most 63) in groups G (also '@'; at most 16).  The user\n"
      "has no password and no authenticator yet: see passwd and\n"
      "totp-enroll." },
    { "list", ztctl_user_list, ztctl_opts_json, "[--json]",
      "List users: groups, password set, TOTP state, status (active,\n"
      "locked, disabled), created.  --json prints an array of the\n"
      "objects \"user show --json\" prints." },
    { "show", ztctl_user_show, ztctl_opts_json, "NAME [--json]",
      "Show one user: groups, password set, TOTP state, failures, locked\n"
      "until, disabled, created and updated.  --json prints an object\n"
      "(keys in ztctl(8)); neither shows the password hash or the TOTP\n"
      "secret." },
    { "passwd", ztctl_user_passwd, ztctl_user_passwd_opts,
      "NAME [--password-file FILE]",
      "Set the password of NAME (at least 12 characters): the first line\n"
      "of FILE, else a line of standard input when it is not a terminal,\n"
      "else typed twice with echo off.  Only its scrypt hash is stored." },
    { "groups", ztctl_user_groups, ztctl_user_groups_opts,
      "NAME G... | NAME --clear",
      "Replace the groups of NAME with G... (or none with --clear)." },
    { "disable", ztctl_user_state, ztctl_opts_help, "NAME",
      "Disable NAME: no sign-in, and every session of the user is\n"
      "revoked in the same transaction." },
    { "enable", ztctl_user_state, ztctl_opts_help, "NAME",
      "Enable a disabled user again." },
    { "unlock", ztctl_user_state, ztctl_opts_help, "NAME",
      "Lift a lockout: clear the failure count and the lock." },
    { "delete", ztctl_user_delete, ztctl_opts_help, "NAME",
      "Delete NAME and revoke all their sessions (one transaction)." },
    { "totp-enroll", ztctl_user_totp_enroll, ztctl_user_totp_enroll_opts,
      "NAME [--algo ALGO] [--digits 6|8] [--code CODE] [--keys DIR]",
      "Enroll a new TOTP authenticator for NAME: a fresh secret, sealed\n"
      "with the identity keys (identity_keys of -c trustd.conf, or\n"
      "--keys DIR; created if missing), stored as pending; the otpauth://\n"
      "URI and its QR code are printed once.  The enrollment completes\n"
      "with a valid code from the authenticator: --code, or a line of\n"
      "standard input.  A wrong or missing code leaves it pending (exit\n"
      "1): finish it later with totp-confirm.  Refused while an active\n"
      "authenticator exists (totp-reset first).  ALGO is sha1 (the\n"
      "default: every authenticator app supports it), sha256 or sha512;\n"
      "6 digits by default." },
    { "totp-confirm", ztctl_user_totp_confirm, ztctl_user_totp_confirm_opts,
      "NAME [--code CODE] [--keys DIR]",
      "Complete a pending enrollment with a code from the authenticator\n"
      "(--code, or a line of standard input)." },
    { "totp-reset", ztctl_user_totp_reset, ztctl_opts_help, "NAME",
      "Remove the authenticator of NAME (lost or replaced device): the\n"
      "sealed secret is wiped, and the user's sessions are revoked in the\n"
      "same transaction.  Enroll a new one with totp-enroll." },
    { "webauthn-enroll", ztctl_user_webauthn_enroll, ztctl_opts_json,
      "NAME [--json]",
      "Print a one-time link (valid 15 minutes) with which NAME registers\n"
      "a security key or passkey on the portal after signing in with\n"
      "their password.  Only a hash of the code is stored." },
    { "webauthn-list", ztctl_user_webauthn_list, ztctl_opts_json,
      "NAME [--json]",
      "List the security keys of NAME: credential id, name, algorithm,\n"
      "sign count, created, last used, active or SUSPENDED (a sign count\n"
      "that went backwards: a possible clone)." },
    { "webauthn-remove", ztctl_user_webauthn_remove, ztctl_opts_help,
      "NAME CREDENTIAL",
      "Remove one security key of NAME (CREDENTIAL as webauthn-list\n"
      "shows it)." },
    { NULL, NULL, NULL, NULL, NULL }
};

static const ztctl_cmd_t  ztctl_session_cmds[] = {
    { "list", ztctl_session_list, ztctl_session_list_opts,
      "[--user NAME] [--json]",
      "List sessions (all, or NAME's): session id prefix, user, device\n"
      "bound, created, last second factor, last seen, expiry, revoked.\n"
      "--json prints an array of objects (keys in ztctl(8)); a session is\n"
      "named by the first 12 digits of its id there too." },
    { "revoke", ztctl_session_revoke, ztctl_opts_help, "SID",
      "Revoke one session: SID is its id, or a unique prefix of at least\n"
      "8 hex digits (as session list shows)." },
    { "revoke-user", ztctl_session_revoke_user, ztctl_opts_help, "NAME",
      "Revoke every session of NAME; prints how many." },
    { NULL, NULL, NULL, NULL, NULL }
};

static const ztctl_cmd_t  ztctl_keys_cmds[] = {
    { "rotate", ztctl_keys_rotate, ztctl_opts_help, "",
      "Make a new session-token key (identity_keys in trustd.conf, -c).\n"
      "The current key becomes session.key.prev: tokens it signed stay\n"
      "valid for key_grace, then must sign in again.  A running trustd\n"
      "with admin_listen is told to reload at once; otherwise send it\n"
      "SIGHUP.  Run as trustd's user so that it can read the new key." },
    { "rotate-secret", ztctl_keys_rotate_secret, ztctl_opts_help, "",
      "Replace secret.key, the key that seals TOTP secrets at rest: a\n"
      "new key is made (the old one kept as secret.key.prev), the running\n"
      "trustd is told to reload so that it opens both, every user's\n"
      "secret is re-sealed under the new key in one transaction (audit\n"
      "keys.reseal), and secret.key.prev is removed.  Interrupted, run it\n"
      "again: it finishes.  Needs -c, and trustd's user." },
    { NULL, NULL, NULL, NULL, NULL }
};

static const ztctl_cmd_t  ztctl_blocklist_cmds[] = {
    { "add", ztctl_blocklist_add, ztctl_blocklist_add_opts,
      "CIDR --feed NAME [--expires YYYY-MM-DD] [--reason TEXT]",
      "Add an address or CIDR range to the staff feed NAME (audit\n"
      "blocklist.add).  trustd applies it on its next reload: run\n"
      "\"ztctl policy reload\" or send it SIGHUP.  See docs/trust.md." },
    { "remove", ztctl_blocklist_remove, ztctl_blocklist_remove_opts,
      "CIDR --feed NAME",
      "Remove a staff entry (audit blocklist.remove); applied on reload." },
    { "list", ztctl_blocklist_list, ztctl_opts_json, "[--json]",
      "List the staff entries: feed, entry, expiry, who added it, why.\n"
      "Feeds from files (blocklist in trustd.conf) are not listed.\n"
      "--json prints an array of objects (keys in ztctl(8))." },
    { NULL, NULL, NULL, NULL, NULL }
};

/* "ztctl explain --request ...": the group's one command is its option */
static const ztctl_cmd_t  ztctl_explain_cmds[] = {
    { "--decision", ztctl_explain_decision, ztctl_opts_help, "SEQ",
      "Explain a recorded decision from the audit journal: the request,\n"
      "who and which device, the rule and where it is, the policy\n"
      "version, and the trust score with each signal's value and points\n"
      "as they were when trustd decided (same as \"audit show SEQ\")." },
    { "--request", ztctl_explain, ztctl_explain_opts,
      "\"METHOD URL\" [--user NAME] [--device FP|ID] [--source ADDR]",
      "Ask the running trustd (admin_listen, -c) how it would decide a\n"
      "request: as USER freshly signed in with password and TOTP in a new\n"
      "session, from the device FP (its certificate verified) and the\n"
      "source address ADDR (default 127.0.0.1).  It uses the running\n"
      "policy, weights, blocklists, user history and behaviour counters\n"
      "and records nothing.  Prints the decision, the rule, and the trust\n"
      "score with each signal's value, weight and contribution\n"
      "(docs/trust.md)." },
    { NULL, NULL, NULL, NULL, NULL }
};

const ztctl_group_t  ztctl_groups[] = {
    { "status", ztctl_status_cmds, "the store and the running trustd at a "
      "glance", 1 },
    { "explain", ztctl_explain_cmds, "explain how trustd would decide a "
      "request", 0 },
    { "blocklist", ztctl_blocklist_cmds, "staff blocklist entries", 0 },
    { "device", ztctl_device_cmds, "enroll and manage devices", 0 },
    { "user", ztctl_user_cmds, "create and manage users and their "
      "authenticators", 0 },
    { "session", ztctl_session_cmds, "list and revoke sign-in sessions", 0 },
    { "audit", ztctl_audit_cmds, "read the audit log", 0 },
    { "policy", ztctl_policy_cmds, "reload the running trustd's policy", 0 },
    { "keys", ztctl_keys_cmds, "rotate the session-token signing key and "
      "the TOTP sealing key", 0 },
    { "store", ztctl_store_cmds, "back up and restore the store", 0 },
    { "cluster", ztctl_cluster_cmds, "the cluster's nodes; leaving a "
      "cluster", 0 },
    { NULL, NULL, NULL, 0 }
};


static void
ztctl_usage(FILE *f)
{
    const ztctl_group_t  *g;
    const ztctl_cmd_t    *c;

    fprintf(f,
        "usage: ztctl [-c trustd.conf | -s store_dir] [--actor NAME] "
        "COMMAND ...\n"
        "\n"
        "  -c FILE        take the store from trustd's configuration FILE\n"
        "                 (default %s)\n"
        "  -s DIR         use the store in DIR\n"
        "  --actor NAME   name recorded in the audit log (default: your "
        "login name)\n"
        "\n"
        "commands:\n", CONFIG_DEFAULT_PATH);

    for (g = ztctl_groups; g->name != NULL; g++) {
        for (c = g->cmds; c->name != NULL; c++) {
            ztctl_synopsis(g->name, c, "  ", f);
        }
    }

    fprintf(f,
        "\n"
        "'ztctl GROUP --help' lists a group's commands, 'ztctl GROUP "
        "COMMAND --help'\n"
        "describes a command.  --json: see ztctl(8), JSON OUTPUT.\n"
        "\n"
        "exit status: %d ok, %d failed, %d usage error, %d not found.\n",
        ZTCTL_OK, ZTCTL_FAILED, ZTCTL_USAGE, ZTCTL_NOTFOUND);
}


static void
ztctl_group_usage(const ztctl_group_t *g, FILE *f)
{
    const ztctl_cmd_t  *c;

    fprintf(f, "ztctl %s: %s\n\ncommands:\n", g->name, g->summary);

    for (c = g->cmds; c->name != NULL; c++) {
        ztctl_synopsis(g->name, c, "  ztctl ", f);
    }
}


/*
 * "GROUP COMMAND ARGS" after prefix, a line; only "GROUP ARGS" for a
 * group that is its own command ("status").
 */
static void
ztctl_synopsis(const char *group, const ztctl_cmd_t *cmd,
    const char *prefix, FILE *f)
{
    int  self;

    self = strcmp(group, cmd->name) == 0;

    fprintf(f, "%s%s%s%s%s%s\n", prefix, group, self ? "" : " ",
            self ? "" : cmd->name, cmd->args[0] != '\0' ? " " : "",
            cmd->args);
}


static void
ztctl_cmd_usage(const ztctl_t *ctl, const ztctl_cmd_t *cmd, FILE *f)
{
    ztctl_synopsis(ctl->group, cmd, "usage: ztctl ", f);
    fprintf(f, "\n%s\n", cmd->help);
}


int
ztctl_usage_error(const ztctl_t *ctl, const ztctl_cmd_t *cmd,
    const char *msg)
{
    fprintf(stderr, "ztctl: %s\n", msg);
    ztctl_synopsis(ctl->group, cmd, "usage: ztctl ", stderr);

    return ZTCTL_USAGE;
}


int
ztctl_open(ztctl_t *ctl, int write)
{
    char  msg[CONFIG_PATH_MAX + 256];
    int   rc;

    rc = ztctl_open_quiet(ctl, write, msg, sizeof(msg));
    if (rc != ZTCTL_OK) {
        fprintf(stderr, "ztctl: %s\n", msg);
    }

    return rc;
}


void
ztctl_close_store(ztctl_t *ctl)
{
    cluster_free(ctl->cluster);
    ctl->cluster = NULL;
    store_close(ctl->store);
    ctl->store = NULL;
}


int
ztctl_open_quiet(ztctl_t *ctl, int write, char *msg, size_t size)
{
    config_t       *cfg;
    config_err_t    cerr;
    store_err_t     err;
    cluster_conf_t  cc;
    size_t          map_size;
    int             rc;

    /* open once per run; a read-only store is reopened for a write */
    if (ctl->store != NULL) {
        if (ctl->store_write || !write) {
            return ZTCTL_OK;
        }

        ztctl_close_store(ctl);
    }

    map_size = 0;
    cfg = NULL;

    if (ctl->store_dir != NULL) {
        snprintf(ctl->store_path, sizeof(ctl->store_path), "%s",
                 ctl->store_dir);

    } else {
        /* config_t is large: not on the stack */
        cfg = malloc(sizeof(*cfg));
        if (cfg == NULL) {
            snprintf(msg, size, "out of memory");
            return ZTCTL_FAILED;
        }

        rc = config_load(ctl->config_path, cfg, &cerr);
        if (rc != 0) {
            snprintf(msg, size, "%s", cerr.msg);
            free(cfg);
            return ZTCTL_FAILED;
        }

        snprintf(ctl->store_path, sizeof(ctl->store_path), "%s",
                 cfg->store);
        map_size = cfg->store_map_size;
    }

    if (store_open(&ctl->store, ctl->store_path, map_size,
                   write ? 0 : STORE_RDONLY, &err)
        != 0)
    {
        snprintf(msg, size, "%s", err.msg);
        free(cfg);
        return ZTCTL_FAILED;
    }

    ctl->store_write = write;

    /* cluster mode: a change is made in the cluster database or not at
     * all (docs/cluster.md) */
    if (write && cfg != NULL && cfg->cluster) {
        cluster_conf_init(&cc, cfg, "ztctl");

        if (cluster_attach(&ctl->cluster, &cc, ctl->store, msg, size) != 0) {
            /* said before anything was changed */
            if (strlen(msg) + 22 < size) {
                strcat(msg, "; nothing was changed");
            }
            free(cfg);
            ztctl_close_store(ctl);
            return ZTCTL_FAILED;
        }
    }

    free(cfg);

    return ZTCTL_OK;
}


/*
 * An option that no case of a command's getopt loop took: --help, or one
 * the command does not know.  Returns the exit status.
 */
int
ztctl_other_opt(const ztctl_t *ctl, const ztctl_cmd_t *cmd, int ch)
{
    if (ch == 'h') {
        ztctl_cmd_usage(ctl, cmd, stdout);
        return ZTCTL_OK;
    }

    return ztctl_usage_error(ctl, cmd, "invalid option");
}


int
ztctl_simple_opts(const ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv, int *json, int *status)
{
    int  ch;

    if (json != NULL) {
        *json = 0;
    }

    while ((ch = getopt_long(argc, argv, "h", cmd->opts, NULL)) != -1) {
        if (ch == 'j' && json != NULL) {
            *json = 1;
            continue;
        }

        *status = ztctl_other_opt(ctl, cmd, ch);
        return 1;
    }

    return 0;
}


/* ztctl_simple_opts() for a command whose one argument is a user NAME. */
static int
ztctl_user_only(const ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv, int *json, int *status)
{
    if (ztctl_simple_opts(ctl, cmd, argc, argv, json, status)) {
        return 1;
    }

    *status = ztctl_user_arg(ctl, cmd, argc, argv, 1);

    return *status != ZTCTL_OK;
}


/*
 * ztctl_simple_opts() for a list command without arguments, then open
 * the store read-only.  Returns as ztctl_simple_opts().
 */
static int
ztctl_list_start(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv, int *json, int *status)
{
    if (ztctl_simple_opts(ctl, cmd, argc, argv, json, status)) {
        return 1;
    }

    if (optind != argc) {
        *status = ztctl_usage_error(ctl, cmd, "unexpected argument");
        return 1;
    }

    *status = ztctl_open(ctl, 0);

    return *status != ZTCTL_OK;
}


/* Report a failed store call; returns ZTCTL_FAILED. */
int
ztctl_store_failed(const store_err_t *err)
{
    fprintf(stderr, "ztctl: %s\n", err->msg);

    return ZTCTL_FAILED;
}


/*
 * Open the store and find the device named by arg (see ztctl_resolve()).
 * Returns a ZTCTL_* exit status, having reported any problem.
 */
static int
ztctl_open_device(ztctl_t *ctl, int write, const char *arg,
    store_device_t *dev)
{
    int  rc;

    rc = ztctl_open(ctl, write);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    return ztctl_resolve(ctl, arg, dev);
}


static int
ztctl_default_actor(ztctl_t *ctl)
{
    struct passwd  *pw;

    pw = getpwuid(getuid());

    if (pw != NULL && strlen(pw->pw_name) < sizeof(ctl->actor_buf)) {
        snprintf(ctl->actor_buf, sizeof(ctl->actor_buf), "%s",
                 pw->pw_name);
    } else {
        snprintf(ctl->actor_buf, sizeof(ctl->actor_buf), "uid:%ld",
                 (long) getuid());
    }

    ctl->actor = ctl->actor_buf;

    return 0;
}


/* Printable text of at most max - 1 bytes (UTF-8 allowed). */
static int
ztctl_text_ok(const char *s, size_t max, int allow_empty)
{
    size_t  len;

    len = strlen(s);

    if (len >= max || (len == 0 && !allow_empty)) {
        return 0;
    }

    for (; *s != '\0'; s++) {
        if ((unsigned char) *s < 0x20 || *s == 0x7f) {
            return 0;
        }
    }

    return 1;
}


/* A user name: letters, digits and . _ @ - only. */
static int
ztctl_name_ok(const char *s, size_t max)
{
    size_t  len;

    len = strlen(s);

    if (len == 0 || len >= max) {
        return 0;
    }

    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789._@-") == len;
}


void
ztctl_time(int64_t t, char *buf, size_t size)
{
    struct tm  tm;
    time_t     tt;

    if (t == 0) {
        snprintf(buf, size, "never");
        return;
    }

    tt = (time_t) t;
    if (gmtime_r(&tt, &tm) == NULL
        || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    {
        snprintf(buf, size, "%lld", (long long) t);
    }
}


/*
 * Normalize a fingerprint or fingerprint prefix: hex digits with optional
 * ':' separators, any case.  Returns the number of digits, or -1.
 */
static int
ztctl_hex_fp(const char *s, char *hex, size_t size)
{
    size_t  n;

    for (n = 0; *s != '\0'; s++) {
        if (*s == ':') {
            continue;
        }

        if (!isxdigit((unsigned char) *s) || n + 1 >= size) {
            return -1;
        }

        hex[n++] = (char) tolower((unsigned char) *s);
    }

    hex[n] = '\0';

    return (int) n;
}


static int
ztctl_prefix_cb(const store_device_t *dev, void *arg)
{
    ztctl_prefix_t  *p = arg;
    char             hex[2 * STORE_FP_LEN + 1];

    store_fp_hex(dev->fp, hex);

    if (strncmp(hex, p->prefix, p->len) == 0) {
        if (p->matches == 0) {
            *p->out = *dev;
        }

        p->matches++;
    }

    return 0;
}


/*
 * Find the device named by arg (urn, full fingerprint, or unique prefix).
 * Returns a ZTCTL_* exit status, having reported any problem.
 */
static int
ztctl_resolve(ztctl_t *ctl, const char *arg, store_device_t *dev)
{
    ztctl_prefix_t   p;
    store_err_t      err;
    store_view_t    *view;
    uint8_t          fp[STORE_FP_LEN];
    unsigned         hi, lo;
    size_t           i;
    int              n, rc;

    if (strncmp(arg, STORE_DEVICE_URN, sizeof(STORE_DEVICE_URN) - 1) == 0) {
        rc = store_device_find_id(ctl->store, arg, dev, &err);
        goto result;
    }

    n = ztctl_hex_fp(arg, p.prefix, sizeof(p.prefix));
    if (n < ZTCTL_MIN_PREFIX) {
        fprintf(stderr, "ztctl: \"%s\" is neither a device id (%s...) nor "
                "a fingerprint (64 hex digits, or a prefix of at least "
                "%d)\n", arg, STORE_DEVICE_URN, ZTCTL_MIN_PREFIX);
        return ZTCTL_USAGE;
    }

    if (n == 2 * STORE_FP_LEN) {
        for (i = 0; i < STORE_FP_LEN; i++) {
            hi = (unsigned) (isdigit((unsigned char) p.prefix[2 * i])
                             ? p.prefix[2 * i] - '0'
                             : p.prefix[2 * i] - 'a' + 10);
            lo = (unsigned) (isdigit((unsigned char) p.prefix[2 * i + 1])
                             ? p.prefix[2 * i + 1] - '0'
                             : p.prefix[2 * i + 1] - 'a' + 10);
            fp[i] = (uint8_t) (hi << 4 | lo);
        }

        view = NULL;
        rc = store_view_begin(ctl->store, &view, &err);
        if (rc == 0) {
            rc = store_device_get(view, fp, dev, &err);
        }

        store_view_free(view);
        goto result;
    }

    p.len = (size_t) n;
    p.out = dev;
    p.matches = 0;

    rc = store_device_list(ctl->store, ztctl_prefix_cb, &p, &err);
    if (rc == 0 && p.matches == 0) {
        rc = STORE_NOTFOUND;
    }

    if (rc == 0 && p.matches > 1) {
        fprintf(stderr, "ztctl: fingerprint prefix \"%s\" matches %u "
                "devices; give more digits\n", arg, p.matches);
        return ZTCTL_FAILED;
    }

result:

    if (rc == STORE_NOTFOUND) {
        fprintf(stderr, "ztctl: no device \"%s\"\n", arg);
        return ZTCTL_NOTFOUND;
    }

    if (rc != 0) {
        fprintf(stderr, "ztctl: %s\n", err.msg);
        return ZTCTL_FAILED;
    }

    return ZTCTL_OK;
}


static int
ztctl_device_enroll(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    store_device_t   dev;
    store_err_t      err;
    ca_cert_info_t   info;
    ca_err_t         cerr;
    enroll_err_t     eerr;
    const char      *cert, *owner, *name, *platform;
    char             hex[2 * STORE_FP_LEN + 1], when[32];
    int              ch, rc;

    cert = NULL;
    owner = NULL;
    name = "";
    platform = "";

    while ((ch = getopt_long(argc, argv, "h", cmd->opts, NULL)) != -1) {
        switch (ch) {
        case 'C':
            cert = optarg;
            break;
        case 'o':
            owner = optarg;
            break;
        case 'N':
            name = optarg;
            break;
        case 'p':
            platform = optarg;
            break;
        default:
            return ztctl_other_opt(ctl, cmd, ch);
        }
    }

    if (optind != argc) {
        return ztctl_usage_error(ctl, cmd, "unexpected argument");
    }

    if (cert == NULL || owner == NULL) {
        return ztctl_usage_error(ctl, cmd, "--cert and --owner are "
                                 "required");
    }

    memset(&dev, 0, sizeof(dev));

    if (!ztctl_name_ok(owner, sizeof(dev.owner))) {
        return ztctl_usage_error(ctl, cmd, "--owner: a user name of "
                                 "letters, digits and . _ @ - (at most "
                                 "63)");
    }

    if (!ztctl_text_ok(name, sizeof(dev.name), 1)
        || !ztctl_text_ok(platform, sizeof(dev.platform), 1))
    {
        return ztctl_usage_error(ctl, cmd, "--name (at most 127 bytes) and "
                                 "--platform (at most 63) must be "
                                 "printable text");
    }

    if (ca_cert_info_file(cert, &info, &cerr) != 0) {
        fprintf(stderr, "ztctl: %s: %s\n", cert, cerr.msg);
        return ZTCTL_FAILED;
    }

    /* the record as the web console makes it too (trustd/enroll.c) */
    if (enroll_device_record(info.fp, info.device_id, info.not_after, owner,
                             name, platform, (int64_t) time(NULL), &dev,
                             &eerr)
        != ENROLL_OK)
    {
        if (info.not_after != 0 && info.not_after < (int64_t) time(NULL)) {
            ztctl_time(info.not_after, when, sizeof(when));
            fprintf(stderr, "ztctl: %s: the certificate expired on %s\n",
                    cert, when);
        } else {
            fprintf(stderr, "ztctl: %s: %s\n", cert, eerr.msg);
        }
        return ZTCTL_FAILED;
    }

    rc = ztctl_open(ctl, 1);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    if (store_device_enroll(ctl->store, &dev, ctl->actor, &err) != 0) {
        return ztctl_store_failed(&err);
    }

    store_fp_hex(dev.fp, hex);
    ztctl_time(dev.expires_at, when, sizeof(when));

    printf("enrolled %s\nfingerprint %s\nowner %s\nexpires %s\n", dev.id,
           hex, dev.owner, when);

    return ZTCTL_OK;
}


/*
 * Append obj (NULL: out of memory) to the list's JSON array.  Returns
 * what a list callback returns: 0 to go on, 1 to stop after a failure.
 */
static int
ztctl_list_add(ztctl_list_t *l, json_t *obj)
{
    if (json_array_append_new(l->json, obj) != 0) {
        l->failed = 1;
        return 1;
    }

    return 0;
}


/*
 * Finish a list: rc and err are the store list function's result.  The
 * JSON array, when there is one, is printed (and released) if nothing
 * failed.  Returns the exit status.
 */
static int
ztctl_list_end(ztctl_list_t *l, int rc, const store_err_t *err)
{
    if (rc != 0) {
        json_decref(l->json);
        return ztctl_store_failed(err);
    }

    if (l->json == NULL) {
        return ZTCTL_OK;
    }

    if (l->failed) {
        json_decref(l->json);
        return ztctl_json_print(NULL);
    }

    return ztctl_json_print(l->json);
}


static int
ztctl_device_list_cb(const store_device_t *dev, void *arg)
{
    ztctl_list_t  *l = arg;
    char           hex[2 * STORE_FP_LEN + 1], when[32];
    int64_t        now = l->now;

    if (l->json != NULL) {
        return ztctl_list_add(l, ztctl_json_device(dev, now));
    }

    store_fp_hex(dev->fp, hex);
    hex[16] = '\0';
    ztctl_time(dev->expires_at, when, sizeof(when));

    printf("%-16s  %-54s  %-16s  %-20s  %-11s  %s%s\n", hex, dev->id,
           dev->owner, dev->name[0] != '\0' ? dev->name : "-",
           store_device_status_name(dev->status), when,
           dev->expires_at != 0 && dev->expires_at < now ? " (expired)"
                                                         : "");

    return 0;
}


static int
ztctl_device_list(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    ztctl_list_t  l;
    store_err_t   err;
    int           json, rc;

    if (ztctl_list_start(ctl, cmd, argc, argv, &json, &rc)) {
        return rc;
    }

    memset(&l, 0, sizeof(l));
    l.now = (int64_t) time(NULL);

    if (json) {
        l.json = json_array();
        if (l.json == NULL) {
            return ztctl_json_print(NULL);
        }

    } else {
        printf("%-16s  %-54s  %-16s  %-20s  %-11s  %s\n", "FINGERPRINT",
               "ID", "OWNER", "NAME", "STATUS", "EXPIRES");
    }

    rc = store_device_list(ctl->store, ztctl_device_list_cb, &l, &err);

    return ztctl_list_end(&l, rc, &err);
}


static int
ztctl_device_show(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    store_device_t  dev;
    char            hex[2 * STORE_FP_LEN + 1], enrolled[32], expires[32];
    char            updated[32];
    int             json, rc;

    if (ztctl_simple_opts(ctl, cmd, argc, argv, &json, &rc)) {
        return rc;
    }

    if (argc - optind != 1) {
        return ztctl_usage_error(ctl, cmd, "expected one FP or ID");
    }

    rc = ztctl_open_device(ctl, 0, argv[optind], &dev);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    if (json) {
        return ztctl_json_print(ztctl_json_device(&dev,
                                                  (int64_t) time(NULL)));
    }

    store_fp_hex(dev.fp, hex);
    ztctl_time(dev.enrolled_at, enrolled, sizeof(enrolled));
    ztctl_time(dev.expires_at, expires, sizeof(expires));
    ztctl_time(dev.updated_at, updated, sizeof(updated));

    printf("fingerprint  %s\n"
           "id           %s\n"
           "owner        %s\n"
           "name         %s\n"
           "platform     %s\n"
           "status       %s\n"
           "enrolled     %s by %s\n"
           "expires      %s%s\n"
           "updated      %s\n",
           hex, dev.id, dev.owner, dev.name, dev.platform,
           store_device_status_name(dev.status), enrolled, dev.enrolled_by,
           expires,
           dev.expires_at != 0 && dev.expires_at < (int64_t) time(NULL)
           ? " (expired)" : "",
           updated);

    return ZTCTL_OK;
}


/* revoke, quarantine and activate */
static int
ztctl_device_status(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    store_device_status_t   status;
    store_device_t          dev;
    store_err_t             err;
    const char             *reason;
    int                     ch, rc;

    if (strcmp(cmd->name, "revoke") == 0) {
        status = STORE_DEVICE_REVOKED;
    } else if (strcmp(cmd->name, "quarantine") == 0) {
        status = STORE_DEVICE_QUARANTINED;
    } else {
        status = STORE_DEVICE_ACTIVE;
    }

    reason = NULL;

    while ((ch = getopt_long(argc, argv, "h", cmd->opts, NULL)) != -1) {
        switch (ch) {
        case 'r':
            reason = optarg;
            break;
        default:
            return ztctl_other_opt(ctl, cmd, ch);
        }
    }

    if (argc - optind != 1) {
        return ztctl_usage_error(ctl, cmd, "expected one FP or ID");
    }

    if (reason != NULL && !ztctl_text_ok(reason, 200, 1)) {
        return ztctl_usage_error(ctl, cmd, "--reason must be printable "
                                 "text of at most 199 bytes");
    }

    rc = ztctl_open_device(ctl, 1, argv[optind], &dev);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    rc = store_device_set_status(ctl->store, dev.fp, status, ctl->actor,
                                 reason, &err);
    if (rc == STORE_NOTFOUND) {
        fprintf(stderr, "ztctl: device %s disappeared\n", dev.id);
        return ZTCTL_NOTFOUND;
    }

    if (rc != 0) {
        return ztctl_store_failed(&err);
    }

    printf("%s: %s -> %s\n", dev.id, store_device_status_name(dev.status),
           store_device_status_name(status));

    return ZTCTL_OK;
}


/*
 * The age after which a posture counts as stale: --max-age, else
 * posture_max_age of the configuration the store comes from, else the
 * default (24h).  Returns a ZTCTL_* status.
 */
static int
ztctl_posture_max_age(ztctl_t *ctl, const char *opt, int64_t *max_age)
{
    config_t      *cfg;
    config_err_t   cerr;
    uint32_t       ms;

    if (opt != NULL) {
        if (config_parse_duration(opt, 30u * 86400 * 1000, &ms) != 0
            || ms < 1000)
        {
            fprintf(stderr, "ztctl: --max-age \"%s\": expected a duration "
                    "(s, m, h or d suffix) from 1s to 30d\n", opt);
            return ZTCTL_USAGE;
        }

        *max_age = ms / 1000;
        return ZTCTL_OK;
    }

    *max_age = 24 * 3600;

    if (ctl->store_dir != NULL) {
        return ZTCTL_OK;
    }

    /* config_t is large: not on the stack */
    cfg = malloc(sizeof(*cfg));
    if (cfg == NULL) {
        fprintf(stderr, "ztctl: out of memory\n");
        return ZTCTL_FAILED;
    }

    if (config_load(ctl->config_path, cfg, &cerr) != 0) {
        fprintf(stderr, "ztctl: %s\n", cerr.msg);
        free(cfg);
        return ZTCTL_FAILED;
    }

    *max_age = cfg->posture_max_age_ms / 1000;
    free(cfg);

    return ZTCTL_OK;
}


static const char *
ztctl_flag_text(store_flag_t flag)
{
    switch (flag) {
    case STORE_FLAG_TRUE:  return "yes";
    case STORE_FLAG_FALSE: return "no";
    default:               return "unreported";
    }
}


/* yes/no/true/false/1/0 in any case; "" is unreported.  0 or -1. */
static int
ztctl_flag_parse(const char *s, store_flag_t *flag)
{
    if (s[0] == '\0') {
        *flag = STORE_FLAG_UNREPORTED;

    } else if (strcasecmp(s, "yes") == 0 || strcasecmp(s, "true") == 0
               || strcmp(s, "1") == 0)
    {
        *flag = STORE_FLAG_TRUE;

    } else if (strcasecmp(s, "no") == 0 || strcasecmp(s, "false") == 0
               || strcmp(s, "0") == 0)
    {
        *flag = STORE_FLAG_FALSE;

    } else {
        return -1;
    }

    return 0;
}


/* YYYY-MM-DD (UTC midnight) into *t; "" is 0 (unknown).  0 or -1. */
static int
ztctl_date_parse(const char *s, int64_t *t)
{
    struct tm   tm;
    time_t      tt;
    int         y, m, d, n;

    if (s[0] == '\0') {
        *t = 0;
        return 0;
    }

    n = 0;
    if (strlen(s) != 10
        || sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10
        || !isdigit((unsigned char) s[0]) || s[4] != '-' || s[7] != '-'
        || y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1 || d > 31)
    {
        return -1;
    }

    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;

    tt = timegm(&tm);

    /* timegm() normalizes 2024-02-30 into March: refuse it */
    if (tt == (time_t) -1 || tm.tm_mday != d || tm.tm_mon != m - 1) {
        return -1;
    }

    *t = (int64_t) tt;

    return 0;
}


void
ztctl_date(int64_t t, char *buf, size_t size)
{
    struct tm  tm;
    time_t     tt;

    tt = (time_t) t;
    if (t == 0 || gmtime_r(&tt, &tm) == NULL
        || strftime(buf, size, "%Y-%m-%d", &tm) == 0)
    {
        snprintf(buf, size, "unknown");
    }
}


static int
ztctl_device_posture(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    store_device_t    dev;
    store_posture_t   p;
    store_err_t       err;
    const char       *max_opt;
    char              hex[2 * STORE_FP_LEN + 1], patch[16], reported[32];
    char              received[32];
    int64_t           max_age, age;
    int               ch, rc, json;

    max_opt = NULL;
    json = 0;

    while ((ch = getopt_long(argc, argv, "h", cmd->opts, NULL)) != -1) {
        switch (ch) {
        case 'm':
            max_opt = optarg;
            break;
        case 'j':
            json = 1;
            break;
        default:
            return ztctl_other_opt(ctl, cmd, ch);
        }
    }

    if (argc - optind != 1) {
        return ztctl_usage_error(ctl, cmd, "expected one FP or ID");
    }

    rc = ztctl_posture_max_age(ctl, max_opt, &max_age);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    rc = ztctl_open_device(ctl, 0, argv[optind], &dev);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    rc = store_posture_find(ctl->store, dev.fp, &p, &err);
    if (rc < 0) {
        return ztctl_store_failed(&err);
    }

    if (json) {
        return ztctl_json_print(ztctl_json_posture(&dev,
                                    rc == STORE_NOTFOUND ? NULL : &p,
                                    (int64_t) time(NULL), max_age));
    }

    store_fp_hex(dev.fp, hex);

    printf("device               %s\n"
           "fingerprint          %s\n", dev.id, hex);

    if (rc == STORE_NOTFOUND) {
        printf("posture              never reported\n"
               "state                stale (never reported)\n");
        return ZTCTL_OK;
    }

    ztctl_date(p.patch_time, patch, sizeof(patch));
    ztctl_time(p.reported_at, reported, sizeof(reported));
    ztctl_time(p.received_at, received, sizeof(received));
    age = (int64_t) time(NULL) - p.received_at;

    printf("os                   %s\n"
           "os version           %s\n"
           "patch date           %s\n"
           "disk encrypted       %s\n"
           "firewall             %s\n"
           "screen lock          %s\n"
           "endpoint protection  %s\n"
           "reported at          %s%s\n"
           "received at          %s\n"
           "source               %s\n",
           p.os[0] != '\0' ? p.os : "unknown",
           p.os_version[0] != '\0' ? p.os_version : "unknown",
           patch, ztctl_flag_text(p.disk_encrypted),
           ztctl_flag_text(p.firewall), ztctl_flag_text(p.screen_lock),
           ztctl_flag_text(p.endpoint_protection),
           p.reported_at != 0 ? reported : "unknown",
           p.reported_at != 0 ? " (the reporter's clock)" : "",
           received, p.source);

    if (age > max_age) {
        printf("state                stale (received %llds ago; max age "
               "%llds)\n", (long long) age, (long long) max_age);
    } else {
        printf("state                fresh (received %llds ago; max age "
               "%llds)\n", (long long) (age > 0 ? age : 0),
               (long long) max_age);
    }

    return ZTCTL_OK;
}


static int
ztctl_device_posture_set(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    store_posture_t   p;
    store_device_t    dev;
    store_err_t       err;
    store_flag_t     *flag;
    const char       *what;
    unsigned          given;
    int               ch, rc;

    memset(&p, 0, sizeof(p));
    given = 0;

    while ((ch = getopt_long(argc, argv, "h", cmd->opts, NULL)) != -1) {
        flag = NULL;
        what = NULL;

        switch (ch) {
        case 'o':
        case 'v':
            if (!store_posture_text_ok(optarg)) {
                return ztctl_usage_error(ctl, cmd, ch == 'o'
                    ? "--os: printable ASCII, at most 64 bytes"
                    : "--os-version: printable ASCII, at most 64 bytes");
            }
            snprintf(ch == 'o' ? p.os : p.os_version, sizeof(p.os), "%s",
                     optarg);
            break;
        case 'p':
            if (ztctl_date_parse(optarg, &p.patch_time) != 0
                || p.patch_time == 0)
            {
                return ztctl_usage_error(ctl, cmd, "--patch-date: a date "
                                         "YYYY-MM-DD");
            }
            break;
        case 'd':
            flag = &p.disk_encrypted;
            what = "--disk-encrypted: yes or no";
            break;
        case 'f':
            flag = &p.firewall;
            what = "--firewall: yes or no";
            break;
        case 'l':
            flag = &p.screen_lock;
            what = "--screen-lock: yes or no";
            break;
        case 'e':
            flag = &p.endpoint_protection;
            what = "--endpoint-protection: yes or no";
            break;
        default:
            return ztctl_other_opt(ctl, cmd, ch);
        }

        if (flag != NULL
            && (optarg[0] == '\0' || ztctl_flag_parse(optarg, flag) != 0))
        {
            return ztctl_usage_error(ctl, cmd, what);
        }

        given++;
    }

    if (argc - optind != 1) {
        return ztctl_usage_error(ctl, cmd, "expected one FP or ID");
    }

    if (given == 0) {
        return ztctl_usage_error(ctl, cmd, "give at least one posture "
                                 "option");
    }

    rc = ztctl_open_device(ctl, 1, argv[optind], &dev);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    snprintf(p.source, sizeof(p.source), "staff:%s", ctl->actor);
    p.reported_at = (int64_t) time(NULL);

    rc = store_posture_put(ctl->store, dev.fp, &p, ctl->actor, &err);
    if (rc == STORE_NOTFOUND) {
        fprintf(stderr, "ztctl: device %s disappeared\n", dev.id);
        return ZTCTL_NOTFOUND;
    }

    if (rc != 0) {
        return ztctl_store_failed(&err);
    }

    printf("%s: posture recorded (source %s)\n", dev.id, p.source);

    return ZTCTL_OK;
}


/*
 * The device of an import row: a full fingerprint or a device id (no
 * prefixes: in a bulk file an ambiguous prefix is a mistake).  Returns 0,
 * or -1 with the reason in msg.
 */
static int
ztctl_import_device(ztctl_t *ctl, const char *arg, store_device_t *dev,
    char *msg, size_t size)
{
    store_view_t  *view;
    store_err_t    err;
    char           hex[2 * STORE_FP_LEN + 1];
    uint8_t        fp[STORE_FP_LEN];
    size_t         i;
    int            rc;

    if (strncmp(arg, STORE_DEVICE_URN, sizeof(STORE_DEVICE_URN) - 1) == 0) {
        rc = store_device_find_id(ctl->store, arg, dev, &err);

    } else {
        if (ztctl_hex_fp(arg, hex, sizeof(hex)) != 2 * STORE_FP_LEN) {
            snprintf(msg, size, "expected a fingerprint (64 hex digits) or "
                     "a device id (%s...)", STORE_DEVICE_URN);
            return -1;
        }

        for (i = 0; i < STORE_FP_LEN; i++) {
            unsigned  byte;

            if (sscanf(hex + 2 * i, "%2x", &byte) != 1) {
                snprintf(msg, size, "invalid fingerprint");
                return -1;
            }
            fp[i] = (uint8_t) byte;
        }

        view = NULL;
        rc = store_view_begin(ctl->store, &view, &err);
        if (rc == 0) {
            rc = store_device_get(view, fp, dev, &err);
        }
        store_view_free(view);
    }

    if (rc == STORE_NOTFOUND) {
        snprintf(msg, size, "no enrolled device \"%.80s\"", arg);
        return -1;
    }

    if (rc != 0) {
        snprintf(msg, size, "%s", err.msg);
        return -1;
    }

    if (dev->status == STORE_DEVICE_REVOKED) {
        snprintf(msg, size, "device %s is revoked", dev->id);
        return -1;
    }

    return 0;
}


/* Remember one good row.  -1 only when out of memory or over the limit. */
static int
ztctl_import_add(ztctl_import_t *imp, const store_posture_t *p,
    const char *where)
{
    store_posture_t   *rows;
    char             (*wh)[48];
    size_t             cap;

    if (imp->n == ZTCTL_IMPORT_MAX_ROWS) {
        fprintf(stderr, "ztctl: %s: more than %d rows\n", imp->file,
                ZTCTL_IMPORT_MAX_ROWS);
        return -1;
    }

    if (imp->n == imp->cap) {
        cap = imp->cap ? imp->cap * 2 : 64;

        rows = realloc(imp->rows, cap * sizeof(*rows));
        if (rows == NULL) {
            fprintf(stderr, "ztctl: out of memory\n");
            return -1;
        }
        imp->rows = rows;

        wh = realloc(imp->where, cap * sizeof(*wh));
        if (wh == NULL) {
            fprintf(stderr, "ztctl: out of memory\n");
            return -1;
        }
        imp->where = wh;

        imp->cap = cap;
    }

    imp->rows[imp->n] = *p;
    snprintf(imp->where[imp->n], sizeof(imp->where[0]), "%s", where);
    imp->n++;

    return 0;
}


/*
 * Check one row (vals in ztctl_import_fields order, NULL for a JSON null
 * or a missing key) and remember it.  A bad row is reported as
 * "FILE: WHERE: field F: reason" and counted; -1 only for a failure that
 * stops the import (memory).
 */
static int
ztctl_import_row(ztctl_t *ctl, ztctl_import_t *imp,
    const char *const *vals, const char *where)
{
    store_posture_t   p;
    store_device_t    dev;
    store_flag_t     *flags[4];
    const char       *v;
    char              msg[256];
    size_t            i;
    int               f;

    memset(&p, 0, sizeof(p));
    msg[0] = '\0';
    f = 0;

    v = vals[0];
    if (v == NULL || v[0] == '\0') {
        snprintf(msg, sizeof(msg), "a device is required");
        goto bad;
    }

    if (ztctl_import_device(ctl, v, &dev, msg, sizeof(msg)) != 0) {
        goto bad;
    }

    memcpy(p.fp, dev.fp, STORE_FP_LEN);

    for (i = 0; i < imp->n; i++) {
        if (memcmp(imp->rows[i].fp, p.fp, STORE_FP_LEN) == 0) {
            snprintf(msg, sizeof(msg), "device %s is also in %s", dev.id,
                     imp->where[i]);
            goto bad;
        }
    }

    for (f = 1; f <= 2; f++) {
        v = vals[f] != NULL ? vals[f] : "";
        if (!store_posture_text_ok(v)) {
            snprintf(msg, sizeof(msg), "printable ASCII of at most %d "
                     "bytes", STORE_POSTURE_TEXT_MAX - 1);
            goto bad;
        }
        snprintf(f == 1 ? p.os : p.os_version, sizeof(p.os), "%s", v);
    }

    f = 3;
    if (ztctl_date_parse(vals[3] != NULL ? vals[3] : "", &p.patch_time)
        != 0)
    {
        snprintf(msg, sizeof(msg), "\"%.40s\" is not a date YYYY-MM-DD",
                 vals[3]);
        goto bad;
    }

    flags[0] = &p.disk_encrypted;
    flags[1] = &p.firewall;
    flags[2] = &p.screen_lock;
    flags[3] = &p.endpoint_protection;

    for (f = 4; f < ZTCTL_IMPORT_FIELDS; f++) {
        if (ztctl_flag_parse(vals[f] != NULL ? vals[f] : "", flags[f - 4])
            != 0)
        {
            snprintf(msg, sizeof(msg), "\"%.40s\" is not yes, no, true, "
                     "false, 1, 0 or empty", vals[f]);
            goto bad;
        }
    }

    snprintf(p.source, sizeof(p.source), "%s", imp->source);

    return ztctl_import_add(imp, &p, where);

bad:

    fprintf(stderr, "ztctl: %s: %s: field \"%s\": %s\n", imp->file, where,
            ztctl_import_fields[f], msg);
    imp->errors++;

    return 0;
}


/*
 * Split one CSV line in place into at most max fields: commas, fields
 * optionally in double quotes with "" for a quote (no line breaks inside
 * a field).  Returns 0, or -1 for a malformed quote or too many fields.
 */
static int
ztctl_csv_split(char *line, char **fields, size_t max, size_t *n)
{
    char  *r, *w;

    *n = 0;
    r = line;

    for ( ;; ) {
        if (*n == max) {
            return -1;
        }

        w = r;
        fields[(*n)++] = w;

        if (*r == '"') {
            r++;
            for ( ;; ) {
                if (*r == '\0') {
                    return -1;
                }
                if (*r == '"') {
                    if (r[1] == '"') {
                        *w++ = '"';
                        r += 2;
                        continue;
                    }
                    r++;
                    break;
                }
                *w++ = *r++;
            }

            if (*r != ',' && *r != '\0') {
                return -1;
            }

        } else {
            while (*r != ',' && *r != '\0') {
                if (*r == '"') {
                    return -1;
                }
                *w++ = *r++;
            }
        }

        if (*r == '\0') {
            *w = '\0';
            return 0;
        }

        r++;
        *w = '\0';
    }
}


static int
ztctl_import_csv(ztctl_t *ctl, ztctl_import_t *imp, char *text)
{
    char        *line, *next, *fields[ZTCTL_IMPORT_FIELDS + 1];
    const char  *vals[ZTCTL_IMPORT_FIELDS];
    char         where[48];
    size_t       len, n, i;
    unsigned     lineno;
    int          header;

    header = 0;
    lineno = 0;

    for (line = text; line != NULL; line = next) {
        lineno++;

        next = strchr(line, '\n');
        if (next != NULL) {
            *next++ = '\0';
        }

        len = strlen(line);
        if (len > 0 && line[len - 1] == '\r') {
            line[--len] = '\0';
        }

        if (len == 0) {
            continue;
        }

        snprintf(where, sizeof(where), "line %u", lineno);

        if (ztctl_csv_split(line, fields, ZTCTL_IMPORT_FIELDS + 1, &n) != 0
            || n != ZTCTL_IMPORT_FIELDS)
        {
            fprintf(stderr, "ztctl: %s: %s: expected %d comma-separated "
                    "fields (double quotes allowed around a field)\n",
                    imp->file, where, ZTCTL_IMPORT_FIELDS);
            imp->errors++;
            if (!header) {
                return 0;
            }
            continue;
        }

        if (!header) {
            for (i = 0; i < ZTCTL_IMPORT_FIELDS; i++) {
                if (strcmp(fields[i], ztctl_import_fields[i]) != 0) {
                    fprintf(stderr, "ztctl: %s: %s: expected the header "
                            "device,os,os_version,patch_date,"
                            "disk_encrypted,firewall,screen_lock,"
                            "endpoint_protection\n", imp->file, where);
                    imp->errors++;
                    return 0;
                }
            }

            header = 1;
            continue;
        }

        for (i = 0; i < ZTCTL_IMPORT_FIELDS; i++) {
            vals[i] = fields[i];
        }

        if (ztctl_import_row(ctl, imp, vals, where) != 0) {
            return -1;
        }
    }

    if (!header) {
        fprintf(stderr, "ztctl: %s: empty file (no CSV header)\n",
                imp->file);
        imp->errors++;
    }

    return 0;
}


static int
ztctl_import_json(ztctl_t *ctl, ztctl_import_t *imp, const char *text,
    size_t len)
{
    json_t        *root, *obj, *v;
    json_error_t   jerr;
    const char    *key, *vals[ZTCTL_IMPORT_FIELDS];
    char           where[48];
    size_t         i, f;
    int            bad, rc;

    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        fprintf(stderr, "ztctl: %s: line %d column %d: %s\n", imp->file,
                jerr.line, jerr.column, jerr.text);
        imp->errors++;
        return 0;
    }

    rc = 0;

    if (!json_is_array(root)) {
        fprintf(stderr, "ztctl: %s: expected a JSON array of objects\n",
                imp->file);
        imp->errors++;
        goto done;
    }

    json_array_foreach(root, i, obj) {
        snprintf(where, sizeof(where), "[%zu]", i);

        if (!json_is_object(obj)) {
            fprintf(stderr, "ztctl: %s: %s: expected an object\n",
                    imp->file, where);
            imp->errors++;
            continue;
        }

        bad = 0;

        json_object_foreach(obj, key, v) {
            for (f = 0; f < ZTCTL_IMPORT_FIELDS; f++) {
                if (strcmp(key, ztctl_import_fields[f]) == 0) {
                    break;
                }
            }

            if (f == ZTCTL_IMPORT_FIELDS) {
                fprintf(stderr, "ztctl: %s: %s: field \"%.40s\": unknown "
                        "field\n", imp->file, where, key);
                bad = 1;
                break;
            }
        }

        for (f = 0; f < ZTCTL_IMPORT_FIELDS && !bad; f++) {
            v = json_object_get(obj, ztctl_import_fields[f]);
            vals[f] = NULL;

            if (v == NULL || json_is_null(v)) {
                continue;
            }

            if (f >= 4 && json_is_boolean(v)) {
                vals[f] = json_is_true(v) ? "true" : "false";

            } else if (f < 4 && json_is_string(v)
                       && strlen(json_string_value(v))
                          == json_string_length(v))
            {
                vals[f] = json_string_value(v);

            } else {
                fprintf(stderr, "ztctl: %s: %s: field \"%s\": expected %s\n",
                        imp->file, where, ztctl_import_fields[f],
                        f >= 4 ? "true, false or null"
                               : "a string or null");
                bad = 1;
            }
        }

        if (bad) {
            imp->errors++;
            continue;
        }

        if (ztctl_import_row(ctl, imp, vals, where) != 0) {
            rc = -1;
            goto done;
        }
    }

done:

    json_decref(root);

    return rc;
}


static int
ztctl_device_posture_import(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    ztctl_import_t   imp;
    store_err_t      err;
    FILE            *f;
    char            *text, *body, *p;
    size_t           len, n, row;
    int              rc;

    if (ztctl_simple_opts(ctl, cmd, argc, argv, NULL, &rc)) {
        return rc;
    }

    if (argc - optind != 1) {
        return ztctl_usage_error(ctl, cmd, "expected one FILE");
    }

    memset(&imp, 0, sizeof(imp));
    imp.file = argv[optind];
    snprintf(imp.source, sizeof(imp.source), "mdm:%s", ctl->actor);

    f = fopen(imp.file, "r");
    if (f == NULL) {
        fprintf(stderr, "ztctl: %s: %s\n", imp.file, strerror(errno));
        return ZTCTL_FAILED;
    }

    text = malloc(ZTCTL_IMPORT_MAX_BYTES + 1);
    if (text == NULL) {
        fclose(f);
        fprintf(stderr, "ztctl: out of memory\n");
        return ZTCTL_FAILED;
    }

    len = fread(text, 1, ZTCTL_IMPORT_MAX_BYTES + 1, f);
    rc = ferror(f);
    fclose(f);

    if (rc) {
        fprintf(stderr, "ztctl: %s: read error\n", imp.file);
        free(text);
        return ZTCTL_FAILED;
    }

    if (len > ZTCTL_IMPORT_MAX_BYTES) {
        fprintf(stderr, "ztctl: %s: larger than %zu bytes\n", imp.file,
                ZTCTL_IMPORT_MAX_BYTES);
        free(text);
        return ZTCTL_FAILED;
    }

    text[len] = '\0';

    rc = ztctl_open(ctl, 1);
    if (rc != ZTCTL_OK) {
        free(text);
        return rc;
    }

    if (memchr(text, '\0', len) != NULL) {
        fprintf(stderr, "ztctl: %s: a NUL byte: not a CSV or JSON file\n",
                imp.file);
        imp.errors++;
        rc = 0;

    } else {
        /* spreadsheet exports often start with a UTF-8 byte order mark */
        body = text;
        if (len >= 3 && memcmp(body, "\xef\xbb\xbf", 3) == 0) {
            body += 3;
            len -= 3;
        }

        for (p = body; *p == ' ' || *p == '\t' || *p == '\r' || *p == '\n';
             p++)
        {
            /* skip to the first character: '[' is JSON */
        }

        if (*p == '[') {
            rc = ztctl_import_json(ctl, &imp, body, len);
        } else {
            rc = ztctl_import_csv(ctl, &imp, body);
        }
    }

    free(text);

    if (rc != 0) {
        rc = ZTCTL_FAILED;
        goto done;
    }

    if (imp.errors > 0) {
        fprintf(stderr, "ztctl: %s: %u bad row%s; nothing imported\n",
                imp.file, imp.errors, imp.errors == 1 ? "" : "s");
        rc = ZTCTL_FAILED;
        goto done;
    }

    if (imp.n == 0) {
        printf("%s: no rows; nothing imported\n", imp.file);
        rc = ZTCTL_OK;
        goto done;
    }

    if (store_posture_import(ctl->store, imp.rows, imp.n, ctl->actor, &err)
        != 0)
    {
        /* "row N: ..." (a device revoked meanwhile): say where it is */
        if (sscanf(err.msg, "row %zu:%zn", &row, &n) == 1 && row >= 1
            && row <= imp.n)
        {
            fprintf(stderr, "ztctl: %s: %s:%s; nothing imported\n",
                    imp.file, imp.where[row - 1], err.msg + n);
        } else {
            fprintf(stderr, "ztctl: %s: %s; nothing imported\n", imp.file,
                    err.msg);
        }
        rc = ZTCTL_FAILED;
        goto done;
    }

    printf("%s: imported the posture of %zu device%s (source %s)\n",
           imp.file, imp.n, imp.n == 1 ? "" : "s", imp.source);
    rc = ZTCTL_OK;

done:

    free(imp.rows);
    free(imp.where);

    return rc;
}


static int
ztctl_device_reassign(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    store_device_t   dev;
    store_err_t      err;
    const char      *owner;
    int              ch, rc;

    owner = NULL;

    while ((ch = getopt_long(argc, argv, "h", cmd->opts, NULL)) != -1) {
        switch (ch) {
        case 'o':
            owner = optarg;
            break;
        default:
            return ztctl_other_opt(ctl, cmd, ch);
        }
    }

    if (argc - optind != 1) {
        return ztctl_usage_error(ctl, cmd, "expected one FP or ID");
    }

    if (owner == NULL) {
        return ztctl_usage_error(ctl, cmd, "--owner is required");
    }

    if (!ztctl_name_ok(owner, sizeof(dev.owner))) {
        return ztctl_usage_error(ctl, cmd, "--owner: a user name of "
                                 "letters, digits and . _ @ - (at most "
                                 "63)");
    }

    rc = ztctl_open_device(ctl, 1, argv[optind], &dev);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    if (strcmp(dev.owner, owner) == 0) {
        printf("%s: already owned by %s\n", dev.id, owner);
        return ZTCTL_OK;
    }

    rc = store_device_set_owner(ctl->store, dev.fp, owner, ctl->actor,
                                &err);
    if (rc == STORE_NOTFOUND) {
        fprintf(stderr, "ztctl: device %s disappeared\n", dev.id);
        return ZTCTL_NOTFOUND;
    }

    if (rc != 0) {
        return ztctl_store_failed(&err);
    }

    printf("%s: owner %s -> %s\n", dev.id, dev.owner, owner);

    return ZTCTL_OK;
}


/* ---- users ---------------------------------------------------------- */

/*
 * Restore the terminal's echo if a signal ends ztctl while it reads a
 * password: only async-signal-safe calls here.
 */
static void
ztctl_tty_signal(int sig)
{
    if (ztctl_tty_saved) {
        (void) tcsetattr(ztctl_tty_fd, TCSAFLUSH, &ztctl_tty_termios);
    }

    signal(sig, SIG_DFL);
    raise(sig);
}


/*
 * Read one line from f into buf without its end of line.  Returns 0, 1 at
 * end of file with nothing read, or -1 for a line that does not fit (or a
 * read error, reported).
 */
static int
ztctl_read_line(FILE *f, char *buf, size_t size)
{
    size_t  len;
    int     ch;

    if (fgets(buf, (int) size, f) == NULL) {
        buf[0] = '\0';

        if (ferror(f)) {
            fprintf(stderr, "ztctl: read: %s\n", strerror(errno));
            return -1;
        }

        return 1;
    }

    len = strlen(buf);

    if (len > 0 && buf[len - 1] == '\n') {
        buf[--len] = '\0';

    } else if (!feof(f)) {
        /* too long: swallow the rest of the line, refuse it */
        while ((ch = fgetc(f)) != EOF && ch != '\n') {
            /* void */
        }

        explicit_bzero(buf, size);
        fprintf(stderr, "ztctl: input line too long (at most %zu bytes)\n",
                size - 2);
        return -1;
    }

    if (len > 0 && buf[len - 1] == '\r') {
        buf[--len] = '\0';
    }

    return 0;
}


/* Prompt on the terminal of stdin and read a line with echo off. */
static int
ztctl_read_hidden(const char *prompt, char *buf, size_t size)
{
    struct sigaction  sa, old_int, old_term, old_quit, old_hup;
    struct termios    tio;
    int               rc;

    fputs(prompt, stderr);
    fflush(stderr);

    if (tcgetattr(STDIN_FILENO, &ztctl_tty_termios) != 0) {
        fprintf(stderr, "\nztctl: terminal: %s\n", strerror(errno));
        return -1;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = ztctl_tty_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGQUIT, &sa, &old_quit);
    sigaction(SIGHUP, &sa, &old_hup);

    ztctl_tty_fd = STDIN_FILENO;
    ztctl_tty_saved = 1;

    tio = ztctl_tty_termios;
    tio.c_lflag &= ~(tcflag_t) (ECHO | ECHOE | ECHOK);
    tio.c_lflag |= ECHONL;

    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &tio) != 0) {
        fprintf(stderr, "\nztctl: terminal: %s\n", strerror(errno));
        rc = -1;

    } else {
        rc = ztctl_read_line(stdin, buf, size);
        (void) tcsetattr(STDIN_FILENO, TCSAFLUSH, &ztctl_tty_termios);
    }

    ztctl_tty_saved = 0;

    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGQUIT, &old_quit, NULL);
    sigaction(SIGHUP, &old_hup, NULL);

    return rc;
}


/*
 * The new password: the first line of file, or a line of stdin when it is
 * not a terminal, or typed twice with echo off.  Returns a ZTCTL_* status,
 * having reported any problem; the caller wipes pw.
 */
static int
ztctl_read_password(const char *name, const char *file, char *pw,
    size_t size)
{
    FILE          *f;
    enroll_err_t   eerr;
    char           again[ZTCTL_PASSWORD_MAX + 2], prompt[128];
    int            rc;

    if (file != NULL) {
        f = fopen(file, "re");
        if (f == NULL) {
            fprintf(stderr, "ztctl: %s: %s\n", file, strerror(errno));
            return ZTCTL_FAILED;
        }

        rc = ztctl_read_line(f, pw, size);
        fclose(f);

    } else if (!isatty(STDIN_FILENO)) {
        rc = ztctl_read_line(stdin, pw, size);

    } else {
        snprintf(prompt, sizeof(prompt), "New password for %s: ", name);
        rc = ztctl_read_hidden(prompt, pw, size);

        if (rc == 0) {
            rc = ztctl_read_hidden("Repeat the password: ", again,
                                   sizeof(again));

            if (rc == 0 && strcmp(pw, again) != 0) {
                explicit_bzero(again, sizeof(again));
                fprintf(stderr, "ztctl: the passwords differ; nothing "
                        "changed\n");
                return ZTCTL_FAILED;
            }

            explicit_bzero(again, sizeof(again));
        }
    }

    if (rc == 1) {
        fprintf(stderr, "ztctl: no password given\n");
        return ZTCTL_FAILED;
    }

    if (rc != 0) {
        return ZTCTL_FAILED;
    }

    if (enroll_password_check(pw, &eerr) != ENROLL_OK) {
        fprintf(stderr, "ztctl: %s\n", eerr.msg);
        return ZTCTL_FAILED;
    }

    return ZTCTL_OK;
}


/* A NAME argument: a usage error unless it is a valid user name. */
static int
ztctl_user_arg(const ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv, int n)
{
    if (argc - optind != n) {
        return ztctl_usage_error(ctl, cmd, n == 1 ? "expected one NAME"
                                              : "wrong number of "
                                                "arguments");
    }

    if (!store_user_name_ok(argv[optind])) {
        return ztctl_usage_error(ctl, cmd, "NAME: a user name of a-z, 0-9 "
                                 "and . _ - (1 to 63 characters, starting "
                                 "with a letter or a digit)");
    }

    return ZTCTL_OK;
}


/*
 * Open the store and read user name.  Returns a ZTCTL_* status, having
 * reported any problem.
 */
static int
ztctl_find_user(ztctl_t *ctl, int write, const char *name, store_user_t *u)
{
    store_err_t  err;
    int          rc;

    rc = ztctl_open(ctl, write);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    rc = store_user_find(ctl->store, name, u, &err);
    if (rc == STORE_NOTFOUND) {
        fprintf(stderr, "ztctl: no user \"%s\"\n", name);
        return ZTCTL_NOTFOUND;
    }

    if (rc != 0) {
        return ztctl_store_failed(&err);
    }

    return ZTCTL_OK;
}


/* Write back *u (see store_user_update()).  Returns a ZTCTL_* status. */
static int
ztctl_user_save(ztctl_t *ctl, const store_user_t *u, const char *action,
    const char *detail, int revoke, unsigned *revoked)
{
    store_err_t  err;
    int          rc;

    if (revoke) {
        rc = store_user_update_revoke(ctl->store, u, ctl->actor, action,
                                      detail, revoked, &err);
    } else {
        rc = store_user_update(ctl->store, u, ctl->actor, action, detail,
                               &err);
    }

    if (rc == STORE_NOTFOUND) {
        fprintf(stderr, "ztctl: user %s disappeared\n", u->name);
        return ZTCTL_NOTFOUND;
    }

    if (rc != 0) {
        return ztctl_store_failed(&err);
    }

    return ZTCTL_OK;
}


/* Comma-separated groups, "-" for none. */
static void
ztctl_groups_text(const store_user_t *u, char *buf, size_t size)
{
    size_t    len;
    unsigned  i;

    if (u->ngroups == 0) {
        snprintf(buf, size, "-");
        return;
    }

    buf[0] = '\0';

    for (i = 0, len = 0; i < u->ngroups && len < size; i++) {
        len += (size_t) snprintf(buf + len, size - len, "%s%s",
                                 i > 0 ? "," : "", u->groups[i]);
    }
}


static int
ztctl_user_create(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    store_user_t   u;
    store_err_t    err;
    char           groups[STORE_MAX_GROUPS * STORE_NAME_MAX];
    int            ch, rc;

    memset(&u, 0, sizeof(u));

    while ((ch = getopt_long(argc, argv, "h", cmd->opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            if (!ztctl_text_ok(optarg, sizeof(u.display), 1)) {
                return ztctl_usage_error(ctl, cmd, "--display: printable "
                                         "text of at most 127 bytes");
            }
            snprintf(u.display, sizeof(u.display), "%s", optarg);
            break;
        case 'g':
            if (!store_group_name_ok(optarg)) {
                return ztctl_usage_error(ctl, cmd, "--group: a-z, 0-9 and "
                                         ". _ - @ (1 to 63 characters, "
                                         "starting with a letter or a "
                                         "digit)");
            }
            if (u.ngroups == STORE_MAX_GROUPS) {
                return ztctl_usage_error(ctl, cmd, "too many --group");
            }
            snprintf(u.groups[u.ngroups++], sizeof(u.groups[0]), "%s",
                     optarg);
            break;
        default:
            return ztctl_other_opt(ctl, cmd, ch);
        }
    }

    rc = ztctl_user_arg(ctl, cmd, argc, argv, 1);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    snprintf(u.name, sizeof(u.name), "%s", argv[optind]);

    rc = ztctl_open(ctl, 1);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    if (store_user_create(ctl->store, &u, ctl->actor, &err) != 0) {
        return ztctl_store_failed(&err);
    }

    ztctl_groups_text(&u, groups, sizeof(groups));

    printf("created user %s (groups %s); set a password with 'ztctl user "
           "passwd %s'\n", u.name, groups, u.name);

    return ZTCTL_OK;
}


static int
ztctl_user_list_cb(const store_user_t *u, void *arg)
{
    ztctl_list_t  *l = arg;
    char           groups[STORE_MAX_GROUPS * STORE_NAME_MAX], created[32];
    const char    *status;
    int64_t        now = l->now;

    if (l->json != NULL) {
        return ztctl_list_add(l, ztctl_json_user(u, now));
    }

    ztctl_groups_text(u, groups, sizeof(groups));
    ztctl_time(u->created_at, created, sizeof(created));

    status = u->disabled ? "disabled"
             : u->locked_until > now ? "locked" : "active";

    printf("%-24s  %-30s  %-8s  %-7s  %-8s  %s\n", u->name, groups,
           u->pwhash[0] != '\0' ? "yes" : "no",
           store_totp_state_name(u->totp_state), status, created);

    return 0;
}


static int
ztctl_user_list(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    ztctl_list_t  l;
    store_err_t   err;
    int           json, rc;

    if (ztctl_list_start(ctl, cmd, argc, argv, &json, &rc)) {
        return rc;
    }

    memset(&l, 0, sizeof(l));
    l.now = (int64_t) time(NULL);

    if (json) {
        l.json = json_array();
        if (l.json == NULL) {
            return ztctl_json_print(NULL);
        }

    } else {
        printf("%-24s  %-30s  %-8s  %-7s  %-8s  %s\n", "NAME", "GROUPS",
               "PASSWORD", "TOTP", "STATUS", "CREATED");
    }

    rc = store_user_list(ctl->store, ztctl_user_list_cb, &l, &err);

    return ztctl_list_end(&l, rc, &err);
}


static int
ztctl_user_show(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    store_user_t   u;
    char           groups[STORE_MAX_GROUPS * STORE_NAME_MAX];
    char           created[32], updated[32], locked[48], failed[32];
    int64_t        now;
    int            json, rc;

    if (ztctl_user_only(ctl, cmd, argc, argv, &json, &rc)) {
        return rc;
    }

    rc = ztctl_find_user(ctl, 0, argv[optind], &u);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    now = (int64_t) time(NULL);

    if (json) {
        rc = ztctl_json_print(ztctl_json_user(&u, now));
        explicit_bzero(&u, sizeof(u));
        return rc;
    }

    ztctl_groups_text(&u, groups, sizeof(groups));
    ztctl_time(u.created_at, created, sizeof(created));
    ztctl_time(u.updated_at, updated, sizeof(updated));
    ztctl_time(u.last_failure, failed, sizeof(failed));

    if (u.locked_until == 0) {
        snprintf(locked, sizeof(locked), "no");
    } else {
        ztctl_time(u.locked_until, locked, sizeof(locked));
        if (u.locked_until <= now) {
            snprintf(locked + strlen(locked), sizeof(locked) - strlen(locked),
                     " (passed)");
        }
    }

    printf("name         %s\n"
           "display      %s\n"
           "groups       %s\n"
           "password     %s\n"
           "totp         %s",
           u.name, u.display, groups, u.pwhash[0] != '\0' ? "yes" : "no",
           store_totp_state_name(u.totp_state));

    if (u.totp_state != STORE_TOTP_NONE) {
        printf(" (%s, %u digits)", ztctl_algo_name(u.totp_algo),
               u.totp_digits);
    }

    printf("\n"
           "failures     %u (last %s)\n"
           "locked until %s\n"
           "disabled     %s\n"
           "created      %s by %s\n"
           "updated      %s\n",
           u.failures, failed, locked, u.disabled ? "yes" : "no", created,
           u.created_by, updated);

    return ZTCTL_OK;
}


static int
ztctl_user_passwd(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    store_user_t   u;
    enroll_err_t   eerr;
    const char    *file;
    char           pw[ZTCTL_PASSWORD_MAX + 2];
    int            ch, rc;

    file = NULL;

    while ((ch = getopt_long(argc, argv, "h", cmd->opts, NULL)) != -1) {
        switch (ch) {
        case 'f':
            file = optarg;
            break;
        default:
            return ztctl_other_opt(ctl, cmd, ch);
        }
    }

    rc = ztctl_user_arg(ctl, cmd, argc, argv, 1);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    /* the user first: no typing a password for a name that is wrong */
    rc = ztctl_find_user(ctl, 1, argv[optind], &u);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    rc = ztctl_read_password(u.name, file, pw, sizeof(pw));

    /* hashed, and stored in a record read again after the typing */
    if (rc == ZTCTL_OK) {
        rc = ztctl_enroll_status(enroll_password_set(ctl->store, u.name, pw,
                                                     ctl->actor, &eerr),
                                 &eerr, NULL);
    }

    explicit_bzero(pw, sizeof(pw));

    if (rc != ZTCTL_OK) {
        return rc;
    }

    printf("password of %s set\n", u.name);

    return ZTCTL_OK;
}


static int
ztctl_user_groups(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    store_user_t   u;
    char           groups[STORE_MAX_GROUPS * STORE_NAME_MAX];
    const char    *name;
    int            ch, rc, clear, i, n;

    clear = 0;

    while ((ch = getopt_long(argc, argv, "h", cmd->opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            clear = 1;
            break;
        default:
            return ztctl_other_opt(ctl, cmd, ch);
        }
    }

    n = argc - optind;

    if (n < 1 || (clear && n != 1) || (!clear && n < 2)) {
        return ztctl_usage_error(ctl, cmd, "expected NAME and one or more "
                                 "groups, or NAME --clear");
    }

    if (n - 1 > STORE_MAX_GROUPS) {
        return ztctl_usage_error(ctl, cmd, "too many groups");
    }

    for (i = optind + 1; i < argc; i++) {
        if (!store_group_name_ok(argv[i])) {
            fprintf(stderr, "ztctl: invalid group name \"%s\"\n", argv[i]);
            return ztctl_usage_error(ctl, cmd, "a group is a-z, 0-9 and "
                                     ". _ - @ (1 to 63 characters, "
                                     "starting with a letter or a digit)");
        }
    }

    name = argv[optind];

    rc = ztctl_user_arg(ctl, cmd, optind + 1, argv, 1);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    rc = ztctl_find_user(ctl, 1, name, &u);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    memset(u.groups, 0, sizeof(u.groups));
    u.ngroups = 0;

    for (i = optind + 1; i < argc; i++) {
        snprintf(u.groups[u.ngroups++], sizeof(u.groups[0]), "%s", argv[i]);
    }

    ztctl_groups_text(&u, groups, sizeof(groups));

    rc = ztctl_user_save(ctl, &u, "user.groups", groups, 0, NULL);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    printf("groups of %s: %s\n", u.name, groups);

    return ZTCTL_OK;
}


/* disable, enable, unlock */
static int
ztctl_user_state(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    store_user_t   u;
    char           detail[64];
    unsigned       revoked;
    int            rc;

    if (ztctl_user_only(ctl, cmd, argc, argv, NULL, &rc)) {
        return rc;
    }

    rc = ztctl_find_user(ctl, 1, argv[optind], &u);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    if (strcmp(cmd->name, "disable") == 0) {
        if (u.disabled) {
            printf("%s is already disabled\n", u.name);
            return ZTCTL_OK;
        }

        u.disabled = 1;

        rc = ztctl_user_save(ctl, &u, "user.disable", "", 1, &revoked);
        if (rc == ZTCTL_OK) {
            printf("disabled %s; %u sessions revoked\n", u.name, revoked);
        }

        return rc;
    }

    if (strcmp(cmd->name, "enable") == 0) {
        if (!u.disabled) {
            printf("%s is not disabled\n", u.name);
            return ZTCTL_OK;
        }

        u.disabled = 0;

        rc = ztctl_user_save(ctl, &u, "user.enable", "", 0, NULL);
        if (rc == ZTCTL_OK) {
            printf("enabled %s\n", u.name);
        }

        return rc;
    }

    /* unlock */
    snprintf(detail, sizeof(detail), "%u failures cleared", u.failures);
    u.failures = 0;
    u.locked_until = 0;

    rc = ztctl_user_save(ctl, &u, "user.unlock", detail, 0, NULL);
    if (rc == ZTCTL_OK) {
        printf("unlocked %s (%s)\n", u.name, detail);
    }

    return rc;
}


static int
ztctl_user_delete(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    store_err_t  err;
    int          rc;

    if (ztctl_user_only(ctl, cmd, argc, argv, NULL, &rc)) {
        return rc;
    }

    rc = ztctl_open(ctl, 1);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    rc = store_user_delete(ctl->store, argv[optind], ctl->actor, &err);
    if (rc == STORE_NOTFOUND) {
        fprintf(stderr, "ztctl: no user \"%s\"\n", argv[optind]);
        return ZTCTL_NOTFOUND;
    }

    if (rc != 0) {
        return ztctl_store_failed(&err);
    }

    printf("deleted %s; their sessions are revoked\n", argv[optind]);

    return ZTCTL_OK;
}


/*
 * The identity settings ztctl needs: the key directory (--keys, else the
 * configuration's identity_keys) and the TOTP window.  The configuration
 * is read when ztctl was not pointed at a bare store with -s.
 */
static int
ztctl_identity(ztctl_t *ctl, const char *keys_opt, ztctl_identity_t *idc)
{
    config_t      cfg;
    config_err_t  cerr;

    memset(idc, 0, sizeof(*idc));
    idc->window = ZTCTL_TOTP_WINDOW;
    idc->alg = ID_ALG_HS256;

    if (ctl->store_dir == NULL) {
        if (config_load(ctl->config_path, &cfg, &cerr) != 0) {
            fprintf(stderr, "ztctl: %s\n", cerr.msg);
            return ZTCTL_FAILED;
        }

        snprintf(idc->keys, sizeof(idc->keys), "%s", cfg.identity_keys);
        idc->window = cfg.totp_window;
        idc->alg = (id_alg_t) cfg.token_alg;
        idc->grace = (int64_t) (cfg.key_grace_ms / 1000);
    }

    if (keys_opt != NULL) {
        if (snprintf(idc->keys, sizeof(idc->keys), "%s", keys_opt)
            >= (int) sizeof(idc->keys))
        {
            fprintf(stderr, "ztctl: --keys: path too long\n");
            return ZTCTL_USAGE;
        }
    }

    if (idc->keys[0] == '\0') {
        fprintf(stderr, "ztctl: no identity key directory: give --keys DIR, "
                "or -c with a trustd.conf that sets identity_keys\n");
        return ZTCTL_USAGE;
    }

    return ZTCTL_OK;
}


/*
 * The ZTCTL_* status of an enrollment step (trustd/enroll.h), having
 * reported a failure with err's message and hint (may be NULL) after it.
 */
static int
ztctl_enroll_status(int rc, const enroll_err_t *err, const char *hint)
{
    if (rc == ENROLL_OK) {
        return ZTCTL_OK;
    }

    fprintf(stderr, "ztctl: %s%s\n", err->msg, hint != NULL ? hint : "");

    return rc == ENROLL_NOTFOUND ? ZTCTL_NOTFOUND : ZTCTL_FAILED;
}


/*
 * Finish an enrollment: check a code from the new authenticator (code, or
 * a line of stdin) against e, then make the pending authenticator active
 * with the matched counter, provided the stored enrollment is still the
 * one that was checked (enroll_totp_confirm()).  Returns a ZTCTL_*
 * status.
 */
static int
ztctl_totp_finish(ztctl_t *ctl, const enroll_totp_t *e, const char *code,
    unsigned window)
{
    enroll_err_t   eerr;
    char           line[64], hint[128];
    int            rc;

    if (code == NULL) {
        if (isatty(STDIN_FILENO)) {
            fputs("Code from the authenticator: ", stderr);
            fflush(stderr);
        }

        rc = ztctl_read_line(stdin, line, sizeof(line));
        if (rc < 0) {
            return ZTCTL_FAILED;
        }

        if (rc == 1 || line[0] == '\0') {
            fprintf(stderr, "ztctl: no code given: the authenticator of %s "
                    "stays pending; finish with 'ztctl user totp-confirm "
                    "%s'\n", e->pending.name, e->pending.name);
            return ZTCTL_FAILED;
        }

        code = line;
    }

    rc = enroll_totp_confirm(ctl->store, e, code, (int64_t) time(NULL),
                             window, ctl->actor, &eerr);

    snprintf(hint, sizeof(hint), " with 'ztctl user totp-confirm %s'",
             e->pending.name);

    rc = ztctl_enroll_status(rc, &eerr, rc == ENROLL_BAD_CODE ? hint : NULL);
    explicit_bzero(line, sizeof(line));

    if (rc != ZTCTL_OK) {
        return rc;
    }

    printf("authenticator of %s is active\n", e->pending.name);

    return ZTCTL_OK;
}


const char *
ztctl_algo_name(unsigned algo)
{
    return enroll_totp_algo_name(algo);
}


static int
ztctl_user_totp_enroll(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    ztctl_identity_t   idc;
    store_user_t       u;
    id_totp_algo_t     algo;
    id_keys_t         *keys;
    enroll_totp_t      e;
    enroll_err_t       eerr;
    id_err_t           ierr;
    const char        *code, *keys_opt;
    unsigned           digits;
    char               qr[ZTCTL_QR_MAX];
    int                ch, rc;

    algo = ID_TOTP_SHA1;
    digits = 6;
    code = NULL;
    keys_opt = NULL;

    while ((ch = getopt_long(argc, argv, "h", cmd->opts, NULL)) != -1) {
        switch (ch) {
        case 'a':
            if (strcmp(optarg, "sha1") == 0) {
                algo = ID_TOTP_SHA1;
            } else if (strcmp(optarg, "sha256") == 0) {
                algo = ID_TOTP_SHA256;
            } else if (strcmp(optarg, "sha512") == 0) {
                algo = ID_TOTP_SHA512;
            } else {
                return ztctl_usage_error(ctl, cmd, "--algo: sha1, sha256 "
                                         "or sha512");
            }
            break;
        case 'd':
            if (strcmp(optarg, "6") == 0) {
                digits = 6;
            } else if (strcmp(optarg, "8") == 0) {
                digits = 8;
            } else {
                return ztctl_usage_error(ctl, cmd, "--digits: 6 or 8");
            }
            break;
        case 'C':
            code = optarg;
            break;
        case 'k':
            keys_opt = optarg;
            break;
        default:
            return ztctl_other_opt(ctl, cmd, ch);
        }
    }

    rc = ztctl_user_arg(ctl, cmd, argc, argv, 1);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    rc = ztctl_identity(ctl, keys_opt, &idc);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    rc = ztctl_find_user(ctl, 1, argv[optind], &u);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    if (u.totp_state == STORE_TOTP_ACTIVE) {
        fprintf(stderr, "ztctl: %s already has an active authenticator; "
                "remove it first with 'ztctl user totp-reset %s'\n", u.name,
                u.name);
        return ZTCTL_FAILED;
    }

    if (id_keys_load(idc.keys, idc.alg, idc.grace, 1, &keys, &ierr) != 0) {
        fprintf(stderr, "ztctl: %s\n", ierr.msg);
        return ZTCTL_FAILED;
    }

    /* the same step as the web console's (trustd/enroll.c) */
    rc = ztctl_enroll_status(enroll_totp_start(ctl->store, keys, u.name,
                                               algo, digits,
                                               ZTCTL_TOTP_ISSUER, ctl->actor,
                                               &e, &eerr),
                             &eerr, NULL);
    if (rc != ZTCTL_OK) {
        id_keys_free(keys);
        return rc;
    }

    printf("Add this to %s's authenticator app (scan the code or enter "
           "the URI):\n\n%s\n", u.name, e.uri);

    if (id_totp_qr(e.uri, qr, sizeof(qr), &ierr) == 0) {
        printf("\n%s\n", qr);
    } else {
        fprintf(stderr, "ztctl: no QR code: %s\n", ierr.msg);
    }

    explicit_bzero(e.uri, sizeof(e.uri));
    explicit_bzero(qr, sizeof(qr));

    /* the URI must be out before we wait for a code computed from it */
    if (fflush(stdout) != 0) {
        fprintf(stderr, "ztctl: write error: %s\n", strerror(errno));
        rc = ZTCTL_FAILED;
        goto done;
    }

    rc = ztctl_totp_finish(ctl, &e, code, idc.window);

done:

    enroll_totp_wipe(&e);
    id_keys_free(keys);

    return rc;
}


static int
ztctl_user_totp_confirm(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    ztctl_identity_t   idc;
    store_user_t       u;
    id_keys_t         *keys;
    enroll_totp_t      e;
    enroll_err_t       eerr;
    id_err_t           ierr;
    const char        *code, *keys_opt;
    int                ch, rc;

    code = NULL;
    keys_opt = NULL;

    while ((ch = getopt_long(argc, argv, "h", cmd->opts, NULL)) != -1) {
        switch (ch) {
        case 'C':
            code = optarg;
            break;
        case 'k':
            keys_opt = optarg;
            break;
        default:
            return ztctl_other_opt(ctl, cmd, ch);
        }
    }

    rc = ztctl_user_arg(ctl, cmd, argc, argv, 1);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    rc = ztctl_identity(ctl, keys_opt, &idc);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    rc = ztctl_find_user(ctl, 1, argv[optind], &u);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    if (u.totp_state != STORE_TOTP_PENDING) {
        fprintf(stderr, "ztctl: %s has no pending authenticator (TOTP "
                "state %s)%s\n", u.name,
                store_totp_state_name(u.totp_state),
                u.totp_state == STORE_TOTP_NONE
                ? "; start with 'ztctl user totp-enroll'" : "");
        return ZTCTL_FAILED;
    }

    if (id_keys_load(idc.keys, idc.alg, idc.grace, 0, &keys, &ierr) != 0) {
        fprintf(stderr, "ztctl: %s\n", ierr.msg);
        return ZTCTL_FAILED;
    }

    rc = ztctl_enroll_status(enroll_totp_open(ctl->store, keys, u.name, &e,
                                              &eerr),
                             &eerr, NULL);

    if (rc == ZTCTL_OK) {
        rc = ztctl_totp_finish(ctl, &e, code, idc.window);
    }

    enroll_totp_wipe(&e);
    id_keys_free(keys);

    return rc;
}


static int
ztctl_user_totp_reset(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    store_totp_state_t   was;
    enroll_err_t         eerr;
    unsigned             revoked;
    int                  rc;

    if (ztctl_user_only(ctl, cmd, argc, argv, NULL, &rc)) {
        return rc;
    }

    rc = ztctl_open(ctl, 1);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    rc = ztctl_enroll_status(enroll_totp_reset(ctl->store, argv[optind],
                                               ctl->actor, &was, &revoked,
                                               &eerr),
                             &eerr, NULL);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    printf("authenticator of %s removed (was %s); %u sessions revoked\n",
           argv[optind], store_totp_state_name(was), revoked);

    return ZTCTL_OK;
}


/* ---- sessions ------------------------------------------------------- */

static int
ztctl_session_list_cb(const store_session_t *s, void *arg)
{
    ztctl_list_t  *l = arg;
    char           created[32], mfa[32], seen[32], expires[32], revoked[32];

    if (l->json != NULL) {
        return ztctl_list_add(l, ztctl_json_session(s, l->now));
    }

    ztctl_time(s->created_at, created, sizeof(created));
    ztctl_time(s->mfa_at, mfa, sizeof(mfa));
    ztctl_time(s->last_seen, seen, sizeof(seen));
    ztctl_time(s->expires_at, expires, sizeof(expires));

    if (s->revoked) {
        ztctl_time(s->revoked_at, revoked, sizeof(revoked));
    } else {
        snprintf(revoked, sizeof(revoked), "no");
    }

    printf("%-*.*s  %-20s  %-6s  %-20s  %-20s  %-20s  %-20s  %s\n",
           STORE_SID_AUDIT_LEN, STORE_SID_AUDIT_LEN, s->sid, s->user,
           s->has_device ? "yes" : "no", created, mfa, seen, expires,
           revoked);

    return 0;
}


static int
ztctl_session_list(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    ztctl_list_t   l;
    store_err_t    err;
    const char    *user;
    int            ch, rc, json;

    user = NULL;
    json = 0;

    while ((ch = getopt_long(argc, argv, "h", cmd->opts, NULL)) != -1) {
        switch (ch) {
        case 'u':
            if (!store_user_name_ok(optarg)) {
                return ztctl_usage_error(ctl, cmd, "--user: not a valid "
                                         "user name");
            }
            user = optarg;
            break;
        case 'j':
            json = 1;
            break;
        default:
            return ztctl_other_opt(ctl, cmd, ch);
        }
    }

    if (optind != argc) {
        return ztctl_usage_error(ctl, cmd, "unexpected argument");
    }

    rc = ztctl_open(ctl, 0);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    memset(&l, 0, sizeof(l));
    l.now = (int64_t) time(NULL);

    if (json) {
        l.json = json_array();
        if (l.json == NULL) {
            return ztctl_json_print(NULL);
        }

    } else {
        printf("%-*s  %-20s  %-6s  %-20s  %-20s  %-20s  %-20s  %s\n",
               STORE_SID_AUDIT_LEN, "SID", "USER", "DEVICE", "CREATED",
               "MFA", "LAST SEEN", "EXPIRES", "REVOKED");
    }

    rc = store_session_list(ctl->store, user, ztctl_session_list_cb, &l,
                            &err);

    return ztctl_list_end(&l, rc, &err);
}


static int
ztctl_sid_prefix_cb(const store_session_t *s, void *arg)
{
    ztctl_sid_prefix_t  *p = arg;

    if (strncmp(s->sid, p->prefix, p->len) == 0) {
        if (p->matches == 0) {
            *p->out = *s;
        }

        p->matches++;
    }

    return 0;
}


static int
ztctl_session_revoke(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    ztctl_sid_prefix_t   p;
    store_session_t      s;
    store_err_t          err;
    const char          *arg;
    size_t               len;
    int                  rc;

    if (ztctl_simple_opts(ctl, cmd, argc, argv, NULL, &rc)) {
        return rc;
    }

    if (argc - optind != 1) {
        return ztctl_usage_error(ctl, cmd, "expected one SID");
    }

    arg = argv[optind];
    len = strlen(arg);

    if (len < ZTCTL_MIN_PREFIX || len > STORE_SID_LEN
        || strspn(arg, "0123456789abcdef") != len)
    {
        return ztctl_usage_error(ctl, cmd, "SID: the session id (32 "
                                 "lowercase hex digits) or a unique prefix "
                                 "of at least 8");
    }

    rc = ztctl_open(ctl, 1);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    p.prefix = arg;
    p.len = len;
    p.out = &s;
    p.matches = 0;

    if (store_session_list(ctl->store, NULL, ztctl_sid_prefix_cb, &p, &err)
        != 0)
    {
        return ztctl_store_failed(&err);
    }

    if (p.matches == 0) {
        fprintf(stderr, "ztctl: no session \"%s\"\n", arg);
        return ZTCTL_NOTFOUND;
    }

    if (p.matches > 1) {
        fprintf(stderr, "ztctl: session prefix \"%s\" matches %u sessions; "
                "give more digits\n", arg, p.matches);
        return ZTCTL_FAILED;
    }

    if (s.revoked) {
        printf("session %.*s of %s is already revoked\n",
               STORE_SID_AUDIT_LEN, s.sid, s.user);
        return ZTCTL_OK;
    }

    rc = store_session_revoke(ctl->store, s.sid, ctl->actor, &err);
    if (rc == STORE_NOTFOUND) {
        fprintf(stderr, "ztctl: session %.*s disappeared\n",
                STORE_SID_AUDIT_LEN, s.sid);
        return ZTCTL_NOTFOUND;
    }

    if (rc != 0) {
        return ztctl_store_failed(&err);
    }

    printf("revoked session %.*s of %s\n", STORE_SID_AUDIT_LEN, s.sid,
           s.user);

    return ZTCTL_OK;
}


static int
ztctl_session_revoke_user(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    store_user_t   u;
    store_err_t    err;
    unsigned       n;
    int            rc;

    if (ztctl_user_only(ctl, cmd, argc, argv, NULL, &rc)) {
        return rc;
    }

    rc = ztctl_open(ctl, 1);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    if (store_session_revoke_user(ctl->store, argv[optind], ctl->actor, &n,
                                  &err)
        != 0)
    {
        return ztctl_store_failed(&err);
    }

    if (n == 0) {
        rc = store_user_find(ctl->store, argv[optind], &u, &err);
        if (rc == STORE_NOTFOUND) {
            fprintf(stderr, "ztctl: no user \"%s\"\n", argv[optind]);
            return ZTCTL_NOTFOUND;
        }

        if (rc != 0) {
            return ztctl_store_failed(&err);
        }
    }

    printf("revoked %u sessions of %s\n", n, argv[optind]);

    return ZTCTL_OK;
}


int
main(int argc, char **argv)
{
    ztctl_t               ctl;
    const ztctl_group_t  *g;
    const ztctl_cmd_t    *c;
    int                   ch, rc;

    memset(&ctl, 0, sizeof(ctl));
    ctl.config_path = CONFIG_DEFAULT_PATH;

    /* '+': stop at the command; its options are its own */
    while ((ch = getopt_long(argc, argv, ZTCTL_GLOBAL_SHORTOPTS,
                             ztctl_global_opts, NULL))
           != -1)
    {
        switch (ch) {
        case 'c':
            ctl.config_path = optarg;
            ctl.config_given = 1;
            break;
        case 's':
            ctl.store_dir = optarg;
            break;
        case 'a':
            if (!ztctl_name_ok(optarg, sizeof(ctl.actor_buf))) {
                fprintf(stderr, "ztctl: --actor: a name of letters, digits "
                        "and . _ @ - (at most 63)\n");
                return ZTCTL_USAGE;
            }
            ctl.actor = optarg;
            break;
        case 'h':
            ztctl_usage(stdout);
            return ZTCTL_OK;
        default:
            ztctl_usage(stderr);
            return ZTCTL_USAGE;
        }
    }

    if (ctl.store_dir != NULL && ctl.config_given) {
        fprintf(stderr, "ztctl: -c and -s exclude each other\n");
        return ZTCTL_USAGE;
    }

    if (optind >= argc) {
        ztctl_usage(stderr);
        return ZTCTL_USAGE;
    }

    /* hidden: the candidates for dist/bash-completion/ztctl */
    if (strcmp(argv[optind], "__complete") == 0) {
        return ztctl_complete(argc - optind - 1, argv + optind + 1);
    }

    for (g = ztctl_groups; g->name != NULL; g++) {
        if (strcmp(g->name, argv[optind]) == 0) {
            break;
        }
    }

    if (g->name == NULL) {
        fprintf(stderr, "ztctl: unknown command \"%s\"\n", argv[optind]);
        ztctl_usage(stderr);
        return ZTCTL_USAGE;
    }

    ctl.group = g->name;

    if (g->is_cmd) {
        /* "ztctl status --json": the group's name is the command's */
        c = g->cmds;

    } else {
        optind++;

        if (optind >= argc) {
            ztctl_group_usage(g, stderr);
            return ZTCTL_USAGE;
        }

        if (strcmp(argv[optind], "--help") == 0
            || strcmp(argv[optind], "-h") == 0)
        {
            ztctl_group_usage(g, stdout);
            return ZTCTL_OK;
        }

        for (c = g->cmds; c->name != NULL; c++) {
            if (strcmp(c->name, argv[optind]) == 0) {
                break;
            }
        }

        if (c->name == NULL) {
            fprintf(stderr, "ztctl: unknown command \"%s %s\"\n", g->name,
                    argv[optind]);
            ztctl_group_usage(g, stderr);
            return ZTCTL_USAGE;
        }
    }

    if (ctl.actor == NULL) {
        ztctl_default_actor(&ctl);
    }

    /* the command parses its own options from its name on */
    argc -= optind;
    argv += optind;
    optind = 0;
    opterr = 1;

    rc = c->handler(&ctl, c, argc, argv);

    ztctl_close_store(&ctl);

    if (fflush(stdout) != 0 && rc == ZTCTL_OK) {
        fprintf(stderr, "ztctl: write error: %s\n", strerror(errno));
        rc = ZTCTL_FAILED;
    }

    return rc;
}


static int
ztctl_policy_reload(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    int  rc;

    if (ztctl_simple_opts(ctl, cmd, argc, argv, NULL, &rc)) {
        return rc;
    }

    if (optind != argc) {
        return ztctl_usage_error(ctl, cmd, "unexpected argument");
    }

    return ztctl_trustd(ctl, "reload", NULL);
}


static int
ztctl_policy_status(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    char  reply[ZTCTL_REPLY_MAX];
    int   json, rc;

    if (ztctl_simple_opts(ctl, cmd, argc, argv, &json, &rc)) {
        return rc;
    }

    if (optind != argc) {
        return ztctl_usage_error(ctl, cmd, "unexpected argument");
    }

    if (!json) {
        return ztctl_trustd(ctl, "status", NULL);
    }

    rc = ztctl_trustd(ctl, "status", reply);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    return ztctl_json_print(ztctl_admin_json(reply, NULL));
}


int
ztctl_identity_conf(const ztctl_t *ctl, const char *what, config_t *cfg)
{
    config_err_t  cerr;

    if (ctl->store_dir != NULL) {
        fprintf(stderr, "ztctl: %s needs trustd's configuration (-c), which "
                "names the key directory\n", what);
        return ZTCTL_USAGE;
    }

    if (config_load(ctl->config_path, cfg, &cerr) != 0) {
        fprintf(stderr, "ztctl: %s\n", cerr.msg);
        return ZTCTL_FAILED;
    }

    if (cfg->identity_keys[0] == '\0') {
        fprintf(stderr, "ztctl: %s has no identity_keys: identity is off\n",
                ctl->config_path);
        return ZTCTL_FAILED;
    }

    return ZTCTL_OK;
}


static int
ztctl_keys_rotate(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    config_t      cfg;
    id_err_t      ierr;
    int           rc;

    if (ztctl_simple_opts(ctl, cmd, argc, argv, NULL, &rc)) {
        return rc;
    }

    if (optind != argc) {
        return ztctl_usage_error(ctl, cmd, "unexpected argument");
    }

    rc = ztctl_identity_conf(ctl, "keys rotate", &cfg);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    if (id_keys_rotate(cfg.identity_keys, (id_alg_t) cfg.token_alg, &ierr)
        != 0)
    {
        fprintf(stderr, "ztctl: %s\n", ierr.msg);
        return ZTCTL_FAILED;
    }

    printf("rotated the session key in %s; the previous key stays valid "
           "for %u s\n", cfg.identity_keys, cfg.key_grace_ms / 1000);

    if (cfg.admin_listen[0] == '\0') {
        printf("send trustd SIGHUP to use the new key\n");
        return ZTCTL_OK;
    }

    return ztctl_trustd(ctl, "reload", NULL);
}


static int
ztctl_blocklist_add(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    store_blocklist_t  e;
    store_err_t        err;
    blocklist_err_t    berr;
    uint8_t            lo[16], hi[16];
    const char        *feed, *expires, *reason;
    int                ch, rc;

    feed = NULL;
    expires = NULL;
    reason = "";

    while ((ch = getopt_long(argc, argv, "h", cmd->opts, NULL)) != -1) {
        switch (ch) {
        case 'f':
            feed = optarg;
            break;
        case 'e':
            expires = optarg;
            break;
        case 'r':
            reason = optarg;
            break;
        default:
            return ztctl_other_opt(ctl, cmd, ch);
        }
    }

    if (argc - optind != 1) {
        return ztctl_usage_error(ctl, cmd, "expected one CIDR");
    }

    if (feed == NULL || !blocklist_feed_name_ok(feed)) {
        return ztctl_usage_error(ctl, cmd, "--feed NAME ([a-z0-9._-]) is "
                                 "required");
    }

    memset(&e, 0, sizeof(e));

    if (blocklist_parse_cidr(argv[optind], lo, hi, &berr) != 0) {
        fprintf(stderr, "ztctl: %s\n", berr.msg);
        return ZTCTL_USAGE;
    }

    if (expires != NULL && blocklist_parse_date(expires, &e.expires) != 0) {
        return ztctl_usage_error(ctl, cmd, "--expires: expected YYYY-MM-DD");
    }

    snprintf(e.feed, sizeof(e.feed), "%s", feed);
    snprintf(e.cidr, sizeof(e.cidr), "%s", argv[optind]);
    snprintf(e.reason, sizeof(e.reason), "%s", reason);

    rc = ztctl_open(ctl, 1);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    if (store_blocklist_add(ctl->store, &e, ctl->actor, &err) != 0) {
        return ztctl_store_failed(&err);
    }

    printf("blocklist %s: added %s (applied when trustd reloads)\n",
           e.feed, e.cidr);

    return ZTCTL_OK;
}


static int
ztctl_blocklist_remove(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    store_err_t   err;
    const char   *feed;
    int           ch, rc;

    feed = NULL;

    while ((ch = getopt_long(argc, argv, "h", cmd->opts, NULL)) != -1) {
        switch (ch) {
        case 'f':
            feed = optarg;
            break;
        default:
            return ztctl_other_opt(ctl, cmd, ch);
        }
    }

    if (argc - optind != 1 || feed == NULL) {
        return ztctl_usage_error(ctl, cmd, "expected CIDR --feed NAME");
    }

    rc = ztctl_open(ctl, 1);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    rc = store_blocklist_remove(ctl->store, feed, argv[optind], ctl->actor,
                                &err);
    if (rc == STORE_NOTFOUND) {
        fprintf(stderr, "ztctl: %s\n", err.msg);
        return ZTCTL_NOTFOUND;
    }

    if (rc != 0) {
        return ztctl_store_failed(&err);
    }

    printf("blocklist %s: removed %s (applied when trustd reloads)\n",
           feed, argv[optind]);

    return ZTCTL_OK;
}


static int
ztctl_blocklist_print(const store_blocklist_t *e, void *arg)
{
    ztctl_list_t  *l = arg;
    struct tm      tm;
    time_t         t;
    char           exp[16];

    if (l->json != NULL) {
        return ztctl_list_add(l, ztctl_json_blocklist(e));
    }

    snprintf(exp, sizeof(exp), "never");
    if (e->expires != 0) {
        t = (time_t) e->expires;
        gmtime_r(&t, &tm);
        strftime(exp, sizeof(exp), "%Y-%m-%d", &tm);
    }

    printf("%-16s %-40s %-10s %-16s %s\n", e->feed, e->cidr, exp,
           e->added_by, e->reason);

    return 0;
}


static int
ztctl_blocklist_list(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    ztctl_list_t  l;
    store_err_t   err;
    int           json, rc;

    if (ztctl_list_start(ctl, cmd, argc, argv, &json, &rc)) {
        return rc;
    }

    memset(&l, 0, sizeof(l));

    if (json) {
        l.json = json_array();
        if (l.json == NULL) {
            return ztctl_json_print(NULL);
        }

    } else {
        printf("%-16s %-40s %-10s %-16s %s\n", "FEED", "ENTRY", "EXPIRES",
               "ADDED BY", "REASON");
    }

    rc = store_blocklist_list(ctl->store, ztctl_blocklist_print, &l, &err);

    return ztctl_list_end(&l, rc, &err);
}


static int
ztctl_explain(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc, char **argv)
{
    store_device_t   dev;
    const char      *user, *device, *source, *request, *sp;
    char             command[1024], hex[2 * STORE_FP_LEN + 1];
    size_t           len;
    int              ch, rc, n;

    user = NULL;
    device = NULL;
    source = NULL;

    while ((ch = getopt_long(argc, argv, "h", cmd->opts, NULL)) != -1) {
        switch (ch) {
        case 'u':
            user = optarg;
            break;
        case 'd':
            device = optarg;
            break;
        case 's':
            source = optarg;
            break;
        default:
            return ztctl_other_opt(ctl, cmd, ch);
        }
    }

    /* argv[0] is "--request"; "METHOD URL" is its one argument */
    if (argc - optind != 1) {
        return ztctl_usage_error(ctl, cmd, "--request needs \"METHOD URL\"");
    }

    request = argv[optind];
    sp = strchr(request, ' ');

    if (sp == NULL || sp == request
        || strstr(sp + 1, "://") == NULL || strchr(sp + 1, ' ') != NULL
        || (user != NULL && !store_user_name_ok(user))
        || (source != NULL && strspn(source, "0123456789abcdefABCDEF.:")
                              != strlen(source)))
    {
        return ztctl_usage_error(ctl, cmd, "expected --request \"METHOD "
                                 "SCHEME://HOST/PATH\" and valid options");
    }

    hex[0] = '\0';
    if (device != NULL) {
        rc = ztctl_open_device(ctl, 0, device, &dev);
        if (rc != ZTCTL_OK) {
            return rc;
        }
        store_fp_hex(dev.fp, hex);
        ztctl_close_store(ctl);
    }

    n = snprintf(command, sizeof(command), "explain %.*s %s%s%s%s%s%s%s",
                 (int) (sp - request), request, sp + 1,
                 user ? " user=" : "", user ? user : "",
                 hex[0] ? " device=" : "", hex,
                 source ? " source=" : "", source ? source : "");
    len = (size_t) n;
    if (n < 0 || len >= sizeof(command)) {
        return ztctl_usage_error(ctl, cmd, "request too long");
    }

    return ztctl_trustd(ctl, command, NULL);
}
