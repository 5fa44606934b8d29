# trustd/inference.mk: trust inference (stage three) -- the score, the
# behaviour state and the blocklists.  Included by the top Makefile after
# trustd/build.mk, whose pattern rule builds $(TRUSTD_OB)/%.o.  The
# objects go into libtrustd (config.c and decide.c use them), so trustd
# and ztctl get them from there.  The config fuzz target links score.c
# and blocklist.c through tests/build.mk.

INFERENCE_OBJS := $(TRUSTD_OB)/score.o $(TRUSTD_OB)/behaviour.o \
                  $(TRUSTD_OB)/blocklist.o

$(TRUSTD_LIB): $(INFERENCE_OBJS)

$(B)/tests/unit/test_decide: $(INFERENCE_OBJS) $(TRUSTD_OB)/journal_fmt.o

$(B)/tests/unit/test_score: $(B)/tests/unit/test_score.o \
    $(TRUSTD_OB)/score.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka

$(B)/tests/unit/test_blocklist: $(B)/tests/unit/test_blocklist.o \
    $(TRUSTD_OB)/blocklist.o $(TRUSTD_OB)/log.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka

$(B)/tests/unit/test_behaviour: $(B)/tests/unit/test_behaviour.o \
    $(TRUSTD_OB)/behaviour.o $(TRUSTD_OB)/store.o $(TRUSTD_OB)/log.o \
    $(STORE_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(LMDB_LIBS)

UNIT_TESTS += $(B)/tests/unit/test_score $(B)/tests/unit/test_blocklist \
              $(B)/tests/unit/test_behaviour
