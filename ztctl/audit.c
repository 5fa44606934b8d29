/*
 * ztctl audit: read, search, export and verify the audit journal, and
 * explain a recorded decision.  Everything here only reads the store
 * (docs/journal.md has the record format and the chain).
 */

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trustd/journal_fmt.h"
#include "trustd/score.h"
#include "trustd/store.h"
#include "zt_wire.h"
#include "ztctl.h"


#define AUDIT_LINE_MAX      (JOURNAL_JSON_MAX + 2)

/* What "audit search" keeps; every field set must match. */
typedef struct {
    int64_t         since_ms;       /* 0: any */
    int64_t         until_ms;       /* 0: any */
    int             kind;           /* -1: any */
    const char     *actor;          /* exact; for decisions, the user */
    const char     *action;         /* prefix: "device." or "decision.deny" */
    const char     *text;           /* substring of subject or detail */
    const char     *outcome;        /* decisions: allow, deny, ... */
    const char     *device;         /* substring of device id or fp */
    const char     *source;         /* exact client address */
    unsigned long   max;            /* 0: no limit */
    unsigned long   shown;
    int             json;
    FILE           *out;
    int             failed;         /* a write failed (export) */
} audit_filter_t;


static int audit_parse_time(const char *s, int64_t *ms);
static int audit_parse_count(const char *s, unsigned long *n);
static int audit_match(const audit_filter_t *f, const store_audit_t *rec);
static int audit_print_cb(const store_audit_t *rec, void *arg);
static void audit_print_line(const store_audit_t *rec, FILE *out);
static void audit_print_full(const store_audit_t *rec, FILE *out);
static int audit_list(ztctl_t *ctl, uint64_t from, audit_filter_t *f);
static int audit_tail(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv);
static int audit_search(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv);
static int audit_show(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv);
static int audit_export(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv);
static int audit_verify(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv);
static int audit_verify_file(const char *path, uint64_t head_seq,
    const uint8_t *head_hash);
static int audit_field(const char *line, const char *name, char *out,
    size_t size);
static int audit_parse_head(const char *s, uint64_t *seq,
    uint8_t hash[STORE_HASH_LEN]);
static int audit_show_seq(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    const char *arg, int json);


/* Each command's long options (see ztctl_cmd_t). */
static const struct option  audit_tail_opts[] = {
    ZTCTL_OPT_JSON,
    ZTCTL_OPT_HELP,
    ZTCTL_OPT_END
};

static const struct option  audit_search_opts[] = {
    { "since", required_argument, NULL, 's' },
    { "until", required_argument, NULL, 'u' },
    { "kind", required_argument, NULL, 'k' },
    { "actor", required_argument, NULL, 'a' },
    { "action", required_argument, NULL, 'A' },
    { "outcome", required_argument, NULL, 'o' },
    { "device", required_argument, NULL, 'd' },
    { "source", required_argument, NULL, 'S' },
    { "text", required_argument, NULL, 't' },
    ZTCTL_OPT_JSON,
    ZTCTL_OPT_HELP,
    ZTCTL_OPT_END
};

static const struct option  audit_export_opts[] = {
    { "since", required_argument, NULL, 's' },
    { "from", required_argument, NULL, 'f' },
    ZTCTL_OPT_HELP,
    ZTCTL_OPT_END
};

static const struct option  audit_verify_opts[] = {
    { "file", required_argument, NULL, 'f' },
    { "head", required_argument, NULL, 'H' },
    ZTCTL_OPT_HELP,
    ZTCTL_OPT_END
};


