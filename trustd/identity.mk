# trustd/id_*.c: the identity library (passwords, TOTP, sealed secrets,
# session tokens, the verified-token cache, upstream assertions).  Its
# objects share trustd/'s object directory and pattern rule
# (trustd/build.mk); it is a library of its own because it alone pulls in
# libjwt, jansson, liboath and libqrencode.
IDENTITY_SRCS   := id_util id_password id_totp id_keys id_seal id_token \
                   id_cache id_assertion id_webauthn
IDENTITY_OBJS   := $(patsubst %,$(TRUSTD_OB)/%.o,$(IDENTITY_SRCS))
IDENTITY_LIB    := $(B)/libztidentity.a
IDENTITY_LIBS   := -ljwt -ljansson -loath -lqrencode -lcbor -lcrypto

$(IDENTITY_LIB): $(IDENTITY_OBJS)
	ar rcs $@ $^

$(B)/tests/unit/test_identity: $(B)/tests/unit/test_identity.o \
    $(IDENTITY_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(IDENTITY_LIBS)

UNIT_TESTS += $(B)/tests/unit/test_identity

# WebAuthn verification against ceremonies made by a software
# authenticator inside the test.
$(B)/tests/unit/test_webauthn: $(B)/tests/unit/test_webauthn.o \
    $(IDENTITY_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(IDENTITY_LIBS) -lpthread

UNIT_TESTS += $(B)/tests/unit/test_webauthn
