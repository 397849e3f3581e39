# p2p-proxy: GNU make, no autotools. See README.md.
#   make            build every program into build/bin/
#   make check      run every test (make SANITIZE=1 check: under ASan+UBSan)
#   make deps       install the Debian packages the build and tests need
#   make demo       the one-machine lab
#   make bench      benchmarks, with the reference peer measured in the same run
#   make fuzz-smoke a short run of every libFuzzer target
#   make install    DESTDIR=... PREFIX=...

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(PREFIX)/bin
LIBEXECDIR = $(PREFIX)/libexec/p2p
MANDIR = $(PREFIX)/share/man
SHAREDIR = $(PREFIX)/share/p2p
SYSCONFDIR ?= /etc

CC ?= cc
PKG_CONFIG ?= pkg-config
PKGS = jansson libssl libcrypto libcurl cjose libnl-route-3.0 libnl-genl-3.0 libcap libunbound libnghttp2

ifeq ($(SANITIZE),1)
BUILD ?= build/sanitize
SANFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else
BUILD ?= build
SANFLAGS =
endif

WARN = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
CFLAGS ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SANFLAGS) -Ilib \
	$(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
LDLIBS = $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)

LIB_SRC = $(wildcard lib/*.c)
LIB_OBJ = $(LIB_SRC:%.c=$(BUILD)/obj/%.o)

# Every directory bin/PROG holding C sources is one program; its files other
# than main.c also link into the tests and fuzz targets.
C_PROGS = $(notdir $(patsubst %/main.c,%,$(wildcard bin/*/main.c)))
SCRIPT_PROGS = p2p-lab
PROGS = $(C_PROGS:%=$(BUILD)/bin/%) $(SCRIPT_PROGS:%=$(BUILD)/bin/%)
prog_parts = $(patsubst %.c,$(BUILD)/obj/%.o,$(filter-out bin/$(1)/main.c,$(wildcard bin/$(1)/*.c)))

UNIT_SRC = $(wildcard tests/unit/test-*.c)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC = $(wildcard tests/fuzz/fuzz-*.c)

all: $(PROGS)

$(BUILD)/obj/%.o: %.c $(wildcard lib/*.h bin/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Ibin/$(word 2,$(subst /, ,$*)) -c $< -o $@

$(BUILD)/lib/libp2p.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

define c_prog
$(BUILD)/bin/$(1): $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard bin/$(1)/*.c)) $(BUILD)/lib/libp2p.a
	@mkdir -p $$(dir $$@)
	$$(CC) $$(ALL_CFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach p,$(C_PROGS),$(eval $(call c_prog,$(p))))

$(BUILD)/bin/p2p-lab: bin/p2p-lab/p2p-lab
	@mkdir -p $(dir $@)
	cp $< $@ && chmod 755 $@

# A unit test links the library and the non-main parts of the program it
# names in its first line: "/* test: p2p-mapd */".
test_prog = $(shell sed -n -e '1s|^/\* test: \([a-z0-9-]*\) \*/$$|\1|p' \
	-e '1s|^/\* fuzz: \([a-z0-9-]*\) \*/$$|\1|p' $(1))
.SECONDEXPANSION:
$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/lib/libp2p.a $$(call prog_parts,$$(call test_prog,tests/unit/$$*.c))
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(addprefix -Ibin/,$(call test_prog,$<)) -o $@ $< \
		$(call prog_parts,$(call test_prog,$<)) $(BUILD)/lib/libp2p.a \
		$(LDLIBS) $(shell $(PKG_CONFIG) --libs cmocka)

deps:
	@libexec/p2p-deps

check: deps
	$(MAKE) all-tests
	tests/run $(BUILD)

all-tests: all $(UNIT_BIN)

demo: deps all
	libexec/p2p-lab-demo $(BUILD)

# Benchmark drivers in C: tests/bench/NAME.c -> BUILD/bench/NAME (with lib/).
BENCH_SRC = $(wildcard tests/bench/*.c)
BENCH_BIN = $(BENCH_SRC:tests/bench/%.c=$(BUILD)/bench/%)
$(BUILD)/bench/%: tests/bench/%.c $(BUILD)/lib/libp2p.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/lib/libp2p.a $(LDLIBS)

# p2p-tlsterm with its p2p-authz check and p2p-audit record compiled out,
# only so that a bench can measure what they cost (never installed).
$(BUILD)/bench/p2p-tlsterm-nochecks: $(wildcard bin/p2p-tlsterm/*.c) $(BUILD)/lib/libp2p.a $(wildcard lib/*.h bin/p2p-tlsterm/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DTLSTERM_BENCH_NOCHECKS -Ibin/p2p-tlsterm -o $@ \
		$(wildcard bin/p2p-tlsterm/*.c) $(BUILD)/lib/libp2p.a $(LDLIBS)

bench: all $(BENCH_BIN) $(BUILD)/bench/p2p-tlsterm-nochecks
	@libexec/p2p-deps bench
	tests/bench/run $(BUILD)

FUZZ_CC ?= clang
FUZZ_BUILD = build/fuzz
FUZZ_FLAGS = -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all -Ilib \
	$(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
fuzz: $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/%)

# A fuzz target names its program like a unit test: "/* fuzz: p2p-mapd */".
$(FUZZ_BUILD)/%: tests/fuzz/%.c $(LIB_SRC) $(wildcard lib/*.h bin/*/*.h) \
		$$(filter-out bin/$$(call test_prog,tests/fuzz/$$*.c)/main.c,$$(wildcard bin/$$(call test_prog,tests/fuzz/$$*.c)/*.c))
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(addprefix -Ibin/,$(call test_prog,$<)) -o $@ $< \
		$(LIB_SRC) $(filter-out %/main.c,$(wildcard bin/$(call test_prog,$<)/*.c)) $(LDLIBS)

fuzz-smoke: deps fuzz
	tests/fuzz/smoke $(FUZZ_BUILD)

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(SHAREDIR)/run \
		$(DESTDIR)$(SYSCONFDIR)/p2p
	install -m 755 $(PROGS) $(DESTDIR)$(BINDIR)/
	install -m 755 $(wildcard libexec/p2p-*) $(DESTDIR)$(LIBEXECDIR)/
	for f in $(wildcard man/*.[1-8]); do \
		s=$${f##*.}; install -d $(DESTDIR)$(MANDIR)/man$$s; \
		install -m 644 $$f $(DESTDIR)$(MANDIR)/man$$s/; done
	cp -R run/. $(DESTDIR)$(SHAREDIR)/run/
	for f in $(wildcard etc/p2p/*); do \
		t=$(DESTDIR)$(SYSCONFDIR)/p2p/$${f##*/}; \
		if [ -e $$t ]; then echo "keeping existing $$t"; \
		else install -m 644 $$f $$t; fi; done

clean:
	rm -rf build

.PHONY: all deps check all-tests demo bench fuzz fuzz-smoke install clean
