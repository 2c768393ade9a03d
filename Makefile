# SPDX-License-Identifier: GPL-2.0
#
# bring - top-level Makefile, Kbuild style.
#
#   make               build lib/, selftests/, bench/, tools/ (and bpf/ when
#                      the BPF toolchain is there)
#   make check         build and run every selftest under prove
#   make bench         build and run the benchmarks
#   make demo          ship logs through two bringcats over TCP, verify, time
#   make demo-ring     producer/consumer threads on one ring, block times
#   make install       PREFIX=/usr/local DESTDIR=
#
#   V=1                print full commands
#   O=dir              build out of tree
#   SANITIZE=address,undefined | thread
#   WERROR=1           turn warnings into errors (CI does)
#
# A change of CC, CFLAGS, EXTRA_CFLAGS, SANITIZE, WERROR or LDFLAGS
# rebuilds everything ($(O)/.build-flags).
#
# Each directory lists its objects in a "Build" fragment, included below.

MAKEFLAGS += --no-builtin-rules
.SUFFIXES:

VERSION   := 0.1.0
SOVERSION := 0

PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
MANDIR  ?= $(PREFIX)/share/man
BINDIR  ?= $(PREFIX)/bin
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig

srctree := $(CURDIR)
O       ?= .
OUT     := $(abspath $(O))

ifeq ($(V),1)
Q   :=
msg  =
else ifneq ($(findstring s,$(firstword -$(filter-out --%,$(MAKEFLAGS)))),)
Q   := @
msg  = @
else
Q   := @
msg  = @printf '  %-7s %s\n' '$(1)' '$(patsubst $(OUT)/%,%,$(2))';
endif

CFLAGS  ?= -O2 -g
BASE_CFLAGS := -std=gnu11 -Wall -Wextra -Wno-unused-parameter \
	       -Wmissing-prototypes -Wstrict-prototypes -D_GNU_SOURCE \
	       -I$(srctree)/include -I$(srctree)/lib
ifeq ($(WERROR),1)
BASE_CFLAGS += -Werror
endif
ifneq ($(SANITIZE),)
SAN_FLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
BASE_CFLAGS += $(SAN_FLAGS)
endif
ALL_CFLAGS = $(BASE_CFLAGS) $(CFLAGS) $(EXTRA_CFLAGS)
# Not appended to LDFLAGS: make exports its command line and environment
# to sub-makes (make check runs one), which would append it again.
ALL_LDFLAGS = $(LDFLAGS) $(SAN_FLAGS)

# What everything was built with, as git's GIT-CFLAGS and Kbuild's .cmd
# files keep it: rewritten only when CC, the flags (CFLAGS, EXTRA_CFLAGS,
# SANITIZE, WERROR) or LDFLAGS change, and a prerequisite of every object
# and program, so that a change rebuilds everything instead of linking
# objects built the old way.
BUILD_FLAGS := $(OUT)/.build-flags
# Not under make -n, which builds nothing. "clean" keeps the file.
build-flags-now := CC=$(CC) CFLAGS=$(ALL_CFLAGS) LDFLAGS=$(ALL_LDFLAGS)
ifeq ($(findstring n,$(firstword -$(filter-out --%,$(MAKEFLAGS)))),)
ifneq ($(file <$(BUILD_FLAGS)),$(build-flags-now))
$(shell mkdir -p $(OUT))
$(file >$(BUILD_FLAGS),$(build-flags-now))
endif
endif
$(BUILD_FLAGS): ;

all:

# ---------------------------------------------------------------------------
# lib/
include lib/Build
LIB_OBJS   := $(addprefix $(OUT)/lib/,$(lib-y))
LIB_A      := $(OUT)/lib/libbring.a
LIB_SO     := $(OUT)/lib/libbring.so.$(VERSION)
LIB_SONAME := libbring.so.$(SOVERSION)
LIB_PC     := $(OUT)/lib/libbring.pc

$(LIB_OBJS): $(OUT)/lib/%.o: $(srctree)/lib/%.c $(BUILD_FLAGS)
	@mkdir -p $(@D)
	$(call msg,CC,$@)$(CC) $(ALL_CFLAGS) -fPIC -fvisibility=hidden \
		$(lib-cflags) -MMD -MP -c -o $@ $<

