# sms-retry: make run (the demo), make test (the suite). Both install what is missing.
SHELL := /bin/bash
APT_PACKAGES := postgresql libpq-dev libcurl4-openssl-dev pkg-config
SWIFT_BUILD := swift build
BIN = $(shell swift build --show-bin-path)

.PHONY: deps build test test-faults run measure cpu bench lint clean

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

build: deps
	$(SWIFT_BUILD)

# Starts a throwaway PostgreSQL under /tmp, runs the suite against it, stops it. The fault
# drills (Tests/IntegrationTests/FaultDrills*.swift) are `make test-faults`.
test: deps
	$(SWIFT_BUILD) --build-tests
	@data=$$(mktemp -d /tmp/sms-retry-test-pg.XXXXXX); \
	  .ci/with-postgres "$$data" swift test --skip-build --skip FaultDrills; status=$$?; rm -rf "$$data"; exit $$status

# The fault drills, one at a time on a server of their own (one stops it mid-run): overlapping
# runs, kill -9, PostgreSQL restart, Twilio outages, 429 storms, opt-outs, bad input, secrets.
# Each prints a line starting FIGURE.
test-faults: deps
	$(SWIFT_BUILD) --build-tests
	@data=$$(mktemp -d /tmp/sms-retry-faults-pg.XXXXXX); \
	  .ci/with-postgres "$$data" swift test --skip-build --filter FaultDrills; status=$$?; rm -rf "$$data"; exit $$status

# The demo: a throwaway PostgreSQL under .demo/, the migrations, a handful of failed messages,
# a local Twilio stand-in, one `sms-retry run`, and the rows before and after.
run: build
	@rm -rf .demo && mkdir -p .demo
	@.ci/with-postgres .demo/pgdata .ci/demo "$(BIN)"

# The retry core's figures: claim plan on 1M rows, run throughput on 10k due rows (see README).
measure: deps
	swift build -c release
	@data=$$(mktemp -d /tmp/sms-retry-measure-pg.XXXXXX); \
	  .ci/with-postgres "$$data" benchmarks/core.sh "$$(swift build -c release --show-bin-path)"; status=$$?; rm -rf "$$data"; exit $$status

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
