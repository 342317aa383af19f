# meshdns -- one hand-written GNU Makefile.
#   make              build dnsd and meshdig (build/)
#   make run          build and serve zones/mesh.yaml on 127.0.0.1:1053 (PORT=)
#   make test         unit tests, integration tests, fuzz corpus replay
#   make check        the same tests on an ASan+UBSan build, then a TSan build
#   make fuzz         libFuzzer builds (clang), each target run FUZZ_TIME seconds
#   make deps         apt-get install what building and running need (root)
#   make test-deps    the same, and what the tests need (pytest, dig, kdig, NSD, Chromium, ...)
#   make bench        install the peers (NSD, Knot, gdnsd, PowerDNS), run tests/bench/
#   make install      PREFIX=/usr/local DESTDIR= (config: SYSCONFDIR/meshdns/dnsd.yaml)
#   V=1 shows commands; WERROR=1 turns warnings into errors.

VERSION    := 0.1.0
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/sbin
UBINDIR    ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= $(PREFIX)/etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
CC         ?= cc
PKG_CONFIG ?= pkg-config
FUZZ_TIME  ?= 60
PORT       ?= 1053

PKGS := yaml-0.1 libcares libsodium liburcu-qsbr libcurl libmicrohttpd jansson openssl
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
        -Wundef -Wvla -Wnull-dereference -Wimplicit-fallthrough
# Waivers, by name:
#   -Wno-format-nonliteral: log_msg() and the TAP helpers forward their format.
NOWARN := -Wno-format-nonliteral
ifeq ($(WERROR),1)
  WARN += -Werror
endif

OPT ?= -O3 -g
comma := ,
ifneq ($(SANITIZE),)
  BUILD ?= build/san-$(subst $(comma),-,$(SANITIZE))
  SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
  OPT := -O1 -g
else
  BUILD ?= build
  # dnsd links with link-time optimization (the request path crosses a
  # dozen files: tests/bench/path_ir.sh counts 10 % fewer instructions per
  # query). Objects are fat, carrying machine code too, so the tests and
  # meshdig link as usual and fast. LTO=0 turns it off.
  ifneq ($(LTO),0)
    LTO_CFLAGS := -flto=auto -ffat-lto-objects
    LTO_LDFLAGS := -flto=auto $(OPT)
  endif
endif

CPPFLAGS += -D_GNU_SOURCE -DMESHDNS_VERSION='"$(VERSION)"' -Idnsd -I$(BUILD)/gen
ALL_CFLAGS = -std=c11 $(OPT) $(LTO_CFLAGS) $(WARN) $(NOWARN) $(SANFLAGS) $(PKG_CFLAGS) -MMD -MP \
             $(CFLAGS)
ALL_LDFLAGS = $(SANFLAGS) $(LDFLAGS)
LIBS := $(PKG_LIBS) -lpthread -lm

ifneq ($(V),1)
  Q := @
  say = @printf '  %-7s %s\n' $(1) $(2);
endif

