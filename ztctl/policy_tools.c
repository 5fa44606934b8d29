/*
 * ztctl policy check|test|explain: the policy author's tools (ztpolicy,
 * docs/policy.md section 12) under the one admin command, on the policy
 * trustd is configured with (policy in trustd.conf, -c) unless --policy
 * names another.  ztctl runs ztpolicy itself, so that the two never
 * disagree: found next to ztctl, then on PATH.
 */

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trustd/config.h"
#include "ztctl.h"


static int policy_tool(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv, const char *verb, int min_args, int max_args);
static void policy_exec(char **args);


int
ztctl_policy_check(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    return policy_tool(ctl, cmd, argc, argv, "check", 0, 0);
}


int
ztctl_policy_test(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    return policy_tool(ctl, cmd, argc, argv, "test", 1, 64);
}


int
ztctl_policy_explain(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    return policy_tool(ctl, cmd, argc, argv, "explain", 1, 1);
}


/*
 * Parse --policy, take the configured policy otherwise, and run
 * "ztpolicy VERB POLICY ARGS...".  Returns ztpolicy's exit status.
 */
static int
policy_tool(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc, char **argv,
    const char *verb, int min_args, int max_args)
{
    config_t       cfg;
    config_err_t   cerr;
    const char    *policy, *case_name;
    char          *args[72];
    int            ch, i, n, nargs;

    policy = NULL;
    case_name = NULL;

    while ((ch = getopt_long(argc, argv, "h", cmd->opts, NULL)) != -1) {
        switch (ch) {
        case 'p':
            policy = optarg;
            break;
        case 'C':
            if (strcmp(verb, "explain") != 0) {
                return ztctl_usage_error(ctl, cmd, "--case is for explain");
            }
            case_name = optarg;
            break;
        default:
            return ztctl_other_opt(ctl, cmd, ch);
        }
    }

    nargs = argc - optind;
    if (nargs < min_args || nargs > max_args) {
        return ztctl_usage_error(ctl, cmd, "wrong number of arguments");
    }

    if (policy == NULL) {
        if (ctl->store_dir != NULL
            || config_load(ctl->config_path, &cfg, &cerr) != 0)
        {
            fprintf(stderr, "ztctl: no policy: give --policy PATH, or -c "
                    "with a trustd.conf that names one%s%s\n",
                    ctl->store_dir != NULL ? "" : " (",
                    ctl->store_dir != NULL ? "" : cerr.msg);
            return ZTCTL_USAGE;
        }
        if (cfg.policy[0] == '\0') {
            fprintf(stderr, "ztctl: %s has no policy (the built-in device "
                    "rule decides); give --policy PATH\n", ctl->config_path);
            return ZTCTL_USAGE;
        }
        policy = cfg.policy;
    }

    n = 0;
    args[n++] = (char *) (uintptr_t) "ztpolicy";
    args[n++] = (char *) (uintptr_t) verb;
    args[n++] = (char *) (uintptr_t) policy;
    for (i = optind; i < argc; i++) {
        args[n++] = argv[i];
    }
    if (case_name != NULL) {
        args[n++] = (char *) (uintptr_t) "--case";
        args[n++] = (char *) (uintptr_t) case_name;
    }
    args[n] = NULL;

    fflush(stdout);
    policy_exec(args);

    fprintf(stderr, "ztctl: cannot run ztpolicy (next to ztctl or on "
            "PATH): %s\n", strerror(errno));

    return ZTCTL_FAILED;
}


/* exec ztpolicy from ztctl's own directory, else from PATH. */
static void
policy_exec(char **args)
{
    char     self[PATH_MAX], path[PATH_MAX + 16];
    char    *slash;
    ssize_t  n;

    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        slash = strrchr(self, '/');
        if (slash != NULL) {
            *slash = '\0';
            snprintf(path, sizeof(path), "%s/ztpolicy", self);
            execv(path, args);
            /* installed: ztctl in sbin, ztpolicy in bin */
            snprintf(path, sizeof(path), "%s/../bin/ztpolicy", self);
            execv(path, args);
        }
    }

    execvp("ztpolicy", args);
}