const ztctl_cmd_t  ztctl_audit_cmds[] = {
    { "tail", audit_tail, audit_tail_opts, "[-n N] [--json]",
      "Show the last N journal records (default 20), oldest first: seq,\n"
      "time, actor (for a decision: the user), action (decision.allow,\n"
      "device.revoke, ...), subject and detail.  --json prints each as\n"
      "its exported JSON line." },
    { "search", audit_search, audit_search_opts,
      "[--since T] [--until T] [--kind action|decision] [--actor NAME]\n"
      "       [--action PREFIX] [--outcome O] [--device TEXT] "
      "[--source ADDR]\n       [--text TEXT] [-n MAX] [--json]",
      "Records that match every option given, oldest first.  T is a\n"
      "date (2026-11-25), a UTC time (2026-11-25T09:30:00Z) or an age\n"
      "(30m, 12h, 7d ago).  --actor is the staff member, or the user of a\n"
      "decision; --action a prefix (\"device.\", \"decision.deny\");\n"
      "--outcome allow, deny, login or step-up; --device part of a device\n"
      "id or fingerprint; --text part of the subject or detail.  --json\n"
      "prints each as its exported JSON line." },
    { "show", audit_show, ztctl_opts_json, "SEQ [--json]",
      "Show one record in full.  For a decision: the request, user,\n"
      "session, device, the rule and where it is, the policy version, the\n"
      "score and each signal's value and points (docs/trust.md).  --json\n"
      "prints the record as its exported JSON object (docs/journal.md)." },
    { "export", audit_export, audit_export_opts,
      "[--since T] [--from SEQ] [-o FILE]",
      "Write records as JSON lines (docs/journal.md), each with its\n"
      "\"prev\" and \"hash\", so that the export can be verified on its\n"
      "own (audit verify --file).  Default: everything, to stdout." },
    { "verify", audit_verify, audit_verify_opts,
      "[--file FILE] [--head SEQ:HASH]",
      "Check the hash chain: no record removed, reordered or altered\n"
      "since it was written.  Without --file the store is checked, from\n"
      "the anchor retention left; with it, an export.  --head checks that\n"
      "record SEQ still has HASH (a head noted earlier, kept elsewhere),\n"
      "which also catches records cut from the end.  Prints the head to\n"
      "note for next time.  Exit 0 intact, 1 broken or unreadable." },
    { NULL, NULL, NULL, NULL, NULL }
};


/* ---- tail, search --------------------------------------------------- */

