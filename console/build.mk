# console/: ztconsole, the staff enrollment console behind the gateway
# (docs/console.md).  Included by the top Makefile after ztctl/build.mk:
# it links what ztctl links (the store and enrollment library, the
# identity library, the CA library) plus the portal's pure helpers
# (HTML buffer and escaping, languages, cookies) and libmicrohttpd.
# Objects go to $(B)/console-obj/ because $(B)/ztconsole is the binary.
#
# The unit test covers the pure parts: strings, page frame, the
# configuration file.
CONSOLE_OB        := $(B)/console-obj
CONSOLE_PURE_OBJS := $(CONSOLE_OB)/console_i18n.o $(CONSOLE_OB)/console_html.o \
                     $(CONSOLE_OB)/console_conf.o
CONSOLE_OBJS      := $(CONSOLE_OB)/main.o $(CONSOLE_OB)/console.o \
                     $(CONSOLE_OB)/console_pages.o $(CONSOLE_PURE_OBJS) \
                     $(TRUSTD_OB)/mhd_util.o
CONSOLE_LIBS      := -lmicrohttpd -lpthread

$(CONSOLE_OB)/%.o: console/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(B)/ztconsole: $(CONSOLE_OBJS) $(PORTAL_PURE_OBJS) $(TRUSTD_LIB) \
    $(IDENTITY_LIB) $(CA_LIB) $(WIRE_LIB)
	$(CC) $(LDFLAGS) -o $@ $(CONSOLE_OBJS) $(PORTAL_PURE_OBJS) \
	    $(TRUSTD_LIB) $(IDENTITY_LIB) $(CA_LIB) $(WIRE_LIB) $(LMDB_LIBS) \
	    $(IDENTITY_LIBS) $(CONSOLE_LIBS) $(CLUSTER_LIBS)

BINS += $(B)/ztconsole

$(B)/tests/unit/test_console: $(B)/tests/unit/test_console.o \
    $(CONSOLE_PURE_OBJS) $(PORTAL_PURE_OBJS) $(TRUSTD_LIB) $(WIRE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka -ljansson $(LMDB_LIBS)

UNIT_TESTS += $(B)/tests/unit/test_console

# The enrollment steps ztctl and ztconsole share (trustd/enroll.c, in
# libtrustd), against a real store and real keys in a temporary directory.
$(B)/tests/unit/test_enroll: $(B)/tests/unit/test_enroll.o $(TRUSTD_LIB) \
    $(IDENTITY_LIB) $(WIRE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(LMDB_LIBS) $(IDENTITY_LIBS)

UNIT_TESTS += $(B)/tests/unit/test_enroll
