# ngx_module/: the nginx dynamic module, built against Debian's packaged
# nginx with the nginx-dev SDK (its configure and conf_flags), so that the
# stock /usr/sbin/nginx accepts it with load_module.  The SDK tree is
# copied into the build directory and configured once; later builds only
# recompile the module.

NGX_SDK     ?= /usr/share/nginx/src
NGX_BUILD   := $(B)/nginx-sdk
MODULE_SO   := $(B)/ngx_http_zt_module.so
MODULE_SRCS := $(wildcard ngx_module/*.c ngx_module/*.h) ngx_module/config \
               wire/zt_wire.c wire/zt_wire.h
# nginx compiles with its own flags (-Werror among them); add ours.
NGX_CC_OPT  := -Wextra -Wno-unused-parameter -Wno-sign-compare \
               -Wno-missing-field-initializers

module: $(MODULE_SO)

$(NGX_BUILD)/objs/Makefile: ngx_module/config
	rm -rf $(NGX_BUILD)
	mkdir -p $(NGX_BUILD)
	cp -a $(NGX_SDK)/. $(NGX_BUILD)/
	cd $(NGX_BUILD) && bash -c '. ./conf_flags && ./configure \
	    "$${NGX_CONF_FLAGS[@]}" --with-cc-opt="$(NGX_CC_OPT)" \
	    --add-dynamic-module=$(CURDIR)/ngx_module' > configure.log 2>&1 \
	    || { tail -20 configure.log; exit 1; }

$(MODULE_SO): $(NGX_BUILD)/objs/Makefile $(MODULE_SRCS)
	$(MAKE) -C $(NGX_BUILD) -f objs/Makefile modules
	# rename, never overwrite: a running nginx has the old file mapped
	cp $(NGX_BUILD)/objs/ngx_http_zt_module.so $@.tmp
	mv -f $@.tmp $@
