/*
 * "ztctl __complete": the candidates for shell completion
 * (dist/bash-completion/ztctl), taken from the same tables that main()
 * dispatches on and the commands parse their options with, so that the
 * completion knows every command and option and nothing else.  Hidden:
 * not in the usage text.
 */

#include <stdio.h>
#include <string.h>

#include "ztctl.h"


static void ztctl_complete_word(const char *word, const char *prefix);
static void ztctl_complete_opts(const struct option *opts,
    const char *prefix);
static int ztctl_complete_takes_arg(const struct option *opts,
    const char *word);
static int ztctl_complete_global_arg(const char *word);


int
ztctl_complete(int argc, char **argv)
{
    const ztctl_group_t  *g;
    const ztctl_cmd_t    *c;
    const char           *cur, *p;
    char                  opt[3];
    int                   i, last;

    if (argc == 0) {
        return ZTCTL_OK;
    }

    last = argc - 1;
    cur = argv[last];

    /* ztctl's own options, before the group */
    for (i = 0; i < last && argv[i][0] == '-'; i++) {
        if (ztctl_complete_global_arg(argv[i])) {
            i++;
        }
    }

    if (i > last) {
        /* the word is the value of -c, -s or --actor */
        return ZTCTL_OK;
    }

    if (i == last) {
        if (cur[0] == '-') {
            for (p = ZTCTL_GLOBAL_SHORTOPTS; *p != '\0'; p++) {
                if (*p != '+' && *p != ':') {
                    snprintf(opt, sizeof(opt), "-%c", *p);
                    ztctl_complete_word(opt, cur);
                }
            }

            ztctl_complete_opts(ztctl_global_opts, cur);
            return ZTCTL_OK;
        }

        for (g = ztctl_groups; g->name != NULL; g++) {
            ztctl_complete_word(g->name, cur);
        }

        return ZTCTL_OK;
    }

    for (g = ztctl_groups; g->name != NULL; g++) {
        if (strcmp(g->name, argv[i]) == 0) {
            break;
        }
    }

    if (g->name == NULL) {
        return ZTCTL_OK;
    }

    i++;

    if (g->is_cmd) {
        c = g->cmds;

    } else {
        if (i == last) {
            for (c = g->cmds; c->name != NULL; c++) {
                ztctl_complete_word(c->name, cur);
            }

            ztctl_complete_word("--help", cur);
            return ZTCTL_OK;
        }

        for (c = g->cmds; c->name != NULL; c++) {
            if (strcmp(c->name, argv[i]) == 0) {
                break;
            }
        }

        if (c->name == NULL) {
            return ZTCTL_OK;
        }
    }

    /* the value of an option ("--owner <TAB>"), or "--opt=value" */
    if ((last > i && ztctl_complete_takes_arg(c->opts, argv[last - 1]))
        || strchr(cur, '=') != NULL)
    {
        return ZTCTL_OK;
    }

    if (cur[0] == '-') {
        ztctl_complete_opts(c->opts, cur);
    }

    return ZTCTL_OK;
}


/* Print word if it starts with prefix. */
static void
ztctl_complete_word(const char *word, const char *prefix)
{
    if (strncmp(word, prefix, strlen(prefix)) == 0) {
        printf("%s\n", word);
    }
}


/* "--name" for each long option that starts with prefix. */
static void
ztctl_complete_opts(const struct option *opts, const char *prefix)
{
    char  buf[64];

    for ( ; opts->name != NULL; opts++) {
        if (snprintf(buf, sizeof(buf), "--%s", opts->name)
            < (int) sizeof(buf))
        {
            ztctl_complete_word(buf, prefix);
        }
    }
}


/* 1 if word is a long option of opts that takes a value. */
static int
ztctl_complete_takes_arg(const struct option *opts, const char *word)
{
    if (strncmp(word, "--", 2) != 0) {
        return 0;
    }

    for ( ; opts->name != NULL; opts++) {
        if (strcmp(opts->name, word + 2) == 0) {
            return opts->has_arg == required_argument;
        }
    }

    return 0;
}


/* 1 if word is one of ztctl's own options that take a value. */
static int
ztctl_complete_global_arg(const char *word)
{
    const char  *p;

    if (word[0] == '-' && word[1] != '-' && word[1] != '\0'
        && word[2] == '\0')
    {
        p = strchr(ZTCTL_GLOBAL_SHORTOPTS, word[1]);
        return p != NULL && p[1] == ':';
    }

    return ztctl_complete_takes_arg(ztctl_global_opts, word);
}
