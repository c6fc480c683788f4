# Thin wrapper around meson/ninja.  The two commands of the README:
#   make demo    install what is missing, build, boot a demo VM under hcd
#   make check   install what is missing, build, run every test
PREFIX ?= /usr/local
BUILD  ?= build
ASAN   ?= build-asan
FUZZ   ?= build-fuzz
# make fuzz: seconds per harness; FUZZERS=NAME… runs only those.
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 4
FUZZERS ?=
GUEST  ?= $(BUILD)/guest

.PHONY: all deps deps-check build asan fuzz-build fuzz fuzz-smoke guest check unit unit-asan e2e e2e-asan \
	demo demo-stop install bench clean deb pkg-check openapi

all: build

deps:
	./scripts/deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) --prefix=$(PREFIX)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(ASAN)/build.ninja:
	meson setup $(ASAN) -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug

asan: $(ASAN)/build.ninja
	ninja -C $(ASAN)

# libFuzzer harnesses (tests/fuzz/README.md): clang, every library
# instrumented for coverage, ASan + UBSan (a UBSan report aborts).  The
# product's warnings are gcc's -Werror (build/); clang's own would stop
# fuzzing here, so only the harnesses are built with -Werror.
$(FUZZ)/build.ninja:
	CC=clang meson setup $(FUZZ) -Dfuzz=true -Dtests=false -Db_sanitize=address,undefined \
		-Db_lundef=false -Dbuildtype=debugoptimized -Dwerror=false \
		'-Dc_args=-fsanitize=fuzzer-no-link -fno-sanitize-recover=undefined'

fuzz-build: $(FUZZ)/build.ninja
	ninja -C $(FUZZ) fuzzers

# Every harness for FUZZ_SECONDS, one after the other; the corpora grow
# in $(FUZZ)/fuzz-work between runs.
fuzz: fuzz-build
	./tests/fuzz/run.sh $(FUZZ) $(FUZZ_SECONDS) $(FUZZERS)

# make check: each harness a few seconds from its seed corpus alone (the
# regression inputs of fixed findings are in it).  An input may take up to
# 120 s before it counts as a hang: check runs on busy machines, and an
# upload's finalize runs qemu-img.
fuzz-smoke: fuzz-build
	rm -rf $(FUZZ)/smoke-work
	FUZZ_WORK=$(FUZZ)/smoke-work FUZZ_TIMEOUT=120 ./tests/fuzz/run.sh $(FUZZ) $(FUZZ_SMOKE_SECONDS)

# The tiny test guest: Debian cloud kernel + busybox initramfs.
guest: $(GUEST)/vmlinuz

$(GUEST)/vmlinuz: guest/build-tiny.sh guest/init $(shell find guest/rootfs -type f)
	./guest/build-tiny.sh $(GUEST)

unit: build
	meson test -C $(BUILD) --print-errorlogs

# UBSan only prints what it finds unless told to stop: a report fails.
UBSAN_ENV = UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

unit-asan: asan
	$(UBSAN_ENV) meson test -C $(ASAN) --print-errorlogs

e2e: build guest
	./tests/e2e/run.sh $(BUILD) $(GUEST)

# The bad-input test again, against the ASan/UBSan daemon and client.
e2e-asan: asan guest
	$(UBSAN_ENV) E2E_ONLY=badinput ./tests/e2e/run.sh $(ASAN) $(GUEST)

# The API's description, made from its compact source (commit both; the
# meson test openapi-source fails while they differ).
openapi:
	python3 docs/openapi.py > docs/openapi.json.tmp && mv docs/openapi.json.tmp docs/openapi.json

# deps-check: every meson dependency() is installed by scripts/deps.sh.
deps-check:
	./scripts/check-deps.sh

check: deps
	$(MAKE) deps-check unit unit-asan fuzz-smoke e2e e2e-asan pkg-check

demo: deps build guest
	./scripts/demo.sh $(BUILD) $(GUEST)

demo-stop:
	./scripts/demo.sh --stop

# The Debian package (dpkg-buildpackage -us -uc -b on a copy of the tree):
# $(BUILD)/deb/hackcloud_<version>_amd64.deb.
deb:
	./packaging/build-deb.sh $(BUILD)/deb

# The package installed with apt into a fresh debootstrap'ed Debian 12,
# hcd run from it directly and as hcd.service under systemd (nspawn), the
# tiny guest booted each time.  About 2 minutes once its downloads are
# cached in /var/cache/hackcloud/build/pkgtest.
pkg-check: deb guest
	./tests/pkg/test_deb.sh $$(ls $(BUILD)/deb/hackcloud_*_amd64.deb) $(GUEST)

install: build
	meson configure $(BUILD) --prefix=$(PREFIX)
	meson install -C $(BUILD) --destdir=$(DESTDIR)

bench: build guest
	./bench/run.sh $(BUILD) $(GUEST)
	./bench/cluster.sh $(BUILD)
	./bench/triggers.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN) $(FUZZ)