static int
audit_tail(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc, char **argv)
{
    audit_filter_t  f;
    store_err_t     err;
    uint64_t        last, from;
    unsigned long   n;
    int             ch, rc;

    n = 20;
    memset(&f, 0, sizeof(f));
    f.kind = -1;
    f.out = stdout;

    while ((ch = getopt_long(argc, argv, "hn:", cmd->opts, NULL)) != -1) {
        switch (ch) {
        case 'n':
            if (audit_parse_count(optarg, &n) != 0) {
                return ztctl_usage_error(ctl, cmd, "-n: expected a number "
                                         "from 1 to 1000000");
            }
            break;
        case 'j':
            f.json = 1;
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

    if (store_audit_last_seq(ctl->store, &last, &err) != 0) {
        return ztctl_store_failed(&err);
    }

    from = last >= n ? last - n + 1 : 1;
    f.max = n;

    return audit_list(ctl, from, &f);
}


static int
audit_search(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc, char **argv)
{
    audit_filter_t  f;
    int             ch, rc;

    memset(&f, 0, sizeof(f));
    f.kind = -1;
    f.out = stdout;

    while ((ch = getopt_long(argc, argv, "hn:", cmd->opts, NULL)) != -1) {
        switch (ch) {
        case 's':
            if (audit_parse_time(optarg, &f.since_ms) != 0) {
                return ztctl_usage_error(ctl, cmd, "--since: expected a "
                                         "date, a UTC time or an age");
            }
            break;
        case 'u':
            if (audit_parse_time(optarg, &f.until_ms) != 0) {
                return ztctl_usage_error(ctl, cmd, "--until: expected a "
                                         "date, a UTC time or an age");
            }
            break;
        case 'k':
            if (strcmp(optarg, "action") == 0) {
                f.kind = STORE_AUDIT_ACTION;
            } else if (strcmp(optarg, "decision") == 0) {
                f.kind = STORE_AUDIT_DECISION;
            } else {
                return ztctl_usage_error(ctl, cmd, "--kind: expected "
                                         "action or decision");
            }
            break;
        case 'a':
            f.actor = optarg;
            break;
        case 'A':
            f.action = optarg;
            break;
        case 'o':
            if (strcmp(optarg, "allow") != 0 && strcmp(optarg, "deny") != 0
                && strcmp(optarg, "login") != 0
                && strcmp(optarg, "step-up") != 0)
            {
                return ztctl_usage_error(ctl, cmd, "--outcome: expected "
                                         "allow, deny, login or step-up");
            }
            f.outcome = optarg;
            f.kind = STORE_AUDIT_DECISION;
            break;
        case 'd':
            f.device = optarg;
            break;
        case 'S':
            f.source = optarg;
            break;
        case 't':
            f.text = optarg;
            break;
        case 'n':
            if (audit_parse_count(optarg, &f.max) != 0) {
                return ztctl_usage_error(ctl, cmd, "-n: expected a number "
                                         "from 1 to 1000000");
            }
            break;
        case 'j':
            f.json = 1;
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

    return audit_list(ctl, 0, &f);
}


static int
audit_list(ztctl_t *ctl, uint64_t from, audit_filter_t *f)
{
    store_err_t  err;

    if (store_audit_list(ctl->store, from, 0, audit_print_cb, f, &err)
        != 0)
    {
        return ztctl_store_failed(&err);
    }

    if (fflush(f->out) != 0 || f->failed) {
        fprintf(stderr, "ztctl: cannot write: %s\n", strerror(errno));
        return ZTCTL_FAILED;
    }

    return ZTCTL_OK;
}


static int
audit_match(const audit_filter_t *f, const store_audit_t *rec)
{
    const store_decision_t  *d = &rec->d;
    int                      dec = rec->kind == STORE_AUDIT_DECISION;

    if ((f->since_ms != 0 && rec->time_ms < f->since_ms)
        || (f->until_ms != 0 && rec->time_ms >= f->until_ms)
        || (f->kind >= 0 && rec->kind != f->kind)
        || (f->actor != NULL && strcmp(rec->actor, f->actor) != 0)
        || (f->action != NULL
            && strncmp(rec->action, f->action, strlen(f->action)) != 0))
    {
        return 0;
    }

    if (f->outcome != NULL
        && (!dec || strcmp(wire_decision_name(d->outcome), f->outcome) != 0))
    {
        return 0;
    }

    if (f->device != NULL
        && (!dec || (strstr(d->device, f->device) == NULL
                     && strstr(d->device_fp, f->device) == NULL)))
    {
        return 0;
    }

    if (f->source != NULL && (!dec || strcmp(d->source, f->source) != 0)) {
        return 0;
    }

    if (f->text != NULL && strstr(rec->subject, f->text) == NULL
        && strstr(rec->detail, f->text) == NULL
        && (!dec || (strstr(d->path, f->text) == NULL
                     && strstr(d->reason, f->text) == NULL)))
    {
        return 0;
    }

    return 1;
}


static int
audit_print_cb(const store_audit_t *rec, void *arg)
{
    audit_filter_t  *f = arg;
    char             line[AUDIT_LINE_MAX];

    if (!audit_match(f, rec)) {
        return 0;
    }

    if (f->json) {
        if (journal_json(rec, 1, line, sizeof(line)) == 0
            || fprintf(f->out, "%s\n", line) < 0)
        {
            f->failed = 1;
            return 1;
        }
    } else {
        audit_print_line(rec, f->out);
    }

    f->shown++;

    return f->max != 0 && f->shown >= f->max;
}


static void
audit_print_line(const store_audit_t *rec, FILE *out)
{
    const store_decision_t  *d = &rec->d;
    char                     when[32];

    ztctl_time(rec->time, when, sizeof(when));

    if (rec->kind != STORE_AUDIT_DECISION) {
        fprintf(out, "%-6llu %s  %-12s  %-18s  %s  %s\n",
                (unsigned long long) rec->seq, when, rec->actor,
                rec->action, rec->subject, rec->detail);
        return;
    }

    fprintf(out, "%-6llu %s  %-12s  %-18s  %s %s%s  from %s",
            (unsigned long long) rec->seq, when,
            d->user[0] != '\0' ? d->user : "-", rec->action, d->method,
            d->host, d->path, d->source);

    if (d->rule[0] != '\0') {
        fprintf(out, "  rule %s", d->rule);
    }

    if (d->score >= 0) {
        fprintf(out, "  score %d", d->score);
    }

    if (d->count > 1) {
        fprintf(out, "  x%u", d->count);
    }

    fprintf(out, "\n");
}


/* ---- show, explain --decision --------------------------------------- */

static int
audit_show(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc, char **argv)
{
    int  json, rc;

    if (ztctl_simple_opts(ctl, cmd, argc, argv, &json, &rc)) {
        return rc;
    }

    if (argc - optind != 1) {
        return ztctl_usage_error(ctl, cmd, "expected one sequence number");
    }

    return audit_show_seq(ctl, cmd, argv[optind], json);
}


int
ztctl_explain_decision(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    int  rc;

    /* argv[0] is "--decision"; SEQ is its one argument */
    if (ztctl_simple_opts(ctl, cmd, argc, argv, NULL, &rc)) {
        return rc;
    }

    if (argc - optind != 1) {
        return ztctl_usage_error(ctl, cmd, "expected --decision SEQ");
    }

    return audit_show_seq(ctl, cmd, argv[optind], 0);
}


static int
audit_show_seq(ztctl_t *ctl, const ztctl_cmd_t *cmd, const char *arg,
    int json)
{
    store_audit_t   rec;
    store_err_t     err;
    unsigned long   seq;
    char            line[AUDIT_LINE_MAX];
    int             rc;

    if (audit_parse_count(arg, &seq) != 0) {
        return ztctl_usage_error(ctl, cmd, "expected a sequence number");
    }

    rc = ztctl_open(ctl, 0);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    rc = store_audit_get(ctl->store, (uint64_t) seq, &rec, &err);
    if (rc == STORE_NOTFOUND) {
        fprintf(stderr, "ztctl: no journal record %lu (removed by "
                "retention, or not written yet)\n", seq);
        return ZTCTL_NOTFOUND;
    }

    if (rc != 0) {
        return ztctl_store_failed(&err);
    }

    if (json) {
        if (journal_json(&rec, 1, line, sizeof(line)) == 0) {
            fprintf(stderr, "ztctl: record %lu does not fit a JSON line\n",
                    seq);
            return ZTCTL_FAILED;
        }

        printf("%s\n", line);
        return ZTCTL_OK;
    }

    audit_print_full(&rec, stdout);

    return ZTCTL_OK;
}


static void
audit_print_full(const store_audit_t *rec, FILE *out)
{
    const store_decision_t  *d = &rec->d;
    char                     when[32], hex[2 * STORE_HASH_LEN + 1];
    unsigned                 i;
    int                      sum;

    journal_time(rec->time_ms, when, sizeof(when));

    fprintf(out, "record    %llu (%s)\ntime      %s\n",
            (unsigned long long) rec->seq, journal_kind_name(rec->kind),
            when);

    if (rec->kind != STORE_AUDIT_DECISION) {
        fprintf(out, "actor     %s\naction    %s\nsubject   %s\n"
                "detail    %s\n", rec->actor, rec->action, rec->subject,
                rec->detail);

    } else {
        fprintf(out,
                "decision  %s %u%s\n"
                "request   %s %s%s\n"
                "source    %s\n"
                "user      %s\n"
                "session   %s\n"
                "device    %s\n"
                "cert      %s\n"
                "app       %s\n"
                "rule      %s%s%s\n"
                "policy    %s\n"
                "reason    %s\n"
                "cache     %u ms\n"
                "count     %u (identical decisions folded into this "
                "record)\n",
                wire_decision_name(d->outcome), (unsigned) d->status,
                d->status == 503 ? " (fail closed)" : "",
                d->method, d->host, d->path,
                d->source[0] ? d->source : "-",
                d->user[0] ? d->user : "(not signed in)",
                d->session[0] ? d->session : "-",
                d->device[0] ? d->device : "(none enrolled)",
                d->device_fp[0] ? d->device_fp : "(no verified certificate)",
                d->app[0] ? d->app : "-",
                d->rule[0] ? d->rule
                : d->policy[0] ? "(default deny)" : "(built-in rule)",
                d->where[0] ? " at " : "", d->where,
                d->policy[0] ? d->policy : "(built-in rule)",
                d->reason, (unsigned) d->ttl_ms, (unsigned) d->count);

        if (d->score < 0 || d->nsignals == 0) {
            fprintf(out, "score     not computed (trust inference off)\n");

        } else {
            fprintf(out, "score     %d\n%-20s %7s %9s\n", d->score,
                    "signal", "value", "points");
            sum = 0;

            for (i = 0; i < d->nsignals && i < SCORE_NSIGNALS; i++) {
                fprintf(out, "%-20s %6u%% %+8.1f\n",
                        score_signal_name((score_signal_t) i),
                        (unsigned) d->value[i], d->points[i] / 10.0);
                sum += d->points[i];
            }

            fprintf(out, "%-20s %7s %+8.1f  (+ base, clamped to 0..100: "
                    "docs/trust.md)\n", "sum of points", "",
                    sum / 10.0);
        }
    }

    journal_hex(rec->prev, STORE_HASH_LEN, hex);
    fprintf(out, "prev      %s\n", hex);
    journal_hex(rec->hash, STORE_HASH_LEN, hex);
    fprintf(out, "hash      %s\n", hex);
}


/* ---- export --------------------------------------------------------- */

static int
audit_export(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc, char **argv)
{
    audit_filter_t  f;
    const char     *path;
    unsigned long   from;
    int             ch, rc;

    memset(&f, 0, sizeof(f));
    f.kind = -1;
    f.json = 1;
    from = 0;
    path = NULL;

    while ((ch = getopt_long(argc, argv, "ho:", cmd->opts, NULL)) != -1) {
        switch (ch) {
        case 's':
            if (audit_parse_time(optarg, &f.since_ms) != 0) {
                return ztctl_usage_error(ctl, cmd, "--since: expected a "
                                         "date, a UTC time or an age");
            }
            break;
        case 'f':
            if (audit_parse_count(optarg, &from) != 0) {
                return ztctl_usage_error(ctl, cmd, "--from: expected a "
                                         "sequence number");
            }
            break;
        case 'o':
            path = optarg;
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

    f.out = stdout;
    if (path != NULL) {
        f.out = fopen(path, "wx");
        if (f.out == NULL) {
            fprintf(stderr, "ztctl: cannot create \"%s\": %s\n", path,
                    strerror(errno));
            return ZTCTL_FAILED;
        }
    }

    rc = audit_list(ctl, from, &f);

    if (path != NULL) {
        if (fclose(f.out) != 0 && rc == ZTCTL_OK) {
            fprintf(stderr, "ztctl: cannot write \"%s\": %s\n", path,
                    strerror(errno));
            rc = ZTCTL_FAILED;
        }
        if (rc == ZTCTL_OK) {
            fprintf(stderr, "ztctl: %lu records written to %s\n", f.shown,
                    path);
        }
    }

    return rc;
}


/* ---- verify --------------------------------------------------------- */

static int
audit_verify(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc, char **argv)
{
    store_journal_check_t   chk;
    store_audit_t           rec;
    store_err_t             err;
    const char             *file;
    uint64_t                head_seq;
    uint8_t                 head_hash[STORE_HASH_LEN];
    char                    hex[2 * STORE_HASH_LEN + 1];
    int                     ch, rc;

    file = NULL;
    head_seq = 0;

    while ((ch = getopt_long(argc, argv, "h", cmd->opts, NULL)) != -1) {
        switch (ch) {
        case 'f':
            file = optarg;
            break;
        case 'H':
            if (audit_parse_head(optarg, &head_seq, head_hash) != 0) {
                return ztctl_usage_error(ctl, cmd, "--head: expected SEQ:"
                                         "HASH (64 hex digits)");
            }
            break;
        default:
            return ztctl_other_opt(ctl, cmd, ch);
        }
    }

    if (optind != argc) {
        return ztctl_usage_error(ctl, cmd, "unexpected argument");
    }

    if (file != NULL) {
        return audit_verify_file(file, head_seq,
                                 head_seq != 0 ? head_hash : NULL);
    }

    rc = ztctl_open(ctl, 0);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    rc = store_journal_verify(ctl->store, &chk, &err);
    if (rc < 0) {
        return ztctl_store_failed(&err);
    }

    if (rc == 1) {
        printf("journal BROKEN at record %llu: %s\n",
               (unsigned long long) chk.bad_seq, chk.problem);
        if (chk.checked > 0) {
            printf("records %llu to %llu before it are intact\n",
                   (unsigned long long) chk.first,
                   (unsigned long long) chk.last);
        }
        return ZTCTL_FAILED;
    }

    if (head_seq != 0) {
        rc = store_audit_get(ctl->store, head_seq, &rec, &err);
        if (rc == STORE_NOTFOUND) {
            printf("journal BROKEN: record %llu of the noted head is "
                   "missing%s\n", (unsigned long long) head_seq,
                   head_seq > chk.last ? " (records cut from the end)"
                   : head_seq <= chk.anchor_seq ? " (removed by retention "
                     "since: note a newer head)" : "");
            return ZTCTL_FAILED;
        }
        if (rc != 0) {
            return ztctl_store_failed(&err);
        }
        if (memcmp(rec.hash, head_hash, STORE_HASH_LEN) != 0) {
            printf("journal BROKEN: record %llu no longer has the noted "
                   "hash (the chain was rewritten)\n",
                   (unsigned long long) head_seq);
            return ZTCTL_FAILED;
        }
    }

    journal_hex(chk.head, STORE_HASH_LEN, hex);

    if (chk.checked == 0) {
        printf("journal intact: empty%s\n",
               chk.anchor_seq ? " (every record removed by retention)" : "");
    } else {
        printf("journal intact: records %llu to %llu (%llu checked)",
               (unsigned long long) chk.first, (unsigned long long) chk.last,
               (unsigned long long) chk.checked);
        if (chk.anchor_seq != 0) {
            printf(", records up to %llu removed by retention",
                   (unsigned long long) chk.anchor_seq);
        }
        printf("\n");
    }

    if (head_seq != 0) {
        printf("noted head %llu matches\n", (unsigned long long) head_seq);
    }

    printf("head %llu:%s\n", (unsigned long long) chk.last, hex);

    return ZTCTL_OK;
}


/*
 * Verify an export: every line's hash is the SHA-256 of the line without
 * its "hash" member, its "prev" is the hash of the line before, and the
 * sequence numbers follow each other.  The first line's prev is taken as
 * given (an export may start anywhere).
 */
static int
audit_verify_file(const char *path, uint64_t head_seq,
    const uint8_t *head_hash)
{
    FILE           *f;
    char            line[AUDIT_LINE_MAX + 2], body[AUDIT_LINE_MAX];
    char            field[80], hex[2 * STORE_HASH_LEN + 1];
    uint8_t         hash[STORE_HASH_LEN], want[STORE_HASH_LEN];
    uint8_t         prev[STORE_HASH_LEN], lprev[STORE_HASH_LEN];
    unsigned long long  seq, first, last, lineno;
    size_t          len, hlen;
    char           *end;
    int             head_ok;

    f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "ztctl: cannot open \"%s\": %s\n", path,
                strerror(errno));
        return ZTCTL_FAILED;
    }

    first = 0;
    last = 0;
    lineno = 0;
    head_ok = head_hash == NULL;
    hlen = sizeof(",\"hash\":\"\"}") - 1 + 2 * STORE_HASH_LEN;

    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        len = strlen(line);

        if (len == 0 || line[len - 1] != '\n') {
            printf("export BROKEN at line %llu: line too long or not "
                   "terminated\n", lineno);
            goto broken;
        }

        line[--len] = '\0';

        if (len < hlen + 2
            || strncmp(line + len - hlen, ",\"hash\":\"", 9) != 0
            || strcmp(line + len - 2, "\"}") != 0
            || journal_unhex(line + len - hlen + 9, 2 * STORE_HASH_LEN,
                             want) != 0)
        {
            printf("export BROKEN at line %llu: no \"hash\" member at the "
                   "end\n", lineno);
            goto broken;
        }

        memcpy(body, line, len - hlen);
        body[len - hlen] = '}';
        body[len - hlen + 1] = '\0';

        if (audit_field(body, "seq", field, sizeof(field)) != 0
            || (seq = strtoull(field, &end, 10), *end != '\0')
            || audit_field(body, "prev", field, sizeof(field)) != 0
            || journal_unhex(field, strlen(field), lprev) != 0)
        {
            printf("export BROKEN at line %llu: no \"seq\" or \"prev\"\n",
                   lineno);
            goto broken;
        }

        if (journal_sha256(body, len - hlen + 1, hash) != 0
            || memcmp(hash, want, STORE_HASH_LEN) != 0)
        {
            printf("export BROKEN at record %llu (line %llu): altered (its "
                   "hash does not match its content)\n", seq, lineno);
            goto broken;
        }

        if (first != 0 && seq != last + 1) {
            printf("export BROKEN at line %llu: record %llu follows %llu "
                   "(records missing or reordered)\n", lineno, seq, last);
            goto broken;
        }

        if (first != 0 && memcmp(lprev, prev, STORE_HASH_LEN) != 0) {
            printf("export BROKEN at record %llu (line %llu): does not link "
                   "to the record before it\n", seq, lineno);
            goto broken;
        }

        if (head_hash != NULL && seq == head_seq) {
            if (memcmp(hash, head_hash, STORE_HASH_LEN) != 0) {
                printf("export BROKEN: record %llu does not have the noted "
                       "hash\n", seq);
                goto broken;
            }
            head_ok = 1;
        }

        if (first == 0) {
            first = seq;
        }
        last = seq;
        memcpy(prev, hash, STORE_HASH_LEN);
    }

    if (ferror(f)) {
        fprintf(stderr, "ztctl: cannot read \"%s\": %s\n", path,
                strerror(errno));
        fclose(f);
        return ZTCTL_FAILED;
    }

    fclose(f);

    if (!head_ok) {
        printf("export BROKEN: the noted head %llu is not in it%s\n",
               (unsigned long long) head_seq,
               (unsigned long long) head_seq > last ? " (cut from the end)"
                                                    : "");
        return ZTCTL_FAILED;
    }

    if (first == 0) {
        printf("export intact: empty\n");
        return ZTCTL_OK;
    }

    journal_hex(prev, STORE_HASH_LEN, hex);
    printf("export intact: records %llu to %llu\nhead %llu:%s\n", first,
           last, last, hex);

    return ZTCTL_OK;

broken:

    fclose(f);

    return ZTCTL_FAILED;
}


/*
 * The value of a top-level member of a canonical line: a number, or a
 * string without escapes (what "seq" and "prev" are).  0 or -1.
 */
static int
audit_field(const char *line, const char *name, char *out, size_t size)
{
    char         key[40];
    const char  *p, *e;
    size_t       len;

    snprintf(key, sizeof(key), ",\"%s\":", name);
    p = strstr(line, key);
    if (p == NULL) {
        return -1;
    }

    p += strlen(key);

    if (*p == '"') {
        p++;
        e = strchr(p, '"');
    } else {
        e = p + strspn(p, "0123456789");
    }

    if (e == NULL || e == p) {
        return -1;
    }

    len = (size_t) (e - p);
    if (len >= size) {
        return -1;
    }

    memcpy(out, p, len);
    out[len] = '\0';

    return 0;
}


static int
audit_parse_head(const char *s, uint64_t *seq, uint8_t hash[STORE_HASH_LEN])
{
    unsigned long long   n;
    char                *end;

    errno = 0;
    n = strtoull(s, &end, 10);

    if (!isdigit((unsigned char) *s) || errno != 0 || n == 0 || *end != ':'
        || journal_unhex(end + 1, strlen(end + 1), hash) != 0)
    {
        return -1;
    }

    *seq = n;

    return 0;
}


/* ---- arguments ------------------------------------------------------ */

static int
audit_parse_count(const char *s, unsigned long *n)
{
    char  *end;

    errno = 0;
    *n = strtoul(s, &end, 10);

    return !isdigit((unsigned char) s[0]) || *end != '\0' || errno != 0
           || *n == 0 || *n > 1000000000ul ? -1 : 0;
}


/*
 * "2026-11-25", "2026-11-25T09:30:00Z" (UTC) or an age: "30m", "12h",
 * "7d" (that long ago).
 */
static int
audit_parse_time(const char *s, int64_t *ms)
{
    struct tm            tm;
    unsigned long long   n;
    const char          *end;
    char                *e;
    time_t               t;

    if (isdigit((unsigned char) s[0])) {
        errno = 0;
        n = strtoull(s, &e, 10);
        if (errno == 0 && e[0] != '\0' && e[1] == '\0' && n > 0
            && n < 100000)
        {
            t = time(NULL);
            switch (e[0]) {
            case 's': *ms = ((int64_t) t - (int64_t) n) * 1000; return 0;
            case 'm': *ms = ((int64_t) t - (int64_t) n * 60) * 1000;
                      return 0;
            case 'h': *ms = ((int64_t) t - (int64_t) n * 3600) * 1000;
                      return 0;
            case 'd': *ms = ((int64_t) t - (int64_t) n * 86400) * 1000;
                      return 0;
            default: break;
            }
        }
    }

    memset(&tm, 0, sizeof(tm));

    end = strptime(s, "%Y-%m-%d", &tm);
    if (end == NULL) {
        return -1;
    }

    if (*end == 'T') {
        end = strptime(end + 1, "%H:%M:%S", &tm);
        if (end == NULL || strcmp(end, "Z") != 0) {
            return -1;
        }
    } else if (*end != '\0') {
        return -1;
    }

    t = timegm(&tm);
    if (t == (time_t) -1) {
        return -1;
    }

    *ms = (int64_t) t * 1000;

    return 0;
}
