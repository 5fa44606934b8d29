# bench/: micro-benchmarks and the gateway throughput benchmark.
#
#   make bench-policy    a 1,000-rule policy: compile time and the median
#                        and p99 cost of one pol_eval(); fails if the
#                        median exceeds 2 us
#   make bench           the gateway benchmark (bench/README.md): wrk on
#                        loopback against plain nginx, ztgate with and
#                        without the decision cache, and nginx auth_request
#                        to an HTTP authorizer built from trustd's code;
#                        options in BENCH_ARGS, e.g.
#                        make bench BENCH_ARGS="--rounds 2 --duration 3"
#   make bench-cluster   cluster mode (issue 11): decision throughput with
#                        trustd in cluster mode against single-node (fails
#                        if below 0.95 of it) and change propagation
#                        latency p50/p99 between two nodes on a throw-away
#                        PostgreSQL; options in CLUSTER_BENCH_ARGS, e.g.
#                        make bench-cluster CLUSTER_BENCH_ARGS="--no-fail"
.PHONY: bench-policy bench bench-cluster

$(B)/bench/policy_bench.o: CPPFLAGS += -Ipolicy

$(B)/bench/policy_bench: $(B)/bench/policy_bench.o $(POLICY_LIB)
	$(CC) $(LDFLAGS) -o $@ $^

bench-policy: $(B)/bench/policy_bench
	$(B)/bench/policy_bench

# The auth_request variant's authorizer: trustd's own decision code
# (config, store, policy, identity, decide) behind an HTTP/1.1 front.
$(B)/bench/authz.o: CPPFLAGS += -Itrustd

$(B)/bench/authz: $(B)/bench/authz.o $(TRUSTD_LIB) $(POLICY_LIB) \
    $(IDENTITY_LIB) $(WIRE_LIB)
	$(CC) $(LDFLAGS) -o $@ $(B)/bench/authz.o $(TRUSTD_LIB) \
	    $(POLICY_LIB) $(IDENTITY_LIB) $(WIRE_LIB) $(LMDB_LIBS) \
	    $(IDENTITY_LIBS)

BENCH_ARGS ?=

bench: all $(B)/bench/authz
	$(PYTHON) bench/gateway-bench.py --bin-dir $(CURDIR)/$(B) \
	    --module $(CURDIR)/build/ngx_http_zt_module.so $(BENCH_ARGS)

# The cluster benchmark (bench/README.md): PostgreSQL from
# /usr/lib/postgresql/*/bin, nginx and wrk; about 2 minutes.
CLUSTER_BENCH_ARGS ?=

bench-cluster: all
	$(PYTHON) bench/cluster-bench.py --bin-dir $(CURDIR)/$(B) \
	    --module $(CURDIR)/build/ngx_http_zt_module.so $(CLUSTER_BENCH_ARGS)

# The store scale benchmark: 1,000 vs 1,000,000 enrolled devices (and
# 100,000 users), built with the store's bulk enrollment; decision cost
# must grow by at most 2x.  STORE_BENCH_ARGS e.g. "--devices 200000".
STORE_BENCH_ARGS ?=

$(B)/bench/store_bench: $(B)/bench/store_bench.o $(TRUSTD_LIB) $(POLICY_LIB) \
    $(IDENTITY_LIB) $(WIRE_LIB)
	$(CC) $(LDFLAGS) -o $@ $(B)/bench/store_bench.o $(TRUSTD_LIB) \
	    $(POLICY_LIB) $(IDENTITY_LIB) $(WIRE_LIB) $(LMDB_LIBS) \
	    $(IDENTITY_LIBS)

bench-store: $(B)/bench/store_bench
	$(B)/bench/store_bench $(STORE_BENCH_ARGS)

.PHONY: bench-store