# A static archive holds one object, linked from all of the library's with
# its hidden symbols made local: a program linking it statically sees the
# exported bring_* names only, and no internal name (ring_claim, io_log...)
# can clash with its own. The shared library gets this from the linker.
OBJCOPY ?= objcopy
define static_lib
	$(call msg,AR,$@)rm -f $@ $@.o && $(LD) -r -o $@.o $^ && \
		$(OBJCOPY) --localize-hidden $@.o && $(AR) rcs $@ $@.o && rm -f $@.o
endef

$(LIB_A): $(LIB_OBJS)
	$(static_lib)

$(LIB_SO): $(LIB_OBJS) $(srctree)/lib/libbring.map
	$(call msg,LD,$@)$(CC) -shared -Wl,-soname,$(LIB_SONAME) \
		-Wl,--version-script=$(srctree)/lib/libbring.map -Wl,--no-undefined \
		$(ALL_LDFLAGS) -o $@ $(LIB_OBJS) $(lib-ldlibs)
	$(Q)ln -sf $(notdir $@) $(OUT)/lib/$(LIB_SONAME)
	$(Q)ln -sf $(LIB_SONAME) $(OUT)/lib/libbring.so

# A .pc names the install paths: regenerated whenever they change
# (lib/libbring.pc, io/libbring_io.pc; io/Build adds to PC_SUBST).
PC_SUBST = -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	   -e 's|@INCDIR@|$(INCDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	   -e 's|@LIBS@|$(lib-ldlibs)|'
$(OUT)/%.pc: $(srctree)/%.pc.in Makefile FORCE
	@mkdir -p $(@D)
	@sed $(PC_SUBST) $< > $@.tmp
	$(Q)if cmp -s $@.tmp $@; then rm -f $@.tmp; else \
		$(if $(findstring printf,$(value msg)),printf '  %-7s %s\n' GEN $(patsubst $(OUT)/%,%,$@);) mv $@.tmp $@; fi
FORCE:

lib: $(LIB_A) $(LIB_SO) $(LIB_PC)
all: lib

# ---------------------------------------------------------------------------
# Programs: every directory below lists programs as "dir-progs" (paths
# relative to the top, without .c) and extra libraries as "dir-ldlibs".
# A program is built from its .c plus the objects in "<prog>-objs" and the
# library's objects (not libbring.a, whose internals are local: tests and
# benchmarks reach into them, e.g. crc32c_test).
define build_prog
$(OUT)/$(1): $(srctree)/$(1).c $(addprefix $(OUT)/,$($(1)-objs)) $(LIB_OBJS) \
	     $(BUILD_FLAGS)
	@mkdir -p $$(@D)
	$$(call msg,CC,$$@)$$(CC) $$(ALL_CFLAGS) $(2) -MMD -MP -o $$@ $$< \
		$(addprefix $(OUT)/,$($(1)-objs)) $$(LIB_OBJS) $$(ALL_LDFLAGS) $$(lib-ldlibs) $(3)
endef

$(OUT)/%.o: $(srctree)/%.c $(BUILD_FLAGS)
	@mkdir -p $(@D)
	$(call msg,CC,$@)$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

include selftests/Build
include bench/Build
include tools/Build
# bpf/Build adds its own rules (BPF objects, skeletons) and may append to
# selftests-progs, tools-progs, install-progs and the *-extra lists.
include bpf/Build
# io/Build appends to the tools and selftests lists: after the others.
include io/Build

$(foreach p,$(selftests-progs),$(eval $(call build_prog,$(p),$(selftests-cflags),$(selftests-ldlibs))))
$(foreach p,$(bench-progs),$(eval $(call build_prog,$(p),$(bench-cflags),$(bench-ldlibs))))
$(foreach p,$(tools-progs),$(eval $(call build_prog,$(p),$(tools-cflags),$(tools-ldlibs))))

# "make selftests/ring/push_test" works in the source tree as well.
ifeq ($(OUT),$(srctree))
$(selftests-progs) $(bench-progs) $(tools-progs): %: $(OUT)/%
	@:
endif

SELFTESTS := $(addprefix $(OUT)/,$(selftests-progs))
BENCHES   := $(addprefix $(OUT)/,$(bench-progs))
TOOLS     := $(addprefix $(OUT)/,$(tools-progs))

