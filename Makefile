# dnsroll. `make demo` runs a complete rollout in the local lab; `make test`
# runs every test. Both install what they need first (Debian packages with
# apt-get, Go tools with go install into ./bin).

SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
TEMPORAL_CLI_VERSION := v1.5.1
# The self-hosted Temporal server of the cluster lab (lab/cluster): the
# version that TEMPORAL_CLI_VERSION pins.
TEMPORAL_SERVER_VERSION := v1.29.1
# The Go linter `make test` and `make lint` run, beside go vet.
STATICCHECK_VERSION := v0.8.2
# gcc and libc6-dev: `go test -race` needs cgo, which Go turns off when it
# finds no C compiler. bc: scripts/bench-zone-deploy.sh.
APT_PACKAGES := bind9 bind9-dnsutils nginx libnginx-mod-stream ansible ansible-lint yamllint dnsperf dnsdist docker-compose \
	debootstrap dpkg-dev systemd-container openssh-client openssh-server iproute2 postgresql gcc libc6-dev bc
# The machine lab's base image (lab/machines): built once per machine, shared
# by every clone on it.
LAB_IMAGE ?= /var/cache/dnsroll/base-bookworm
# Test packages that need the lab (real Temporal, BIND, nginx, Ansible).
TEST_TIMEOUT ?= 75m
# How much `make test` fuzzes the API (`make fuzz` runs longer): a count of
# inputs, not a duration. Go before 1.27 can fail a -fuzztime duration at its
# deadline with a bare "context deadline exceeded" and no failing input
# (golang/go#75804), as a loaded CI machine makes likely; a count never sets
# that deadline. 60000 inputs take about 20 s on 2 cores.
FUZZ_TIME ?= 60000x

.PHONY: all build deps tools temporal-server cluster lab-image lab-image-rebuild demo dev test corpus-every chaos fuzz lint bench bench-inplace bench-analysis bench-query bench-zone-deploy bench-scale screenshots clean

all: build

## build: compile bin/dnsroll
build:
	$(GO) build -ldflags "-X main.commit=$$(git describe --always --dirty 2>/dev/null)" -o $(BIN)/dnsroll ./cmd/dnsroll

## deps: install the Debian packages the lab and tests use (only those missing)
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

## tools: install the temporal CLI (dev server + Web UI) into ./bin
tools: $(BIN)/temporal

$(BIN)/temporal:
	@echo "building the temporal CLI $(TEMPORAL_CLI_VERSION) (about 5 minutes on 2 cores, once)"
	GOBIN=$(BIN) $(GO) install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION)

$(BIN)/staticcheck:
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## temporal-server: install the Temporal server and its SQL tool (the cluster lab's) into ./bin
temporal-server: $(BIN)/temporal-server

# go install names them server and sql; they get clearer names in ./bin.
$(BIN)/temporal-server:
	@echo "building the Temporal server $(TEMPORAL_SERVER_VERSION) and temporal-sql-tool (several minutes on 2 cores, once)"
	rm -rf $(BIN)/.temporal-server
	GOBIN=$(BIN)/.temporal-server $(GO) install go.temporal.io/server/cmd/server@$(TEMPORAL_SERVER_VERSION) \
		go.temporal.io/server/cmd/tools/sql@$(TEMPORAL_SERVER_VERSION)
	mv $(BIN)/.temporal-server/sql $(BIN)/temporal-sql-tool
	mv $(BIN)/.temporal-server/server $(BIN)/temporal-server
	rmdir $(BIN)/.temporal-server

## lab-image: build the machine lab's Debian 12 base image into $(LAB_IMAGE) unless it is there (about 1-4 minutes, once)
lab-image: deps
	@lab/machines/build-base.sh --check $(LAB_IMAGE) || lab/machines/build-base.sh $(LAB_IMAGE)

## lab-image-rebuild: build the base image again, for new packages in it
lab-image-rebuild: deps
	lab/machines/build-base.sh $(LAB_IMAGE)

