# trustd/portal.mk: the sign-in portal (libmicrohttpd on a Unix socket).
# Included by the top Makefile after trustd/build.mk, whose pattern rule
# builds $(TRUSTD_OB)/%.o.  The lead links $(PORTAL_OBJS) and
# $(PORTAL_LIBS) into trustd.
#
# The unit test covers the pure parts (next-URL validation, form and
# cookie parsing, the limiter, languages, HTML, posture reports) and
# links neither the store nor libmicrohttpd (jansson for the reports).

PORTAL_PURE_OBJS := $(TRUSTD_OB)/portal_util.o $(TRUSTD_OB)/portal_i18n.o \
                    $(TRUSTD_OB)/portal_html.o
PORTAL_OBJS      := $(TRUSTD_OB)/portal.o $(TRUSTD_OB)/mhd_util.o \
                    $(PORTAL_PURE_OBJS)
PORTAL_LIBS      := -lmicrohttpd -ljansson -lpthread

$(B)/tests/unit/test_portal: $(B)/tests/unit/test_portal.o \
    $(PORTAL_PURE_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka -ljansson

UNIT_TESTS += $(B)/tests/unit/test_portal
