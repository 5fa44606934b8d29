# tests/: unit tests (cmocka) and fuzz targets.  Included last by the top
# Makefile, so UNIT_TESTS already holds every component's test binary.
#
#   make unit            build and run every binary in UNIT_TESTS
#   make fuzz-replay     run each fuzz target over its saved corpus, built
#                        with $(CC) -fsanitize=address,undefined and
#                        tests/fuzz/replay.c instead of libFuzzer
#   make fuzz            a bounded libFuzzer burst per target
#                        (FUZZ_SECONDS, default 20) on a temporary copy of
#                        the corpus: nothing is written into the repo
#   make fuzz-long       a longer run (FUZZ_LONG_SECONDS, default 600) that
#                        merges new coverage into tests/fuzz/corpus/; review
#                        and commit the new files
#   make fuzz-corpus     regenerate the seed files from gen_corpus.py
#
# Crash reproducers from fuzz and fuzz-long land in build/fuzz/artifacts/;
# replay one with build/fuzz-replay/<target> <file>.

# --- unit tests

UNIT_TESTS += $(B)/tests/unit/test_wire

$(B)/tests/unit/test_wire: $(B)/tests/unit/test_wire.o $(WIRE_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka

# Runs all of them even when one fails, so one report shows every failure.
unit: $(UNIT_TESTS)
	@rc=0; \
	for t in $(UNIT_TESTS); do \
	    echo "==> $$t"; \
	    case $$t in /*) x=$$t ;; *) x=./$$t ;; esac; \
	    $$x || { echo "FAILED: $$t"; rc=1; }; \
	done; \
	exit $$rc

# --- fuzzing
#
# The fuzz builds use their own flags and trees, whatever SANITIZE says:
# replay always runs under ASan+UBSan, libFuzzer always needs clang.

FUZZ_TARGETS      := fuzz_wire_req fuzz_wire_resp fuzz_policy fuzz_posture \
                     fuzz_config fuzz_webauthn
FUZZ_CORPUS       := tests/fuzz/corpus
FUZZ_SECONDS      ?= 20
FUZZ_LONG_SECONDS ?= 600
FUZZ_MAX_LEN      ?= 70000
FUZZ_CC           ?= clang

FUZZ_CFLAGS       := -std=c11 $(WARN) -fno-strict-aliasing -O1 -g \
                     -fno-omit-frame-pointer -fno-sanitize-recover=all
FUZZ_REPLAY_SAN   := -fsanitize=address,undefined
FUZZ_LIBF_SAN     := -fsanitize=address,undefined
FUZZ_RUN_FLAGS    := -max_len=$(FUZZ_MAX_LEN) -timeout=10 \
                     -print_final_stats=1

FUZZ_RB           := build/fuzz-replay
FUZZ_LB           := build/fuzz

FUZZ_R_OBJS       := $(FUZZ_RB)/wire/zt_wire.o $(FUZZ_RB)/tests/fuzz/replay.o \
                     $(patsubst %,$(FUZZ_RB)/tests/fuzz/%.o,$(FUZZ_TARGETS))
FUZZ_L_OBJS       := $(FUZZ_LB)/wire/zt_wire.o \
                     $(patsubst %,$(FUZZ_LB)/tests/fuzz/%.o,$(FUZZ_TARGETS))
# fuzz_policy also links the policy library, built with the fuzz flags
FUZZ_POL_SRCS     := $(filter-out policy/ztpolicy.c,$(wildcard policy/*.c))
FUZZ_POL_R_OBJS   := $(patsubst %.c,$(FUZZ_RB)/%.o,$(FUZZ_POL_SRCS))
FUZZ_POL_L_OBJS   := $(patsubst %.c,$(FUZZ_LB)/%.o,$(FUZZ_POL_SRCS))
FUZZ_R_OBJS       += $(FUZZ_POL_R_OBJS)
FUZZ_L_OBJS       += $(FUZZ_POL_L_OBJS)
# fuzz_posture: the posture report parser (trustd/portal_util.c, jansson);
# fuzz_config: trustd's configuration reader (trustd/config.c, log.c)
FUZZ_POST_SRCS    := trustd/portal_util.c
FUZZ_CONF_SRCS    := trustd/config.c trustd/log.c \
                     $(wildcard trustd/score.c trustd/blocklist.c)
# fuzz_webauthn: WebAuthn verification (trustd/id_webauthn.c, libcbor)
FUZZ_WA_SRCS      := trustd/id_webauthn.c trustd/id_util.c
FUZZ_R_OBJS       += $(patsubst %.c,$(FUZZ_RB)/%.o,$(FUZZ_POST_SRCS) \
                     $(FUZZ_CONF_SRCS) $(FUZZ_WA_SRCS))
FUZZ_L_OBJS       += $(patsubst %.c,$(FUZZ_LB)/%.o,$(FUZZ_POST_SRCS) \
                     $(FUZZ_CONF_SRCS) $(FUZZ_WA_SRCS))
FUZZ_R_BINS       := $(addprefix $(FUZZ_RB)/,$(FUZZ_TARGETS))
FUZZ_L_BINS       := $(addprefix $(FUZZ_LB)/,$(FUZZ_TARGETS))

# The wire targets share one harness (tests/fuzz/fuzz_wire_common.c).
FUZZ_WIRE_COMMON  := tests/fuzz/fuzz_wire_common.o
FUZZ_R_OBJS       += $(FUZZ_RB)/$(FUZZ_WIRE_COMMON)
FUZZ_L_OBJS       += $(FUZZ_LB)/$(FUZZ_WIRE_COMMON)

$(FUZZ_RB)/fuzz_wire_req $(FUZZ_RB)/fuzz_wire_resp: \
    $(FUZZ_RB)/$(FUZZ_WIRE_COMMON)
$(FUZZ_LB)/fuzz_wire_req $(FUZZ_LB)/fuzz_wire_resp: \
    $(FUZZ_LB)/$(FUZZ_WIRE_COMMON)

$(FUZZ_R_OBJS): $(FUZZ_RB)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(FUZZ_CFLAGS) $(FUZZ_REPLAY_SAN) -MMD -MP -c -o $@ $<

$(FUZZ_L_OBJS): $(FUZZ_LB)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) $(FUZZ_LIBF_SAN) \
	    -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_R_BINS): $(FUZZ_RB)/%: $(FUZZ_RB)/tests/fuzz/%.o \
                $(FUZZ_RB)/tests/fuzz/replay.o $(FUZZ_RB)/wire/zt_wire.o
	$(CC) $(FUZZ_REPLAY_SAN) -o $@ $^ $(FUZZ_LDLIBS)

$(FUZZ_L_BINS): $(FUZZ_LB)/%: $(FUZZ_LB)/tests/fuzz/%.o \
                $(FUZZ_LB)/wire/zt_wire.o
	$(FUZZ_CC) $(FUZZ_LIBF_SAN) -fsanitize=fuzzer -o $@ $^ $(FUZZ_LDLIBS)

$(FUZZ_RB)/fuzz_policy: $(FUZZ_POL_R_OBJS)
$(FUZZ_LB)/fuzz_policy: $(FUZZ_POL_L_OBJS)
$(FUZZ_RB)/tests/fuzz/fuzz_policy.o $(FUZZ_LB)/tests/fuzz/fuzz_policy.o: \
    CPPFLAGS += -Ipolicy

$(FUZZ_RB)/fuzz_posture: $(patsubst %.c,$(FUZZ_RB)/%.o,$(FUZZ_POST_SRCS))
$(FUZZ_LB)/fuzz_posture: $(patsubst %.c,$(FUZZ_LB)/%.o,$(FUZZ_POST_SRCS))
$(FUZZ_RB)/fuzz_config: $(patsubst %.c,$(FUZZ_RB)/%.o,$(FUZZ_CONF_SRCS))
$(FUZZ_LB)/fuzz_config: $(patsubst %.c,$(FUZZ_LB)/%.o,$(FUZZ_CONF_SRCS))
$(FUZZ_RB)/fuzz_posture $(FUZZ_LB)/fuzz_posture: FUZZ_LDLIBS := -ljansson
$(FUZZ_RB)/fuzz_webauthn: $(patsubst %.c,$(FUZZ_RB)/%.o,$(FUZZ_WA_SRCS))
$(FUZZ_LB)/fuzz_webauthn: $(patsubst %.c,$(FUZZ_LB)/%.o,$(FUZZ_WA_SRCS))
$(FUZZ_RB)/fuzz_webauthn $(FUZZ_LB)/fuzz_webauthn: \
    FUZZ_LDLIBS := -lcbor -ljansson -lcrypto
$(FUZZ_RB)/tests/fuzz/fuzz_posture.o $(FUZZ_LB)/tests/fuzz/fuzz_posture.o \
$(FUZZ_RB)/tests/fuzz/fuzz_config.o $(FUZZ_LB)/tests/fuzz/fuzz_config.o \
$(FUZZ_RB)/tests/fuzz/fuzz_webauthn.o $(FUZZ_LB)/tests/fuzz/fuzz_webauthn.o: \
    CPPFLAGS += -Itrustd

-include $(FUZZ_R_OBJS:.o=.d) $(FUZZ_L_OBJS:.o=.d)

.PHONY: fuzz-long fuzz-corpus

fuzz-replay: $(FUZZ_R_BINS)
	@rc=0; \
	for t in $(FUZZ_TARGETS); do \
	    $(FUZZ_RB)/$$t $(FUZZ_CORPUS)/$$t || rc=1; \
	done; \
	exit $$rc

# libFuzzer adds inputs to the first corpus directory it is given, so it
# works on a copy that is thrown away afterwards.
fuzz: $(FUZZ_L_BINS)
	@mkdir -p $(FUZZ_LB)/artifacts
	@rc=0; \
	for t in $(FUZZ_TARGETS); do \
	    tmp=$$(mktemp -d) || exit 1; \
	    cp -R $(FUZZ_CORPUS)/$$t/. $$tmp/; \
	    echo "==> $$t: $(FUZZ_SECONDS) s"; \
	    $(FUZZ_LB)/$$t $(FUZZ_RUN_FLAGS) \
	        -max_total_time=$(FUZZ_SECONDS) \
	        -artifact_prefix=$(FUZZ_LB)/artifacts/$$t- \
	        $$tmp || { echo "FAILED: $$t"; rc=1; }; \
	    rm -rf $$tmp; \
	done; \
	exit $$rc

# Merge keeps only inputs that add coverage, so the repo corpus grows by a
# handful of small files, not by everything the run tried.
fuzz-long: $(FUZZ_L_BINS)
	@mkdir -p $(FUZZ_LB)/artifacts
	@rc=0; \
	for t in $(FUZZ_TARGETS); do \
	    tmp=$$(mktemp -d) || exit 1; \
	    cp -R $(FUZZ_CORPUS)/$$t/. $$tmp/; \
	    echo "==> $$t: $(FUZZ_LONG_SECONDS) s"; \
	    $(FUZZ_LB)/$$t $(FUZZ_RUN_FLAGS) \
	        -max_total_time=$(FUZZ_LONG_SECONDS) \
	        -artifact_prefix=$(FUZZ_LB)/artifacts/$$t- \
	        $$tmp || { echo "FAILED: $$t"; rc=1; }; \
	    $(FUZZ_LB)/$$t -merge=1 -max_len=$(FUZZ_MAX_LEN) \
	        $(FUZZ_CORPUS)/$$t $$tmp || rc=1; \
	    rm -rf $$tmp; \
	done; \
	exit $$rc

fuzz-corpus:
	$(PYTHON) tests/fuzz/gen_corpus.py $(FUZZ_CORPUS)
