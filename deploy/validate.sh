#!/usr/bin/env bash
# Checks every deployment asset with the tool that consumes it (make deploy-validate):
#   helm lint --strict and helm template for every values file in the chart's ci/;
#   the rendered manifests and deploy/kubernetes against the Kubernetes JSON schemas (offline,
#   kubernetes-validate --strict) for the oldest and the newest Kubernetes the chart supports;
#   the plain manifests are what the chart renders (deploy/render.sh);
#   promtool check rules and promtool test rules on deploy/monitoring;
#   hadolint on deploy/Dockerfile.
# Istio and prometheus-operator resources are checked against their CRD schemas by
# test/unit/deploy/crds.test.ts, the rendered envoy-authz config by test/unit/deploy/helm.test.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${HELM:?}" "${PROMTOOL:?}" "${KUBERNETES_VALIDATE:?}" "${HADOLINT:?}"
chart=deploy/helm/envoy-authz
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# The kinds kubernetes-validate has no schema for, each checked against its CRD elsewhere.
CRD_KINDS='AuthorizationPolicy|EnvoyFilter|ServiceMonitor|Telemetry'
KUBE_VERSIONS=(1.27.0 1.37.0)

for values in "$chart"/ci/*-values.yaml; do
  name=$(basename "$values" -values.yaml)
  "$HELM" lint --strict --quiet "$chart" -f "$values" --kube-version "${KUBE_VERSIONS[0]}" >"$out/lint.log" 2>&1 || { cat "$out/lint.log"; echo "helm lint failed: $values"; exit 1; }
  "$HELM" template envoy-authz "$chart" --namespace envoy-authz -f "$values" --kube-version "${KUBE_VERSIONS[0]}" >"$out/$name.yaml"
  echo "helm lint + template $values: OK"
done

deploy/render.sh "$out/rendered" >/dev/null
for f in deploy/kubernetes/envoy-authz.yaml envoy/istio/authorization-policy.yaml envoy/istio/ratelimit-envoyfilter.yaml envoy/istio/telemetry.yaml; do
  diff -u "$f" "$out/rendered/$f" || { echo "$f is not what the chart renders: run make deploy-render"; exit 1; }
done
echo "deploy/kubernetes and envoy/istio are rendered from the chart: OK"

for k in "${KUBE_VERSIONS[@]}"; do
  for f in "$out"/*.yaml deploy/kubernetes/envoy-authz.yaml; do
    if ! "$KUBERNETES_VALIDATE" --strict --quiet -k "$k" "$f" >"$out/kv.log" 2>&1; then
      cat "$out/kv.log"; echo "Kubernetes $k schema validation failed: $f"; exit 1
    fi
    # An unknown kind is only a warning to kubernetes-validate: allow the CRD kinds alone.
    if grep -v -E "Couldn't find schema for kind ($CRD_KINDS) " "$out/kv.log" | grep -q .; then
      cat "$out/kv.log"; echo "unexpected kubernetes-validate output for $f"; exit 1
    fi
  done
  echo "Kubernetes $k JSON schemas (strict): OK"
done

"$PROMTOOL" check rules deploy/monitoring/alerts.yaml
"$PROMTOOL" test rules deploy/monitoring/alerts.test.yaml

"$HADOLINT" deploy/Dockerfile
echo "hadolint deploy/Dockerfile: OK"
