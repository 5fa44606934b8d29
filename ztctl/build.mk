# ztctl/: the administration command.  It opens the store directly
# (LMDB allows several processes) and reads certificates with the CA
# library.  Objects go to $(B)/ztctl-obj/ because $(B)/ztctl is the
# binary.
ZTCTL_OB   := $(B)/ztctl-obj
ZTCTL_OBJS := $(ZTCTL_OB)/ztctl.o

$(ZTCTL_OB)/%.o: ztctl/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(B)/ztctl: $(ZTCTL_OBJS) $(TRUSTD_LIB) $(CA_LIB)
	$(CC) $(LDFLAGS) -o $@ $(ZTCTL_OBJS) $(TRUSTD_LIB) $(CA_LIB) \
	    $(LMDB_LIBS) -lcrypto

BINS += $(B)/ztctl
