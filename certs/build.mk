# certs/: the device CA library, the ztca command and their unit test.
# Consumers link $(CA_LIB) with -lcrypto.
CA_OBJS := $(B)/certs/ca.o $(B)/certs/ca_index.o $(B)/certs/ca_info.o \
           $(B)/certs/ca_p12.o \
           $(B)/certs/ca_util.o
CA_LIB  := $(B)/libztca.a

$(CA_LIB): $(CA_OBJS)
	ar rcs $@ $^

$(B)/ztca: $(B)/certs/ztca.o $(CA_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ -lcrypto

$(B)/tests/unit/test_ca: $(B)/tests/unit/test_ca.o $(CA_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka -lcrypto

BINS       += $(B)/ztca
UNIT_TESTS += $(B)/tests/unit/test_ca