## demo: a complete blue-green rollout in a fresh local lab, then stop everything
demo: deps tools build
	@# Machine mode needs the base image; without it the demo runs in process mode and says why.
	@lab/machines/build-base.sh --check $(LAB_IMAGE) || lab/machines/build-base.sh $(LAB_IMAGE) || echo "no machine lab image: the demo runs in process mode"
	$(BIN)/dnsroll demo --lab-image $(LAB_IMAGE)

## dev: keep the lab, a worker, the Web UI (http://127.0.0.1:8233) and the API (http://127.0.0.1:8080) running until Ctrl-C
# The API's bearer token: DNSROLL_API_TOKEN from the environment (or
# `make dev DNSROLL_API_TOKEN=...`), passed through without being echoed;
# unset, dnsroll dev makes one and keeps it in .lab/dev/api-token.
dev: export DNSROLL_API_TOKEN := $(DNSROLL_API_TOKEN)
dev: deps tools build
	$(BIN)/dnsroll dev

## cluster: keep the cluster lab running until Ctrl-C: self-hosted Temporal on PostgreSQL, the lab, two worker processes (docs/lab.md: A self-hosted Temporal cluster)
cluster: deps tools temporal-server build
	$(BIN)/dnsroll cluster --bin $(BIN)

## test: unit, activity and end-to-end lab tests, plus linters
test: deps tools temporal-server lab-image $(BIN)/staticcheck
	$(GO) vet ./...
	$(BIN)/staticcheck ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	cd ansible && ansible-lint -q nameserver.yml loadbalancer.yml dnsdist.yml
	yamllint -s ansible fleets examples
	docker-compose config -q
	@# -p 1: packages that start real named, nginx and dnsdist on loopback run
	@# one at a time, so one package's servers never answer another's queries.
	@# A short fuzz of the API's router beyond its seeds: never a 5xx, never a panic.
	$(GO) test -run '^$$' -fuzz FuzzRouter -fuzztime $(FUZZ_TIME) ./api
	@# The analysis under the race detector, against real named and the
	@# tests' own servers: its readers share the zone's records (zone.packMu).
	@# These are all of probe's and zone's tests, so the run below skips them.
	DNSROLL_REQUIRE_LAB=1 $(GO) test -race -count=1 ./probe ./zone
	DNSROLL_TEMPORAL_BIN=$(BIN)/temporal DNSROLL_LAB_IMAGE=$(LAB_IMAGE) DNSROLL_REQUIRE_LAB=1 $(GO) test -p 1 -count=1 -timeout $(TEST_TIMEOUT) \
		$$($(GO) list ./... | grep -v -x -e "$$($(GO) list -m)/probe" -e "$$($(GO) list -m)/zone")

## corpus-every: change, remove and re-time every RRset of every third-party zone in testdata/zones, each on a green named of its own; the analysis must catch all (make test changes one RRset per class)
corpus-every: deps
	set -o pipefail; DNSROLL_REQUIRE_LAB=1 DNSROLL_CORPUS_EVERY=1 $(GO) test -count=1 -v -run '^TestCorpusEveryRRset$$' -timeout 60m ./corpus | grep --line-buffered -v '^=== '

## chaos: CHAOS_ROLLOUTS (30) rollouts back to back on the cluster lab (dnsdist), with worker kills, Temporal and PostgreSQL restarts, signals and cloud faults; prints "N rollouts, N converged, 0 invariant violations" (make test runs 5)
CHAOS_ROLLOUTS ?= 30
chaos: deps tools temporal-server
	set -o pipefail; DNSROLL_TEMPORAL_BIN=$(BIN)/temporal DNSROLL_REQUIRE_LAB=1 DNSROLL_CHAOS_ROLLOUTS=$(CHAOS_ROLLOUTS) \
		$(GO) test -count=1 -v -run '^TestChaos$$' -timeout 180m ./e2e | grep -v '^=== '

