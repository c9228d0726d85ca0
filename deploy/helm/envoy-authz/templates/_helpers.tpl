{{/* Names and labels, as `helm create` makes them (Helm best practices). */}}
{{- define "envoy-authz.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "envoy-authz.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "envoy-authz.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "envoy-authz.selectorLabels" -}}
app.kubernetes.io/name: {{ include "envoy-authz.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "envoy-authz.labels" -}}
helm.sh/chart: {{ include "envoy-authz.chart" . }}
{{ include "envoy-authz.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: authorization
app.kubernetes.io/part-of: envoy-authz
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "envoy-authz.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "envoy-authz.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The namespace of the workloads that the Istio resources protect. */}}
{{- define "envoy-authz.istioNamespace" -}}
{{- default .Release.Namespace .Values.istio.namespace }}
{{- end }}

{{/* The Service's host name inside the cluster, as Istio names it. */}}
{{- define "envoy-authz.serviceHost" -}}
{{- printf "%s.%s.svc.%s" (include "envoy-authz.fullname" .) .Release.Namespace .Values.clusterDomain }}
{{- end }}

{{/* host:port for a listener; IPv6 hosts in brackets. */}}
{{- define "envoy-authz.listen" -}}
{{- $host := index . 0 }}{{- $port := index . 1 }}
{{- if contains ":" $host }}{{ printf "[%s]:%d" $host (int $port) }}{{ else }}{{ printf "%s:%d" $host (int $port) }}{{ end }}
{{- end }}

{{/* Milliseconds as an Envoy duration ("0.2s"). */}}
{{- define "envoy-authz.duration" -}}
{{- printf "%ss" (divf . 1000 | toString) }}
{{- end }}

{{/* Where the pod mounts what the configuration refers to. */}}
{{- define "envoy-authz.dir" -}}/etc/envoy-authz{{- end }}

{{- define "envoy-authz.rateLimitFiles" -}}
{{- if .Values.rateLimits.existingConfigMap.name }}
{{- toJson .Values.rateLimits.existingConfigMap.files }}
{{- else }}
{{- toJson (keys .Values.rateLimits.files | sortAlpha) }}
{{- end }}
{{- end }}

{{/* The effective Redis command timeout (the service's default when unset). */}}
{{- define "envoy-authz.redisCommandTimeoutMs" -}}
{{- default 100 .Values.redis.command_timeout_ms | int }}
{{- end }}

{{/*
The service's configuration file. Three layers, later ones win: defaults that follow from the
values (the stores), the operator's `config`, and the keys the chart owns (listen addresses and
every path the pod mounts). values.schema.json refuses the owned keys in `config`.
*/}}
{{- define "envoy-authz.config" -}}
{{- $v := .Values }}
{{- $dir := include "envoy-authz.dir" . }}
{{- $user := deepCopy (default dict $v.config) }}
{{- $redisOn := ne (default "" $v.redis.url) "" }}
{{- $soft := dict
  "ratelimit" (dict "store" (ternary "redis" "memory" $redisOn))
  "revocation" (dict "store" (ternary "redis" "memory" (and $redisOn (ne $v.redis.mode "cluster")))) }}
{{- $server := dict "address" (include "envoy-authz.listen" (list $v.listenHost $v.ports.grpc)) }}
{{- if $v.tls.secretName }}
{{- $tls := dict "cert_file" (printf "%s/tls/tls.crt" $dir) "key_file" (printf "%s/tls/tls.key" $dir) }}
{{- if $v.tls.clientCA }}{{ $_ := set $tls "client_ca_file" (printf "%s/tls/ca.crt" $dir) }}{{ end }}
{{- $_ := set $server "tls" $tls }}
{{- end }}
{{- $files := list }}
{{- range (include "envoy-authz.rateLimitFiles" . | fromJsonArray) }}{{ $files = append $files (printf "%s/ratelimit/%s" $dir .) }}{{ end }}
{{- $managed := dict
  "server" $server
  "admin" (dict "address" (include "envoy-authz.listen" (list $v.listenHost $v.ports.admin)))
  "ratelimit" (dict "files" $files) }}
{{- if $redisOn }}
{{- $redis := pick $v.redis "url" "mode" "key_prefix" "connect_timeout_ms" "command_timeout_ms" }}
{{- if $v.redis.nodes }}{{ $_ := set $redis "nodes" $v.redis.nodes }}{{ end }}
{{- if $v.redis.sentinel_name }}{{ $_ := set $redis "sentinel_name" $v.redis.sentinel_name }}{{ end }}
{{- $_ := set $managed "redis" $redis }}
{{- end }}
{{- $b := $v.policy.bundle }}
{{- $bundle := dict "poll_interval_ms" $b.poll_interval_ms }}
{{- if $b.url }}{{ $_ := set $bundle "url" $b.url }}
{{- else if $b.configMap.name }}{{ $_ := set $bundle "file" (printf "%s/policy/%s" $dir $b.configMap.key) }}
{{- else if $b.file }}{{ $_ := set $bundle "file" $b.file }}
{{- end }}
{{- if or $b.url $b.configMap.name $b.file }}
{{- $policy := dict "bundle" $bundle "dry_run" $v.policy.dryRun }}
{{- if $v.policy.verification.secretName }}
{{- $_ := set $policy "verification" (dict "key_file" (printf "%s/policy-verification/%s" $dir $v.policy.verification.key) "algorithm" $v.policy.verification.algorithm) }}
{{- end }}
{{- $_ := set $managed "policy" $policy }}
{{- else if or (hasKey $user "policy") $v.policy.dryRun $v.policy.verification.secretName }}
{{- fail "policy: config.policy, policy.dryRun and policy.verification need a bundle (policy.bundle.url, .configMap.name or .file)" }}
{{- end }}
{{- if hasKey $user "token" }}
{{- if not $v.tokenSigning.existingSecret }}{{ fail "config.token needs tokenSigning.existingSecret (the Secret with the private signing JWKs)" }}{{ end }}
{{- $keys := list }}
{{- range $v.tokenSigning.keys }}
{{- $k := dict "file" (printf "%s/keys/%s" $dir .key) }}
{{- if .activate_at }}{{ $_ := set $k "activate_at" .activate_at }}{{ end }}
{{- $keys = append $keys $k }}
{{- end }}
{{- $_ := set $managed "token" (dict "signing_keys" $keys) }}
{{- else if $v.tokenSigning.existingSecret }}
{{- fail "tokenSigning.existingSecret is set but config.token is not (issuer, default_audience)" }}
{{- end }}
{{- $cfg := mergeOverwrite $soft $user $managed }}
{{- if and (eq $cfg.ratelimit.store "redis") (not $redisOn) }}{{ fail "config.ratelimit.store redis needs redis.url" }}{{ end }}
{{- toYaml $cfg }}
{{- end }}

{{/* The workloads the Istio resources apply to; never all of a namespace. */}}
{{- define "envoy-authz.workloadSelector" -}}
{{- if not .Values.istio.workloadSelector }}
{{- fail "istio.workloadSelector must name the labels of the workloads to protect (an empty selector would reach every workload of the namespace)" }}
{{- end }}
{{- toYaml .Values.istio.workloadSelector }}
{{- end }}
