# The two commands a newcomer needs:
#   make serve   builds hotmod and the examples, then runs the daemon on them
#   make test    runs every check and test, as CI does
GO       ?= go
BIN      := bin/hotmod
PLUGINS  := plugins
EXAMPLES := greeter pricing faulty checkout rules

# Packages whose tests load native plugins cannot run under -race (a plugin
# must be built with the host's exact flags); everything else runs with it.
NATIVE_PKGS := ./internal/native/... ./internal/artifact/... ./internal/build/... ./internal/plugintest/... ./integration/... ./cmd/hotmod/...
RACE_PKGS   := . ./internal/chain/... ./internal/settle/... ./internal/statedir/... ./internal/server/... ./internal/contract/... ./internal/cbordiff/... ./internal/guard/... ./internal/process/... ./internal/valuejson/... ./internal/wasm/... ./internal/auth/... ./internal/audit/... ./internal/connlimit/... ./internal/logcap/... ./internal/signing/... ./internal/journal/... ./internal/supervisor/... ./internal/goroutines/... ./internal/proctree/... ./internal/rollout/... ./observe/... ./internal/stages/... ./internal/relocate/...

.PHONY: serve build examples test lint bench compare clean

serve: examples
	./$(BIN) serve --dir $(PLUGINS) --allow-command python3

build:
	$(GO) build -ldflags "-X main.commit=$$(git rev-parse --short=12 HEAD 2>/dev/null)" -o $(BIN) ./cmd/hotmod

examples: build
	@mkdir -p $(PLUGINS)
	@for e in $(EXAMPLES); do ./$(BIN) build -o $(PLUGINS) ./examples/$$e || exit 1; done
	@cp examples/python/textstats.py $(PLUGINS)/ && cp examples/python/textstats.process.json $(PLUGINS)/

lint:
	@out=$$(gofmt -l . ); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd sdk && $(GO) vet ./...
	cd examples && $(GO) vet ./...
	@$(GO) mod tidy -diff || { echo "go.mod is not tidy: run go mod tidy"; exit 1; }

test: lint
	cd sdk && $(GO) test -race -count=1 -timeout 20m ./...
	cd examples && $(GO) test -count=1 -timeout 20m ./...
	$(GO) test -race -count=1 -timeout 40m $(RACE_PKGS)
	$(GO) test -count=1 -timeout 40m $(NATIVE_PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 -timeout 60m ./integration/ ./internal/native/ ./internal/process/ ./internal/wasm/

# hotmod beside its peers (Go plugin, hashicorp/go-plugin, Extism), one run: BENCHMARKS.md
compare:
	cd bench && $(GO) run ./cmd/compare

clean:
	rm -rf bin $(PLUGINS)
