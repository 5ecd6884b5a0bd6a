# creditd — developer entry points. See README.md ("Two commands").
#
#   make run    provision Postgres + Redis, build, migrate, run `creditd all` (worker + web UI)
#   make test   provision, go vet, staticcheck, race tests, the other tests

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
# Each recipe runs as one bash script, so the exports of provisioning reach
# every command after it, and the first failing command fails the target.
.ONESHELL:
.DEFAULT_GOAL := build
.DELETE_ON_ERROR:

GO ?= go
# Packages with concurrent code: tested with the race detector.
RACE_PKGS ?= ./ledger/... ./jobs/... ./notify/...
BENCH_PKGS ?= ./ledger/...
BENCH ?= .
TEST_TIMEOUT ?= 20m
STATICCHECK_VERSION ?= latest
STRIPE_MOCK_VERSION ?= latest

# Sets DATABASE_URL and REDIS_URL in the recipe's shell. The assignment makes a
# failing provision.sh fail the recipe (a bare `eval "$(...)"` would not).
PROVISION = provision_env=$$(deploy/dev/provision.sh); eval "$$provision_env"

# Sets $$staticcheck: on PATH, else in GOBIN / GOPATH/bin, else installed there.
FIND_STATICCHECK = staticcheck=$$(command -v staticcheck || true); \
	if [ -z "$$staticcheck" ]; then \
	  gobin=$$($(GO) env GOBIN); gopath=$$($(GO) env GOPATH); \
	  staticcheck=$${gobin:-$${gopath%%:*}/bin}/staticcheck; \
	  if [ ! -x "$$staticcheck" ]; then \
	    echo "installing staticcheck@$(STATICCHECK_VERSION)" >&2; \
	    $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION); \
	  fi; \
	fi

# stripe-mock for the request-shape test of jobs/payments: on PATH or in
# GOBIN / GOPATH/bin, else installed there; a failed install (no network)
# only says so, and that test then skips, saying so too.
ENSURE_STRIPE_MOCK = if ! command -v stripe-mock >/dev/null; then \
	  gobin=$$($(GO) env GOBIN); gopath=$$($(GO) env GOPATH); \
	  if [ ! -x "$${gobin:-$${gopath%%:*}/bin}/stripe-mock" ]; then \
	    echo "installing stripe-mock@$(STRIPE_MOCK_VERSION)" >&2; \
	    $(GO) install github.com/stripe/stripe-mock@$(STRIPE_MOCK_VERSION) || \
	      echo "stripe-mock could not be installed: its conformance test will skip" >&2; \
	  fi; \
	fi

.PHONY: run test build vet lint bench clean stop

build:
	$(GO) build -o .bin/creditd ./cmd/creditd

# The operator token: CREDITD_API_TOKEN when set, else a dev token made once
# and kept in .dev/api-token (the UI's password, any user name).
run:
	@$(PROVISION)
	$(GO) build -o .bin/creditd ./cmd/creditd
	.bin/creditd migrate
	if [ -z "$${CREDITD_API_TOKEN:-}" ]; then
	  if [ ! -s .dev/api-token ]; then
	    mkdir -p .dev
	    (umask 077; od -An -tx1 -N24 /dev/urandom | tr -d ' \n' > .dev/api-token)
	  fi
	  CREDITD_API_TOKEN=$$(cat .dev/api-token)
	  export CREDITD_API_TOKEN
	fi
	addr=$${CREDITD_HTTP_ADDR:-127.0.0.1:8080}
	echo "creditd: DATABASE_URL=$$DATABASE_URL REDIS_URL=$$REDIS_URL"
	echo "creditd: catalog: $${CREDITD_CATALOG:-the built-in demo catalog}"
	echo "creditd: operators' UI  http://$$addr/monitor/  (user: any, password: the operator token)"
	echo "creditd: HTTP API       http://$$addr/v1/  (Authorization: Bearer <operator token>)"
	echo "creditd: operator token $$CREDITD_API_TOKEN"
	echo "creditd: try, in another shell (same DATABASE_URL and REDIS_URL):"
	echo "creditd:   .bin/creditd org create demo --plan free; .bin/creditd grant demo 10 --source promo --key welcome"
	echo "creditd:   .bin/creditd usage demo 2.5 --event e1 --wait; .bin/creditd balance demo --json; .bin/creditd verify"
	echo "creditd: starting creditd all (worker + web); Ctrl-C stops it gracefully"
	exec .bin/creditd all

# Race tests for RACE_PKGS, then plain tests for every other package. Patterns
# whose directory does not exist yet are left out (go list fails on them).
test:
	@$(PROVISION)
	deploy/dev/chromium.sh
	$(ENSURE_STRIPE_MOCK)
	echo "==> go vet ./..."
	$(GO) vet ./...
	$(FIND_STATICCHECK)
	echo "==> staticcheck ./..."
	"$$staticcheck" ./...
	race_patterns=
	for p in $(RACE_PKGS); do
	  if [ -d "$${p%/...}" ]; then race_patterns="$$race_patterns $$p"; fi
	done
	race_list=
	if [ -n "$$race_patterns" ]; then race_list=$$($(GO) list $$race_patterns); fi
	other_list=$$($(GO) list ./... | grep -vxF -f <(printf '%s\n' $$race_list) || true)
	status=0
	if [ -n "$$race_list" ]; then
	  echo "==> go test -race:" $$race_list
	  $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $$race_list || status=1
	fi
	if [ -n "$$other_list" ]; then
	  echo "==> go test:" $$other_list
	  $(GO) test -count=1 -timeout $(TEST_TIMEOUT) $$other_list || status=1
	fi
	exit $$status

vet:
	$(GO) vet ./...

lint:
	@$(FIND_STATICCHECK)
	"$$staticcheck" ./...

bench:
	@$(PROVISION)
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime 10s -benchmem -timeout $(TEST_TIMEOUT) $(BENCH_PKGS)
	deploy/dev/pgbench-ceiling.sh
	deploy/dev/hot-org-floor.sh

clean:
	rm -rf .bin

# Stop the Postgres/Redis that provisioning started under .dev/ (nothing else).
stop:
	deploy/dev/stop.sh
