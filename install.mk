# install.mk: "make install" and "make uninstall", laid out the Debian way.
#
#   make install                        into /usr/local (programs, man
#                                       pages, unit files) and /etc
#   make install PREFIX=/usr            where a Debian package puts them
#   make install DESTDIR=/tmp/root      stage the tree (packaging, tests)
#   make install NGX_ENABLE_MODULE=no   do not enable the module in nginx
#   make uninstall                      the same variables; edited
#                                       configuration files are kept
#
# Installing copies files and nothing else: it creates no user, starts
# nothing and never edits a file it did not install.  The steps after it
# (systemd-sysusers, systemd-tmpfiles, systemctl) are printed at the end
# and described in docs/operations.md section 2.
#
# Configuration files (SYSCONFDIR/ztgate) are installed only where no file
# exists yet.  Where one exists and differs from the shipped version (an
# administrator edited it), it is left alone and the shipped version is
# installed next to it as FILE.dist, to compare.  "make uninstall" removes
# a configuration file only when it is still identical to the shipped
# one, and always removes the .dist copies.

DESTDIR          ?=
PREFIX           ?= /usr/local
BINDIR           ?= $(PREFIX)/bin
SBINDIR          ?= $(PREFIX)/sbin
DATADIR          ?= $(PREFIX)/share
MANDIR           ?= $(DATADIR)/man
DOCDIR           ?= $(DATADIR)/doc/ztgate
BASHCOMPDIR      ?= $(DATADIR)/bash-completion/completions
SYSCONFDIR       ?= /etc
# systemd reads /usr/local/lib/... as well as /usr/lib/...
SYSTEMDUNITDIR   ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR      ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR      ?= $(PREFIX)/lib/tmpfiles.d
# Debian's nginx: its --modules-path, the directory its module packages
# put their load_module snippets in, and the directory nginx.conf
# includes (a symlink there enables a module).
NGX_MODULESDIR   ?= /usr/lib/nginx/modules
NGX_MODCONFDIR   ?= /usr/share/nginx/modules-available
NGX_MODENABLEDIR ?= $(SYSCONFDIR)/nginx/modules-enabled
NGX_ENABLE_MODULE ?= yes
INSTALL          ?= install

ZT_CONFDIR       := $(SYSCONFDIR)/ztgate
ZT_MOD_CONF      := mod-http-zt.conf
ZT_MOD_LINK      := 50-$(ZT_MOD_CONF)

ZT_AGENT         := scripts/ztgate-posture-agent.sh

# "source:destination" pairs: trustd and ztctl are administered (man 8),
# ztca and ztpolicy are also run by the CA operator and policy authors.
ZT_INST_PROGS    := $(B)/trustd:$(SBINDIR)/trustd \
                    $(B)/ztctl:$(SBINDIR)/ztctl \
                    $(B)/ztconsole:$(SBINDIR)/ztconsole \
                    $(B)/ztca:$(BINDIR)/ztca \
                    $(B)/ztpolicy:$(BINDIR)/ztpolicy \
                    $(ZT_AGENT):$(BINDIR)/ztgate-posture-agent
ZT_INST_MANS     := docs/trustd.8:$(MANDIR)/man8/trustd.8 \
                    docs/ztctl.8:$(MANDIR)/man8/ztctl.8 \
                    docs/ztca.1:$(MANDIR)/man1/ztca.1 \
                    docs/ztgate-policy.5:$(MANDIR)/man5/ztgate-policy.5
