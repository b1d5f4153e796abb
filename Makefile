# p2pchat: one binary, two commands. `make run` starts the app, `make test`
# runs every test (unit, integration, fuzz seeds, browser end-to-end).

GO        ?= go
STATICCHECK_VERSION ?= v0.8.2
FUZZTIME  ?= 200000x
# Fuzzers whose every input opens loopback connections run fewer inputs.
FUZZTIME_NET ?= 20000x

.PHONY: run build test lint fuzz bench bench-files screenshots nat-test clean

run:
	$(GO) run ./cmd/p2pchat

build:
	$(GO) build -o bin/p2pchat ./cmd/p2pchat

test:
	@[ -n "$$CHROME_BIN" ] || command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	 command -v google-chrome-stable >/dev/null || command -v google-chrome >/dev/null || \
	 echo "*** WARNING: no Chromium found: the browser end-to-end tests (web/e2e) will be SKIPPED." \
	      "Install it: apt-get install -y --no-install-recommends chromium" >&2
	@[ -n "$$FIREFOX_BIN" ] || command -v firefox-esr >/dev/null || command -v firefox >/dev/null || \
	 echo "*** WARNING: no Firefox found: the cross-browser tests (web/e2e TestCrossBrowser) will be SKIPPED." \
	      "Install it: apt-get install -y --no-install-recommends firefox-esr" >&2
	$(GO) vet ./...
	@# The hub's tests (server/signaling) run on an in-memory connection;
	@# server's run the protocol over every real transport (event loop,
	@# goroutine per connection, TLS) in the same run.
	$(GO) test -race -count=1 -timeout 20m ./...

lint:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	@# `go install` must work off Linux too (no event loop there).
	GOOS=darwin $(GO) build ./... && GOOS=windows $(GO) build ./...

# Bounded fuzzing of every parser of untrusted input. FUZZTIME counts
# inputs per fuzzer (Nx): with a duration, Go 1.26's fuzzing coordinator
# can report the end of -fuzztime as a failure ("context deadline
# exceeded", golang/go#75804), which would fail CI with no bug found.
fuzz:
	$(GO) test ./server/signaling -run '^$$' -fuzz '^FuzzHandle$$' -fuzztime $(FUZZTIME)
	$(GO) test ./server/signaling -run '^$$' -fuzz '^FuzzParseEnvelope$$' -fuzztime $(FUZZTIME)
	$(GO) test ./server -run '^$$' -fuzz '^FuzzClientIP$$' -fuzztime $(FUZZTIME)
	$(GO) test ./server/ice -run '^$$' -fuzz '^FuzzParseUsername$$' -fuzztime $(FUZZTIME)
	$(GO) test ./server/wsloop -run '^$$' -fuzz '^FuzzDecoder$$' -fuzztime $(FUZZTIME)
	$(GO) test ./server/wsloop -run '^$$' -fuzz '^FuzzGuard$$' -fuzztime $(FUZZTIME)
	$(GO) test ./server/wsloop -run '^$$' -fuzz '^FuzzHeadEnd$$' -fuzztime $(FUZZTIME)
	$(GO) test ./server/natsbus -run '^$$' -fuzz '^FuzzParseRelay$$' -fuzztime $(FUZZTIME)
	$(GO) test ./server/wsloop -run '^$$' -fuzz '^FuzzListenHead$$' -fuzztime $(FUZZTIME_NET)

# Benchmarks of the hot paths (benchstat-friendly), then a short bounded
# load run of the real binary on loopback. See docs/benchmarks.md.
BENCHTIME ?= 1s
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./server/signaling ./server/wsloop ./server
	$(GO) build -o bin/p2pchat ./cmd/p2pchat
	$(GO) build -o bin/p2pchat-load ./cmd/p2pchat-load
	BIN=bin ./cmd/p2pchat-load/bench.sh

# File transfer throughput between two headless Chromiums on loopback: the
# raw data channel, p2pchat's transfer (100 MiB and BENCH_BIG_MIB, 1 GiB by
# default) and a PairDrop-style sender; a table, then one JSON line.
# BENCH_REPS rounds of the 100 MiB runs. See docs/benchmarks.md.
BENCH_REPS ?= 3
BENCH_BIG_MIB ?= 1024
bench-files:
	P2PCHAT_BENCH_FILES=1 BENCH_REPS=$(BENCH_REPS) BENCH_BIG_MIB=$(BENCH_BIG_MIB) \
	 $(GO) test -count=1 -v -timeout 30m -run '^TestBenchFiles$$' ./web/e2e | grep -v '^\s*[0-9:.]* log:'

# Browser calls between two network namespaces behind NAT routers: with
# symmetric NATs only the embedded TURN relay connects them. Needs root,
# ip(8) and nft(8) (apt-get install -y --no-install-recommends nftables).
nat-test:
	P2PCHAT_NETNS_TEST=1 $(GO) test -race -count=1 -run '^TestNATLab' -v ./web/e2e

# PNGs of every screen of the client into docs/screenshots, from real
# Chromium (the zh-TW shots need a CJK font, e.g. fonts-wqy-microhei).
screenshots:
	P2PCHAT_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run 'Screenshots$$' -v ./web/e2e

clean:
	rm -rf bin
