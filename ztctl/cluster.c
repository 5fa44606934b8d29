/*
 * ztctl cluster: the cluster as the database sees it (nodes, their
 * positions and policies), and taking a store out of a cluster
 * (docs/cluster.md).
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ztctl.h"
#include "trustd/cluster.h"

static int ztctl_cluster_nodes(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);
static int ztctl_cluster_leave(ztctl_t *ctl, const ztctl_cmd_t *cmd,
    int argc, char **argv);

const ztctl_cmd_t  ztctl_cluster_cmds[] = {
    { "nodes", ztctl_cluster_nodes, ztctl_opts_json, "[--json]",
      "Ask the cluster database (cluster_database in trustd.conf, -c):\n"
      "the cluster id, the change-log head, and each node's program,\n"
      "position, how far behind the head it is, its policy version and\n"
      "when it last reported (every 5 s).  A policy that differs from the\n"
      "other nodes' is marked with '!'.  --json: keys in ztctl(8)." },
    { "leave", ztctl_cluster_leave, ztctl_opts_help, "",
      "Make this node's store a single-node store again (trustd must be\n"
      "stopped; set \"cluster off\" in trustd.conf before starting it).\n"
      "The records stay as the node last saw them; the database and the\n"
      "other nodes are not touched.  To rejoin, move the store aside: a\n"
      "node with an empty store bootstraps from the database." },
    { NULL, NULL, NULL, NULL, NULL }
};


typedef struct {
    cluster_node_t  *nodes;
    size_t           n;
    size_t           size;
} ztctl_nodes_t;


static int
ztctl_cluster_node_cb(void *arg, const cluster_node_t *node)
{
    ztctl_nodes_t   *ns = arg;
    cluster_node_t  *p;

    if (ns->n == ns->size) {
        p = realloc(ns->nodes, (ns->size ? 2 * ns->size : 8) * sizeof(*p));
        if (p == NULL) {
            return -1;
        }
        ns->nodes = p;
        ns->size = ns->size ? 2 * ns->size : 8;
    }

    ns->nodes[ns->n++] = *node;

    return 0;
}


/* The policy most trustd nodes run: a different one is worth a mark. */
static const char *
ztctl_cluster_policy(const ztctl_nodes_t *ns)
{
    size_t  i, j, best, count, most;

    best = ns->n;
    most = 0;

    for (i = 0; i < ns->n; i++) {
        if (strcmp(ns->nodes[i].program, "trustd") != 0) {
            continue;
        }

        count = 0;
        for (j = 0; j < ns->n; j++) {
            count += strcmp(ns->nodes[i].policy, ns->nodes[j].policy) == 0;
        }

        if (count > most) {
            most = count;
            best = i;
        }
    }

    return best < ns->n ? ns->nodes[best].policy : "";
}


static int
ztctl_cluster_config(ztctl_t *ctl, config_t *cfg)
{
    config_err_t  cerr;

    if (ctl->store_dir != NULL) {
        fprintf(stderr, "ztctl: cluster commands need trustd's "
                "configuration (-c), which names the cluster database\n");
        return ZTCTL_USAGE;
    }

    if (config_load(ctl->config_path, cfg, &cerr) != 0) {
        fprintf(stderr, "ztctl: %s\n", cerr.msg);
        return ZTCTL_FAILED;
    }

    return ZTCTL_OK;
}


