# ztgate: one build entry point.
#
#   make                 build everything (trustd, ztctl, ztca, nginx module)
#   make check           install missing packages, build, run every test
#   make demo            build and run the demo gateway on loopback
#   make SANITIZE=address,undefined ...   build with sanitizers
#
# Each component adds its own rules in <dir>/build.mk; objects go to
# $(B)/<dir>/.  A sanitizer build lives in its own tree so that it never
# mixes with the normal one.

CC        ?= cc
PYTHON    ?= /usr/bin/python3
SANITIZE  ?=

WARN      = -Wall -Wextra -Wshadow -Wpointer-arith -Wcast-qual \
            -Wstrict-prototypes -Wmissing-prototypes -Werror
CPPFLAGS  += -D_GNU_SOURCE -DOPENSSL_API_COMPAT=30000 -DOPENSSL_NO_DEPRECATED \
             -I. -Iwire
CFLAGS    ?= -O2 -g
CFLAGS    += -std=c11 $(WARN) -fno-strict-aliasing
LDFLAGS   ?=

ifneq ($(SANITIZE),)
B         ?= build/san
CFLAGS    += -O1 -fno-omit-frame-pointer -fsanitize=$(SANITIZE) \
             -fno-sanitize-recover=all
LDFLAGS   += -fsanitize=$(SANITIZE)
else
B         ?= build
endif

BINS        :=
UNIT_TESTS  :=
CLEAN_EXTRA :=

.PHONY: all check test unit integration fuzz-replay fuzz demo \
        demo-stop demo-selftest deps clean module bins policy-examples

all: bins module

# trustd's object directory: its fragments and the daemon's share it
TRUSTD_OB   := $(B)/trustd-obj

include wire/build.mk
include policy/build.mk
include certs/build.mk
include trustd/identity.mk
include trustd/portal.mk
include trustd/build.mk
include trustd/inference.mk
include ztctl/build.mk
include console/build.mk
include ngx_module/build.mk
include bench/build.mk
include tests/build.mk
include install.mk

bins: $(BINS)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

-include $(shell find $(B) -name '*.d' 2>/dev/null)

deps:
	./scripts/install-deps.sh

demo: deps
	$(MAKE) all
	./scripts/demo.sh


demo-stop:
	./scripts/demo.sh stop

demo-selftest: all
	./scripts/demo.sh selftest

# The shipped example policies must load and pass their own cases.
policy-examples: all
	$(B)/ztpolicy check config/policy
	$(B)/ztpolicy test config/policy config/policy-tests
	$(B)/ztpolicy check config/demo
	$(B)/ztpolicy test config/demo config/demo

# Integration tests: real nginx with the module, real trustd, real LMDB.
# ZT_BIN_DIR picks the trustd/ztctl/ztca build to test (check uses the
# ASan+UBSan build, so the daemon runs instrumented under real traffic).
ZT_BIN_DIR ?= $(CURDIR)/$(B)
integration: all
	ZT_BIN_DIR=$(ZT_BIN_DIR) ZT_MODULE=$(CURDIR)/build/ngx_http_zt_module.so \
	    $(PYTHON) -m pytest -v -p no:cacheprovider tests/integration tests/security

# The README's test command: installs what is missing, builds, and runs
# unit tests (normal and under ASan+UBSan), the fuzz corpus replay and a
# bounded fuzz burst, the integration suite against real nginx + trustd
# (with the sanitizer-built daemon) and the demo's own self-test; pytest
# runs last so that its summary is the run's closing line.
check: deps
	$(MAKE) --no-print-directory all
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory SANITIZE=address,undefined bins unit
	$(MAKE) --no-print-directory fuzz-replay
	$(MAKE) --no-print-directory fuzz
	$(MAKE) --no-print-directory policy-examples
	$(MAKE) --no-print-directory demo-selftest
	$(MAKE) --no-print-directory integration ZT_BIN_DIR=$(CURDIR)/build/san

clean:
	rm -rf build $(CLEAN_EXTRA)
