# bench/: micro-benchmarks.
#
#   make bench-policy    a 1,000-rule policy: compile time and the median
#                        and p99 cost of one pol_eval(); fails if the
#                        median exceeds 2 us
.PHONY: bench-policy

$(B)/bench/policy_bench.o: CPPFLAGS += -Ipolicy

$(B)/bench/policy_bench: $(B)/bench/policy_bench.o $(POLICY_LIB)
	$(CC) $(LDFLAGS) -o $@ $^

bench-policy: $(B)/bench/policy_bench
	$(B)/bench/policy_bench
