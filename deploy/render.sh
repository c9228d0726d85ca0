#!/usr/bin/env bash
# Renders the plain manifests from the Helm chart (make deploy-render), so that they never drift
# from it: deploy/kubernetes/envoy-authz.yaml and envoy/istio/{authorization-policy,
# ratelimit-envoyfilter,telemetry}.yaml. With an argument, writes the files below that directory instead
# (deploy/validate.sh compares them with the committed ones).
set -euo pipefail
cd "$(dirname "$0")/.."
helm=${HELM:-.tools/bin/helm}
out=${1:-.}
chart=deploy/helm/envoy-authz
mkdir -p "$out/deploy/kubernetes" "$out/envoy/istio"
template() { "$helm" template envoy-authz "$chart" --namespace envoy-authz --kube-version 1.27.0 "$@"; }
header() {
  printf '# Rendered by deploy/render.sh (make deploy-render) from the chart %s with %s: do not edit.\n' "$chart" "$1"
}

{
  header deploy/kubernetes/values.yaml
  cat <<'YAML'
# envoy-authz on Kubernetes without Helm: kubectl apply -f deploy/kubernetes/envoy-authz.yaml
# ext_authz and rate limits on 9191 (gRPC), admin on 9192 (metrics, readiness, JWKS). Create the
# token signing key Secret first (see deploy/kubernetes/values.yaml).
apiVersion: v1
kind: Namespace
metadata:
  name: envoy-authz
YAML
  template -f deploy/kubernetes/values.yaml
} > "$out/deploy/kubernetes/envoy-authz.yaml"

for t in authorization-policy:istio-authorizationpolicy ratelimit-envoyfilter:istio-envoyfilter-ratelimit telemetry:istio-telemetry; do
  { header envoy/istio/values.yaml; template -f envoy/istio/values.yaml --show-only "templates/${t#*:}.yaml"; } > "$out/envoy/istio/${t%%:*}.yaml"
done
