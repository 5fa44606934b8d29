# trustd/: the decision daemon, and the core library (store, config, log,
# decide) that ztctl and the unit tests link too.  store.c is the only
# source that includes lmdb.h.
#
# The binary is $(B)/trustd, so the objects cannot live in $(B)/trustd/
# as the generic rule would put them: they go to $(B)/trustd-obj/.
TRUSTD_LIB_OBJS := $(TRUSTD_OB)/store.o $(TRUSTD_OB)/config.o \
                   $(TRUSTD_OB)/sock.o $(TRUSTD_OB)/journal_fmt.o \
                   $(TRUSTD_OB)/log.o $(TRUSTD_OB)/decide.o \
                   $(TRUSTD_OB)/enroll.o $(TRUSTD_OB)/cluster.o
TRUSTD_LIB      := $(B)/libtrustd.a
TRUSTD_OBJS     := $(TRUSTD_OB)/main.o $(TRUSTD_OB)/server.o \
                   $(TRUSTD_OB)/journal.o $(TRUSTD_OB)/metrics.o
LMDB_LIBS       := -llmdb -lcrypto
# Cluster mode (cluster.c): libpq, and the follower's thread.
CLUSTER_LIBS    := -lpq -lpthread
# What store.o needs besides LMDB: the journal's canonical form (which
# names signals and outcomes) for the hash chain.
STORE_DEPS      := $(TRUSTD_OB)/journal_fmt.o $(TRUSTD_OB)/score.o \
                   $(WIRE_LIB)

$(TRUSTD_OB)/%.o: trustd/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(TRUSTD_LIB): $(TRUSTD_LIB_OBJS)
	ar rcs $@ $^

$(B)/trustd: $(TRUSTD_OBJS) $(PORTAL_OBJS) $(TRUSTD_LIB) $(POLICY_LIB) \
    $(IDENTITY_LIB) $(WIRE_LIB)
	$(CC) $(LDFLAGS) -o $@ $(TRUSTD_OBJS) $(PORTAL_OBJS) $(TRUSTD_LIB) \
	    $(POLICY_LIB) $(IDENTITY_LIB) $(WIRE_LIB) $(LMDB_LIBS) \
	    $(PORTAL_LIBS) $(IDENTITY_LIBS) $(CLUSTER_LIBS)

BINS += $(B)/trustd

# Unit tests.  They link a copy of store.c built with STORE_TESTING, which
# adds a hook to write raw records (corruption tests) and nothing else.
TRUSTD_TEST_STORE := $(B)/tests/unit/store_testing.o

$(TRUSTD_TEST_STORE): trustd/store.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -DSTORE_TESTING $(CFLAGS) -MMD -MP -c -o $@ $<

$(B)/tests/unit/test_store.o $(B)/tests/unit/test_decide.o: \
    CPPFLAGS += -DSTORE_TESTING

$(B)/tests/unit/test_store: $(B)/tests/unit/test_store.o \
    $(TRUSTD_TEST_STORE) $(TRUSTD_OB)/log.o $(STORE_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(LMDB_LIBS)

$(B)/tests/unit/test_decide: $(B)/tests/unit/test_decide.o \
    $(TRUSTD_OB)/decide.o $(TRUSTD_TEST_STORE) $(TRUSTD_OB)/log.o \
    $(POLICY_LIB) $(IDENTITY_LIB) $(WIRE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(LMDB_LIBS) $(IDENTITY_LIBS)

UNIT_TESTS += $(B)/tests/unit/test_store $(B)/tests/unit/test_decide

# The audit journal: the chain (store.c), its canonical form and the writer.
$(B)/tests/unit/test_journal.o: CPPFLAGS += -DSTORE_TESTING

$(B)/tests/unit/test_journal: $(B)/tests/unit/test_journal.o \
    $(TRUSTD_TEST_STORE) $(TRUSTD_OB)/journal.o $(TRUSTD_OB)/log.o \
    $(STORE_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(LMDB_LIBS) -lpthread

UNIT_TESTS += $(B)/tests/unit/test_journal

# Log line formats; the metrics' counting and text format.
$(B)/tests/unit/test_log: $(B)/tests/unit/test_log.o $(TRUSTD_OB)/log.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka

$(B)/tests/unit/test_metrics: $(B)/tests/unit/test_metrics.o \
    $(TRUSTD_OB)/metrics.o $(TRUSTD_OB)/mhd_util.o $(TRUSTD_OB)/config.o \
    $(TRUSTD_OB)/sock.o \
    $(TRUSTD_OB)/log.o $(TRUSTD_OB)/score.o $(TRUSTD_OB)/blocklist.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka -lmicrohttpd -lpthread

UNIT_TESTS += $(B)/tests/unit/test_log $(B)/tests/unit/test_metrics

# Cluster mode: the store's side of the replication contract, with a
# replicator that keeps its change log in memory (the test's own).
$(B)/tests/unit/test_store_cluster: $(B)/tests/unit/test_store_cluster.o \
    $(TRUSTD_TEST_STORE) $(TRUSTD_OB)/log.o $(STORE_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(LMDB_LIBS)

UNIT_TESTS += $(B)/tests/unit/test_store_cluster
