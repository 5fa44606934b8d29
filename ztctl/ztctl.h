/*
 * ztctl's shared parts: the command tables' types, the exit statuses and
 * the helpers every command group uses.  ztctl.c holds the groups of
 * devices, users, sessions, blocklists, policy and explain; audit.c the
 * audit journal's commands.
 */

#ifndef ZT_ZTCTL_H
#define ZT_ZTCTL_H

#include <stddef.h>
#include <stdint.h>

#include "trustd/store.h"

#define ZTCTL_OK            0
#define ZTCTL_FAILED        1
#define ZTCTL_USAGE         2
#define ZTCTL_NOTFOUND      3


typedef struct ztctl_s      ztctl_t;
typedef struct ztctl_cmd_s  ztctl_cmd_t;

typedef int (*ztctl_handler_pt)(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);

struct ztctl_cmd_s {
    const char          *name;
    ztctl_handler_pt     handler;
    const char          *args;      /* synopsis after the command name */
    const char          *help;      /* what it does, options */
};

typedef struct {
    const char          *name;
    const ztctl_cmd_t   *cmds;
    const char          *summary;
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
};

/* The audit group's commands (audit.c). */
extern const ztctl_cmd_t  ztctl_audit_cmds[];

/* "ztctl explain --decision SEQ" (audit.c). */
int ztctl_explain_decision(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv);

/* Report a usage error; returns ZTCTL_USAGE. */
int ztctl_usage_error(const ztctl_t *ctl, const ztctl_cmd_t *cmd,
    const char *msg);

/* Open the store (lazily), from -s or the config file's "store". */
int ztctl_open(ztctl_t *ctl, int write);

/* An option no case of a getopt loop took (--help or an invalid one). */
int ztctl_other_opt(const ztctl_t *ctl, const ztctl_cmd_t *cmd, int ch);

/* Report a failed store call; returns ZTCTL_FAILED. */
int ztctl_store_failed(const store_err_t *err);

/* "2026-11-25T10:00:00Z" for unix seconds, "never" for 0. */
void ztctl_time(int64_t t, char *buf, size_t size);

#endif /* ZT_ZTCTL_H */