selftests: $(SELFTESTS) $(selftests-extra)
all: selftests $(BENCHES) $(TOOLS)

# ---------------------------------------------------------------------------
deps:
	$(Q)$(srctree)/scripts/install-deps.sh --quiet

# The installed layout some selftests run (bpf/bringcat_trace_test):
# "make install DESTDIR=$(TEST_DESTDIR)", the default PREFIX.
TEST_DESTDIR := $(OUT)/selftests/destdir

check: deps
	$(Q)$(MAKE) --no-print-directory selftests
	$(Q)$(MAKE) --no-print-directory install DESTDIR=$(TEST_DESTDIR) \
		PREFIX=/usr/local >/dev/null
	$(Q)cd $(srctree) && BRING_OUT=$(OUT) prove --exec $(srctree)/selftests/ksft-exec $(PROVE_FLAGS) \
		$(SELFTESTS) $(selftests-scripts)

bench: deps
	$(Q)$(MAKE) --no-print-directory $(BENCHES) $(bench-extra)
	$(Q)cd $(srctree) && BRING_OUT=$(OUT) $(srctree)/bench/run.sh $(BENCHES)

demo: deps
	$(Q)$(MAKE) --no-print-directory $(OUT)/io/bringcat
	$(Q)BRING_OUT=$(OUT) $(srctree)/scripts/demo.sh

demo-ring: deps
	$(Q)$(MAKE) --no-print-directory $(OUT)/tools/demo
	$(Q)$(OUT)/tools/demo

# ---------------------------------------------------------------------------
MAN3 := $(wildcard $(srctree)/man/*.3)
MAN1 := $(wildcard $(srctree)/man/*.1)
MAN7 := $(wildcard $(srctree)/man/*.7)

# $(call install_lib,LIB.a,LIB.so.VERSION,SONAME): the libraries, the
# soname link and the link "cc -l" finds.
install_lib = install -m 644 $(1) $(DESTDIR)$(LIBDIR)/ && \
	install -m 755 $(2) $(DESTDIR)$(LIBDIR)/ && \
	ln -sf $(notdir $(2)) $(DESTDIR)$(LIBDIR)/$(3) && \
	ln -sf $(3) $(DESTDIR)$(LIBDIR)/$(basename $(3))

install: lib
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX))install -d $(DESTDIR)$(LIBDIR) \
		$(DESTDIR)$(INCDIR) $(DESTDIR)$(PKGCONFIGDIR) \
		$(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man7
	$(Q)$(call install_lib,$(LIB_A),$(LIB_SO),$(LIB_SONAME))
	$(Q)$(call install_lib,$(IO_LIB_A),$(IO_LIB_SO),$(IO_LIB_SONAME))
	$(Q)install -m 644 $(srctree)/include/bring.h \
		$(srctree)/include/bring_io.h $(DESTDIR)$(INCDIR)/
	$(Q)install -m 644 $(LIB_PC) $(IO_LIB_PC) $(DESTDIR)$(PKGCONFIGDIR)/
	$(Q)$(if $(MAN3),install -m 644 $(MAN3) $(DESTDIR)$(MANDIR)/man3/)
	$(Q)$(if $(MAN1),install -m 644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/)
	$(Q)$(if $(MAN7),install -m 644 $(MAN7) $(DESTDIR)$(MANDIR)/man7/)
	$(Q)$(if $(install-progs),install -d $(DESTDIR)$(BINDIR) && \
		install -m 755 $(addprefix $(OUT)/,$(install-progs)) $(DESTDIR)$(BINDIR)/)

clean:
	$(call msg,CLEAN,$(OUT))rm -rf $(OUT)/lib/*.o $(OUT)/lib/*.d $(LIB_A) $(LIB_SO) \
		$(OUT)/lib/$(LIB_SONAME) $(OUT)/lib/libbring.so $(LIB_PC) \
		$(SELFTESTS) $(BENCHES) $(TOOLS) $(clean-extra) $(TEST_DESTDIR)
	$(Q)find $(OUT) -name '*.d' -o -name '*.o' | grep -v '^$(OUT)/\.git' | xargs rm -f

.PHONY: all lib selftests deps check bench demo demo-ring install clean FORCE
.DEFAULT_GOAL := all

-include $(shell find $(OUT) -name '*.d' -not -path '*/.git/*' 2>/dev/null)