## fuzz: fuzz the API's router for FUZZ_TIME (default here 1000000x inputs, about 5 minutes): never a 5xx, never a panic; then the parsers of fleet files, zone files and DNS answers for FUZZ_PARSER_TIME each (200000x, some 10 minutes in all)
FUZZ_PARSER_TIME ?= 200000x
fuzz: FUZZ_TIME = 1000000x
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzRouter -fuzztime $(FUZZ_TIME) ./api
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZ_PARSER_TIME) ./config
	$(GO) test -run '^$$' -fuzz '^FuzzParseSettings$$' -fuzztime $(FUZZ_PARSER_TIME) ./config
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZ_PARSER_TIME) ./zone
	$(GO) test -run '^$$' -fuzz '^FuzzAsGeneric$$' -fuzztime $(FUZZ_PARSER_TIME) ./zone
	@# Through named-compilezone, a process an input: a tenth as many.
	$(GO) test -run '^$$' -fuzz '^FuzzParseCompiled$$' -fuzztime 20000x ./zone
	$(GO) test -run '^$$' -fuzz '^FuzzUnpackAnswer$$' -fuzztime $(FUZZ_PARSER_TIME) ./probe

## lint: linters only
lint: $(BIN)/staticcheck
	$(GO) vet ./...
	$(BIN)/staticcheck ./...
	cd ansible && ansible-lint nameserver.yml loadbalancer.yml dnsdist.yml
	yamllint -s ansible fleets examples

## bench: queries lost and switch times of each load balancer driver during lab rollouts, rollbacks, canaries and in-place updates under dnsperf (docs/benchmarks.md), then bench-analysis and bench-query
bench: deps tools
	$(GO) run ./bench -docs docs/benchmarks.md $(BENCH_FLAGS)
	$(MAKE) bench-analysis
	$(MAKE) bench-query

## bench-inplace: only the in-place updates under dnsperf: 10 nginx reloads, 3 nginx binary upgrades, 10 dnsdist console changes (docs/benchmarks.md)
BENCH_INPLACE_SCENARIOS := inplace-nginx-config,inplace-nginx-binary,inplace-dnsdist-config
bench-inplace: deps tools
	$(GO) run ./bench -scenarios $(BENCH_INPLACE_SCENARIOS) -docs docs/benchmarks.md $(BENCH_FLAGS)

## bench-analysis: analyse a 10,000-name zone on 4 real named, beside dnsperf's raw rate (docs/benchmarks-analysis.md)
bench-analysis: deps
	$(GO) run ./bench/analysis $(BENCH_ANALYSIS_FLAGS)

## bench-query: how long the status query takes while a lab rollout bakes, with the SDK's sticky schedule-to-start timeout and with dnsroll's (docs/benchmarks.md)
bench-query: deps tools temporal-server
	set -o pipefail; DNSROLL_TEMPORAL_BIN=$(BIN)/temporal DNSROLL_REQUIRE_LAB=1 DNSROLL_BENCH_QUERY=1 \
		$(GO) test -count=1 -v -run '^TestQueryLatencyBench$$' -timeout 30m ./e2e | grep '^sticky timeout'

## bench-zone-deploy: time the nameserver role deploying 1, 100 and 1,000 zones to a lab nameserver (docs/benchmarks-zone-deploy.md)
BENCH_ZONE_COUNTS ?= 1 100 1000
bench-zone-deploy: deps
	scripts/bench-zone-deploy.sh $(BENCH_ZONE_COUNTS)

## bench-scale: one lab rollout of fleets of 1, 1,000, 10,000 and 100,000 small zones: wall time, history size, largest payload, worker peak memory, analysis coverage (docs/benchmarks-scale.md)
BENCH_SCALE_SIZES ?= 1,1000,10000,100000
bench-scale: deps tools build
	$(GO) run ./bench/scale -sizes $(BENCH_SCALE_SIZES) -dnsroll $(BIN)/dnsroll -temporal-bin $(BIN)/temporal $(BENCH_SCALE_FLAGS)

## screenshots: photograph a lab rollout in the Web UI with headless Chromium into docs/webui (installs chromium, npm and playwright-core; not part of test)
screenshots: deps tools build
	DNSROLL_BIN=$(BIN)/dnsroll scripts/webui-screenshots.sh

clean:
	rm -rf $(BIN) .lab
