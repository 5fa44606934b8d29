# wire/: the decision protocol codec shared by trustd and the nginx module.
# The module compiles zt_wire.c itself (see ngx_module/config); everything
# else links this archive.
WIRE_OBJS := $(B)/wire/zt_wire.o
WIRE_LIB  := $(B)/libztwire.a

$(WIRE_LIB): $(WIRE_OBJS)
	ar rcs $@ $^