ZT_INST_DATA     := dist/sysusers.d/ztgate.conf:$(SYSUSERSDIR)/ztgate.conf \
                    dist/tmpfiles.d/ztgate.conf:$(TMPFILESDIR)/ztgate.conf \
                    dist/bash-completion/ztctl:$(BASHCOMPDIR)/ztctl \
                    $(foreach f,README.md $(wildcard docs/*.md), \
                        $(f):$(DOCDIR)/$(notdir $(f)))
ZT_INST_CONFS    := config/trustd.conf:$(ZT_CONFDIR)/trustd.conf \
                    config/console.conf:$(ZT_CONFDIR)/console.conf \
                    config/nginx-ztgate.conf:$(ZT_CONFDIR)/nginx-ztgate.conf \
                    $(foreach f,$(wildcard config/policy/*.policy), \
                        $(f):$(ZT_CONFDIR)/policy/$(notdir $(f))) \
                    $(foreach f,$(wildcard config/policy-tests/*.cases), \
                        $(f):$(ZT_CONFDIR)/policy-tests/$(notdir $(f)))

# dist/*.in get the paths chosen above.
ZT_SUBST         = sed -e 's|@SBINDIR@|$(SBINDIR)|g' \
                       -e 's|@ZT_CONFDIR@|$(ZT_CONFDIR)|g' \
                       -e 's|@DOCDIR@|$(DOCDIR)|g' \
                       -e 's|@NGX_MODULESDIR@|$(NGX_MODULESDIR)|g'
ZT_SUBST_FILES   := \
    dist/systemd/trustd.service.in:$(SYSTEMDUNITDIR)/trustd.service \
    dist/systemd/ztconsole.service.in:$(SYSTEMDUNITDIR)/ztconsole.service \
    dist/nginx/$(ZT_MOD_CONF).in:$(NGX_MODCONFDIR)/$(ZT_MOD_CONF)

.PHONY: install uninstall

# umask 022: whatever the caller's umask, no directory or file created
# here is writable by group or others.
install: all
	@set -e; umask 022; \
	for p in $(ZT_INST_PROGS); do \
	    $(INSTALL) -D -m 0755 "$${p%%:*}" "$(DESTDIR)$${p#*:}"; \
	    echo "installed $(DESTDIR)$${p#*:}"; \
	done; \
	for p in $(ZT_INST_MANS) $(ZT_INST_DATA) \
	    $(MODULE_SO):$(NGX_MODULESDIR)/ngx_http_zt_module.so; do \
	    $(INSTALL) -D -m 0644 "$${p%%:*}" "$(DESTDIR)$${p#*:}"; \
	    echo "installed $(DESTDIR)$${p#*:}"; \
	done; \
	for p in $(ZT_SUBST_FILES); do \
	    dst="$(DESTDIR)$${p#*:}"; \
	    $(INSTALL) -d -m 0755 "$${dst%/*}"; \
	    $(ZT_SUBST) "$${p%%:*}" > "$$dst.tmp"; \
	    chmod 0644 "$$dst.tmp"; \
	    mv -f "$$dst.tmp" "$$dst"; \
	    echo "installed $$dst"; \
	done; \
	for p in $(ZT_INST_CONFS); do \
	    src="$${p%%:*}"; dst="$(DESTDIR)$${p#*:}"; \
	    if [ ! -e "$$dst" ]; then \
	        $(INSTALL) -D -m 0644 "$$src" "$$dst"; \
	        rm -f "$$dst.dist"; \
	        echo "installed $$dst"; \
	    elif cmp -s "$$src" "$$dst"; then \
	        rm -f "$$dst.dist"; \
	        echo "unchanged $$dst"; \
	    else \
	        $(INSTALL) -m 0644 "$$src" "$$dst.dist"; \
	        echo "kept $$dst (edited); the shipped version is $$dst.dist"; \
	    fi; \
	done
	@if [ "$(NGX_ENABLE_MODULE)" = yes ]; then \
	    umask 022; \
	    $(INSTALL) -d -m 0755 "$(DESTDIR)$(NGX_MODENABLEDIR)" && \
	    ln -sfn "$(NGX_MODCONFDIR)/$(ZT_MOD_CONF)" \
	        "$(DESTDIR)$(NGX_MODENABLEDIR)/$(ZT_MOD_LINK)" && \
	    echo "enabled the module: $(DESTDIR)$(NGX_MODENABLEDIR)/$(ZT_MOD_LINK)"; \
	fi
	@if [ -z "$(DESTDIR)" ]; then \
	    echo; \
	    echo "Next (as root; docs/operations.md section 2):"; \
	    echo "  systemd-sysusers $(SYSUSERSDIR)/ztgate.conf"; \
	    echo "  systemd-tmpfiles --create $(TMPFILESDIR)/ztgate.conf"; \
	    echo "  systemctl daemon-reload"; \
	    echo "  edit $(ZT_CONFDIR)/trustd.conf, then:"; \
	    echo "  systemctl enable --now trustd"; \
	    echo "  nginx -t && systemctl reload nginx"; \
	fi

uninstall:
	@for p in $(ZT_INST_PROGS) $(ZT_INST_MANS) $(ZT_INST_DATA) \
	    $(ZT_SUBST_FILES) x:$(NGX_MODULESDIR)/ngx_http_zt_module.so; do \
	    dst="$(DESTDIR)$${p#*:}"; \
	    if [ -e "$$dst" ]; then rm -f "$$dst" && echo "removed $$dst"; fi; \
	done; \
	link="$(DESTDIR)$(NGX_MODENABLEDIR)/$(ZT_MOD_LINK)"; \
	if [ -L "$$link" ]; then rm -f "$$link" && echo "removed $$link"; fi; \
	for p in $(ZT_INST_CONFS); do \
	    src="$${p%%:*}"; dst="$(DESTDIR)$${p#*:}"; \
	    rm -f "$$dst.dist"; \
	    if [ ! -e "$$dst" ]; then \
	        :; \
	    elif cmp -s "$$src" "$$dst"; then \
	        rm -f "$$dst" && echo "removed $$dst"; \
	    else \
	        echo "kept $$dst (edited)"; \
	    fi; \
	done; \
	for d in $(DOCDIR) $(ZT_CONFDIR)/policy $(ZT_CONFDIR)/policy-tests \
	    $(ZT_CONFDIR); do \
	    rmdir "$(DESTDIR)$$d" 2>/dev/null || :; \
	done
