# policy/: the policy language library (lexer, parser, checker, compiler,
# evaluator, formatter, test cases) that trustd links, and the ztpolicy
# CLI.  The library needs nothing beyond libc.
POLICY_OBJS := $(B)/policy/util.o $(B)/policy/lexer.o $(B)/policy/parser.o \
               $(B)/policy/check.o $(B)/policy/compile.o \
               $(B)/policy/eval.o $(B)/policy/fmt.o $(B)/policy/load.o \
               $(B)/policy/cases.o
POLICY_LIB  := $(B)/libztpolicy.a

$(POLICY_LIB): $(POLICY_OBJS)
	ar rcs $@ $^

$(B)/ztpolicy: $(B)/policy/ztpolicy.o $(POLICY_LIB)
	$(CC) $(LDFLAGS) -o $@ $^

BINS += $(B)/ztpolicy

# Unit tests: one binary per unit, all against the archive.
POLICY_TESTS := $(B)/tests/unit/test_policy_lexer \
                $(B)/tests/unit/test_policy_parser \
                $(B)/tests/unit/test_policy_check \
                $(B)/tests/unit/test_policy_eval \
                $(B)/tests/unit/test_policy_files

$(POLICY_TESTS): $(B)/tests/unit/%: $(B)/tests/unit/%.o $(POLICY_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka

$(B)/tests/unit/test_policy_%.o: CPPFLAGS += -Ipolicy

UNIT_TESTS += $(POLICY_TESTS)