static int
ztctl_cluster_nodes(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    cluster_conf_t   cc;
    cluster_info_t   info;
    ztctl_nodes_t    ns;
    config_t        *cfg;
    json_t          *root, *arr, *o;
    const char      *usual;
    char             err[512];
    size_t           i;
    int              json, rc;

    if (ztctl_simple_opts(ctl, cmd, argc, argv, &json, &rc)) {
        return rc;
    }

    cfg = malloc(sizeof(*cfg));
    if (cfg == NULL) {
        fprintf(stderr, "ztctl: out of memory\n");
        return ZTCTL_FAILED;
    }

    rc = ztctl_cluster_config(ctl, cfg);
    if (rc != ZTCTL_OK) {
        free(cfg);
        return rc;
    }

    if (!cfg->cluster) {
        fprintf(stderr, "ztctl: cluster mode is off in %s\n",
                ctl->config_path);
        free(cfg);
        return ZTCTL_FAILED;
    }

    memset(&ns, 0, sizeof(ns));
    cluster_conf_init(&cc, cfg, "ztctl");

    rc = cluster_describe(&cc, &info, ztctl_cluster_node_cb, &ns, err,
                          sizeof(err));
    free(cfg);

    if (rc != 0) {
        fprintf(stderr, "ztctl: %s\n", err);
        free(ns.nodes);
        return ZTCTL_FAILED;
    }

    usual = ztctl_cluster_policy(&ns);

    if (json) {
        arr = json_array();
        root = json_pack("{s:s, s:I, s:i, s:I, s:o}",
                         "cluster_id", info.cluster_id,
                         "head", (json_int_t) info.head,
                         "store_schema", (int) info.store_schema,
                         "changes_kept", (json_int_t) info.changes,
                         "nodes", arr);

        for (i = 0; root != NULL && i < ns.n; i++) {
            o = json_pack("{s:s, s:s, s:I, s:I, s:s, s:b, s:f}",
                          "node", ns.nodes[i].node,
                          "program", ns.nodes[i].program,
                          "position", (json_int_t) ns.nodes[i].position,
                          "behind", (json_int_t) (info.head
                                                  - ns.nodes[i].position),
                          "policy", ns.nodes[i].policy,
                          "policy_differs",
                          strcmp(ns.nodes[i].program, "trustd") == 0
                          && strcmp(ns.nodes[i].policy, usual) != 0,
                          "seen_seconds_ago",
                          (double) ns.nodes[i].seen_age_ms / 1000.0);
            if (o == NULL || json_array_append_new(arr, o) != 0) {
                json_decref(root);
                root = NULL;
            }
        }

        free(ns.nodes);

        return ztctl_json_print(root);
    }

    printf("cluster %s: change-log head %" PRIu64 " (%" PRIu64 " entries "
           "kept), store schema %u\n", info.cluster_id, info.head,
           info.changes, info.store_schema);
    printf("%-24s %-10s %10s %7s  %-40s %s\n", "NODE", "PROGRAM", "POSITION",
           "BEHIND", "POLICY", "SEEN");

    for (i = 0; i < ns.n; i++) {
        printf("%-24s %-10s %10" PRIu64 " %7" PRIu64 "  %-40s %.0fs ago\n",
               ns.nodes[i].node, ns.nodes[i].program, ns.nodes[i].position,
               info.head - ns.nodes[i].position,
               strcmp(ns.nodes[i].program, "trustd") == 0
               && strcmp(ns.nodes[i].policy, usual) != 0
               ? "! differs" : ns.nodes[i].policy,
               (double) ns.nodes[i].seen_age_ms / 1000.0);
    }

    free(ns.nodes);

    return ZTCTL_OK;
}


static int
ztctl_cluster_leave(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    store_err_t  err;
    store_t     *st;
    char         id[STORE_CLUSTER_ID_LEN], path[CONFIG_PATH_MAX];
    char         why[512];
    uint64_t     pos;
    int          rc;

    if (ztctl_simple_opts(ctl, cmd, argc, argv, NULL, &rc)) {
        return rc;
    }

    /* where the store is, without attaching to the cluster */
    rc = ztctl_open(ctl, 0);
    if (rc != ZTCTL_OK) {
        return rc;
    }
    snprintf(path, sizeof(path), "%s", ctl->store_path);
    ztctl_close_store(ctl);

    if (ztctl_trustd_running(ctl, path, why, sizeof(why))) {
        fprintf(stderr, "ztctl: trustd is running (%s); stop it first\n",
                why);
        return ZTCTL_FAILED;
    }

    if (store_open(&st, path, 0, 0, &err) != 0) {
        return ztctl_store_failed(&err);
    }

    rc = store_cluster_state(st, id, &pos, &err);
    if (rc == STORE_NOTFOUND) {
        store_close(st);
        fprintf(stderr, "ztctl: the store %s follows no cluster\n", path);
        return ZTCTL_NOTFOUND;
    }

    if (rc != 0 || store_cluster_join(st, NULL, 0, &err) != 0) {
        store_close(st);
        return ztctl_store_failed(&err);
    }

    store_close(st);

    printf("the store %s left cluster %s at change %" PRIu64 "; set "
           "\"cluster off\" in trustd.conf before starting trustd\n", path,
           id, pos);

    return ZTCTL_OK;
}