# Three layers: dnsd/util (helpers), dnsd/dns (the DNS library: libdns.a,
# all meshdig links), dnsd (the server). libdnsd.a holds all three.
UTIL_SRC   := $(wildcard dnsd/util/*.c)
DNS_SRC    := $(wildcard dnsd/dns/*.c)
LIB_SRC    := $(filter-out dnsd/main.c,$(wildcard dnsd/*.c)) $(DNS_SRC) $(UTIL_SRC)
LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
DNSLIB_OBJ := $(DNS_SRC:%.c=$(BUILD)/obj/%.o) $(UTIL_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC   := $(wildcard fuzz/fuzz_*.c)
FUZZ_NAMES := $(FUZZ_SRC:fuzz/fuzz_%.c=%)
REPLAY_BIN := $(FUZZ_NAMES:%=$(BUILD)/fuzz/replay_%)
# Helper programs the integration tests run (not TAP tests themselves).
HELPER_BIN := $(BUILD)/tests/helpers/etcd_watch
FUZZ_BIN   := $(FUZZ_NAMES:%=build/fuzz/fuzz_%)

.PHONY: all run test check unit integration replay fuzz fuzz-build deps test-deps install clean \
        bench bench-deps FORCE
.DEFAULT_GOAL := all

all: $(BUILD)/dnsd $(BUILD)/meshdig

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

# Paths compiled into dnsd: rewritten only when they change (make install
# PREFIX=/usr rebuilds options.o, so the binary's default config is the file
# the installed unit runs).
$(BUILD)/gen/paths.h: FORCE
	@mkdir -p $(dir $@)
	@printf '#define DNSD_DEFAULT_CONFIG "%s"\n' '$(SYSCONFDIR)/meshdns/dnsd.yaml' > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
$(BUILD)/obj/dnsd/options.o: $(BUILD)/gen/paths.h

$(BUILD)/libdnsd.a: $(LIB_OBJ)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

$(BUILD)/dnsd: $(BUILD)/obj/dnsd/main.o $(BUILD)/libdnsd.a
	$(call say,LD,$@)$(CC) $(ALL_LDFLAGS) $(LTO_LDFLAGS) -o $@ $^ $(LIBS)

MESHDIG_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tools/meshdig*.c))
$(BUILD)/libdns.a: $(DNSLIB_OBJ)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

$(BUILD)/meshdig: $(MESHDIG_OBJ) $(BUILD)/libdns.a
	$(call say,LD,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libdnsd.a
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/helpers/%: $(BUILD)/obj/tests/integration/%.o $(BUILD)/libdnsd.a
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/fuzz/replay_%: $(BUILD)/obj/fuzz/fuzz_%.o $(BUILD)/obj/fuzz/replay.o $(BUILD)/libdnsd.a
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

run: $(BUILD)/dnsd $(BUILD)/meshdig
	@echo "dnsd serving zones/mesh.yaml on 127.0.0.1:$(PORT) (try: dig @127.0.0.1 -p $(PORT) user-service.mesh A)"
	$(BUILD)/dnsd -c zones/mesh.yaml -l 127.0.0.1:$(PORT) -l [::1]:$(PORT)

test: all $(UNIT_BIN) $(REPLAY_BIN) $(HELPER_BIN)
	@BUILD=$(BUILD) sh tests/run.sh

# Without SANITIZE: the ASan+UBSan build, then the TSan build (threads).
check:
ifneq ($(SANITIZE),)
	$(MAKE) test SANITIZE=$(SANITIZE)
else
	$(MAKE) test SANITIZE=address$(comma)undefined
	$(MAKE) test SANITIZE=thread
endif

# libFuzzer builds need clang; each target runs FUZZ_TIME seconds on its corpus.
FUZZ_CC := clang
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_LIB_SRC := $(LIB_SRC)
fuzz-build: $(FUZZ_BIN)
build/fuzz/fuzz_%: fuzz/fuzz_%.c $(FUZZ_LIB_SRC) $(wildcard dnsd/*.h dnsd/dns/*.h dnsd/util/*.h)
	@mkdir -p build/fuzz
	$(call say,FUZZCC,$@)$(FUZZ_CC) $(CPPFLAGS) -std=c11 $(FUZZ_FLAGS) $(PKG_CFLAGS) -o $@ $< $(FUZZ_LIB_SRC) $(LIBS)
fuzz: fuzz-build
	@for t in $(FUZZ_NAMES); do \
		mkdir -p build/fuzz/corpus-$$t; \
		echo "== fuzz_$$t for $(FUZZ_TIME)s"; \
		build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
			build/fuzz/corpus-$$t fuzz/corpus/$$t || exit 1; \
	done

# Two flavours (.ci/deps): "run" builds and runs dnsd and meshdig; "test"
# adds what make test and make check use. Both do apt-get update.
deps:
	sh .ci/deps run

test-deps:
	sh .ci/deps test

# The peers measured against (NSD, Knot, gdnsd, PowerDNS) and the load
# generator, installed as the tests' packages are (not started as services).
BENCH_PKGS := nsd knot gdnsd pdns-server pdns-backend-bind dnsperf util-linux valgrind

bench-deps:
	sh .ci/deps test $(BENCH_PKGS)

bench: all bench-deps
	/usr/bin/python3 tests/bench/run.py

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UBINDIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(SYSCONFDIR)/meshdns
	install -m 755 $(BUILD)/dnsd $(DESTDIR)$(BINDIR)/dnsd
	install -m 755 $(BUILD)/meshdig $(DESTDIR)$(UBINDIR)/meshdig
	install -m 644 man/dnsd.8 $(DESTDIR)$(MANDIR)/man8/dnsd.8
	install -m 644 man/dnsd.yaml.5 $(DESTDIR)$(MANDIR)/man5/dnsd.yaml.5
	install -m 644 man/meshdig.1 $(DESTDIR)$(MANDIR)/man1/meshdig.1
	install -m 644 zones/mesh.yaml $(DESTDIR)$(SYSCONFDIR)/meshdns/dnsd.yaml.example
	@# The config the unit runs: the example, unless one is there already.
	[ -e $(DESTDIR)$(SYSCONFDIR)/meshdns/dnsd.yaml ] || \
		install -m 644 zones/mesh.yaml $(DESTDIR)$(SYSCONFDIR)/meshdns/dnsd.yaml
	install -d $(DESTDIR)$(UNITDIR)
	sed -e 's|@SBINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' dnsd/dnsd.service \
		> $(DESTDIR)$(UNITDIR)/dnsd.service
	chmod 644 $(DESTDIR)$(UNITDIR)/dnsd.service

clean:
	rm -rf build

.SECONDARY:
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
