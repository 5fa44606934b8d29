# ztctl/: the administration command.  It opens the store directly
# (LMDB allows several processes), reads certificates with the CA
# library, and uses the identity library (trustd/identity.mk, included
# before this file) for password hashes, TOTP enrollment and sealing.
# Objects go to $(B)/ztctl-obj/ because $(B)/ztctl is the binary.
ZTCTL_OB   := $(B)/ztctl-obj
ZTCTL_OBJS := $(ZTCTL_OB)/ztctl.o $(ZTCTL_OB)/audit.o $(ZTCTL_OB)/status.o \
              $(ZTCTL_OB)/admin.o $(ZTCTL_OB)/json.o $(ZTCTL_OB)/complete.o \
              $(ZTCTL_OB)/maint.o $(ZTCTL_OB)/policy_tools.o $(ZTCTL_OB)/webauthn.o \
              $(ZTCTL_OB)/cluster.o

$(ZTCTL_OB)/%.o: ztctl/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(B)/ztctl: $(ZTCTL_OBJS) $(TRUSTD_LIB) $(IDENTITY_LIB) $(CA_LIB) $(WIRE_LIB)
	$(CC) $(LDFLAGS) -o $@ $(ZTCTL_OBJS) $(TRUSTD_LIB) $(IDENTITY_LIB) \
	    $(CA_LIB) $(WIRE_LIB) $(LMDB_LIBS) $(IDENTITY_LIBS) -lcrypto \
	    $(CLUSTER_LIBS)

BINS += $(B)/ztctl
