{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "pixelparty.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name. */}}
{{- define "pixelparty.fullname" -}}
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

{{- define "pixelparty.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pixelparty.labels" -}}
helm.sh/chart: {{ include "pixelparty.chart" . }}
{{ include "pixelparty.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "pixelparty.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pixelparty.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Name of the Secret holding the admin token. */}}
{{- define "pixelparty.adminSecretName" -}}
{{- if .Values.adminToken.existingSecret }}
{{- .Values.adminToken.existingSecret }}
{{- else }}
{{- printf "%s-admin" (include "pixelparty.fullname" .) }}
{{- end }}
{{- end }}

{{/* Name of the Secret holding the cluster's Redis and PostgreSQL URLs. */}}
{{- define "pixelparty.clusterSecretName" -}}
{{- if .Values.cluster.existingSecret }}
{{- .Values.cluster.existingSecret }}
{{- else }}
{{- printf "%s-cluster" (include "pixelparty.fullname" .) }}
{{- end }}
{{- end }}

{{/*
Refuses values that would deploy something broken: several pods without cluster mode (each
would be a separate canvas), cluster mode without its URLs, and the URLs or the node id in
the config (the URLs carry a password: a Secret; the node id is each pod's name).
*/}}
{{- define "pixelparty.validate" -}}
{{- $replicas := int .Values.replicas }}
{{- if lt $replicas 0 }}
{{- fail "replicas must be 0 or more" }}
{{- end }}
{{- if and (gt $replicas 1) (not .Values.cluster.enabled) }}
{{- fail (printf "replicas = %d needs cluster.enabled (several nodes over Redis and PostgreSQL): without it each pod would be a separate canvas" $replicas) }}
{{- end }}
{{- if and .Values.cluster.enabled (not .Values.cluster.existingSecret) (or (not .Values.cluster.redisUrl) (not .Values.cluster.postgresUrl)) }}
{{- fail "cluster.enabled needs cluster.existingSecret, or both cluster.redisUrl and cluster.postgresUrl" }}
{{- end }}
{{- if or (hasKey (default dict .Values.config.cluster) "redis_url") (hasKey (default dict .Values.config.cluster) "node_id") (hasKey (default dict .Values.config.storage) "postgres_url") }}
{{- fail "config.cluster.redis_url, config.cluster.node_id and config.storage.postgres_url are set by the chart: the URLs through cluster.* (a Secret), the node id from the pod name" }}
{{- end }}
{{- if or (hasKey (default dict .Values.config.cluster) "redis_ca_file") (hasKey (default dict .Values.config.storage) "postgres_ca_file") }}
{{- fail "config.cluster.redis_ca_file and config.storage.postgres_ca_file are set by the chart: name a Secret with the CA files in cluster.tls (caSecret, redisCaKey, postgresCaKey)" }}
{{- end }}
{{- with .Values.cluster.tls }}
{{- if and (or .caSecret .postgresCaKey .redisCaKey) (not $.Values.cluster.enabled) }}
{{- fail "cluster.tls (CA files for TLS to Redis and PostgreSQL) needs cluster.enabled" }}
{{- end }}
{{- if and .caSecret (not .postgresCaKey) (not .redisCaKey) }}
{{- fail "cluster.tls.caSecret needs cluster.tls.postgresCaKey or cluster.tls.redisCaKey: the key(s) holding the CA files" }}
{{- end }}
{{- if and (or .postgresCaKey .redisCaKey) (not .caSecret) }}
{{- fail "cluster.tls.postgresCaKey and redisCaKey name keys of cluster.tls.caSecret: set it" }}
{{- end }}
{{- if and .redisCaKey (not $.Values.cluster.existingSecret) (not (hasPrefix "rediss://" $.Values.cluster.redisUrl)) }}
{{- fail "cluster.tls.redisCaKey needs a rediss:// cluster.redisUrl: the server takes a Redis CA only for TLS (with redis:// it refuses to start)" }}
{{- end }}
{{- if and .postgresCaKey (not $.Values.cluster.existingSecret) (not (contains "sslmode=require" $.Values.cluster.postgresUrl)) }}
{{- fail "cluster.tls.postgresCaKey needs sslmode=require in cluster.postgresUrl: without it the connection is plain and the CA unused" }}
{{- end }}
{{- end }}
{{- if hasKey .Values.config "backup" }}
{{- fail "config.backup: set backups through backup.* (target, intervalSeconds, retain, s3), which the chart renders as [backup]" }}
{{- end }}
{{- if or (lt (int .Values.backup.retain) 1) (lt (int .Values.backup.intervalSeconds) 0) }}
{{- fail "backup.retain must be at least 1 and backup.intervalSeconds 0 or more" }}
{{- end }}
{{- if and .Values.cluster.enabled (gt (int .Values.backup.intervalSeconds) 0) (not (hasPrefix "s3://" .Values.backup.target)) }}
{{- fail "cluster mode with backup.intervalSeconds needs backup.target = s3://bucket/prefix: a pod's /data is an emptyDir, its backups would go with it" }}
{{- end }}
{{- if and .Values.backup.credentials.existingSecret (or (not .Values.backup.credentials.accessKeyIdKey) (not .Values.backup.credentials.secretAccessKeyKey)) }}
{{- fail "backup.credentials.existingSecret needs accessKeyIdKey and secretAccessKeyKey" }}
{{- end }}
{{- end }}

{{/* "true" when the pods serve WebTransport: never in cluster mode (see values.yaml). */}}
{{- define "pixelparty.webtransportEnabled" -}}
{{- if and (not .Values.cluster.enabled) (ne (toString (dig "webtransport" "enabled" true .Values.config)) "false") }}true{{ else }}false{{ end }}
{{- end }}

{{/*
One TOML value. Helm reads numbers in values files as float64: whole numbers are written
as integers (the server's keys are integers), strings as JSON strings (valid TOML basic
strings), lists element by element.
*/}}
{{- define "pixelparty.tomlValue" -}}
{{- $v := . }}
{{- if kindIs "bool" $v }}{{ $v }}
{{- else if kindIs "string" $v }}{{ toJson $v }}
{{- else if or (kindIs "int" $v) (kindIs "int64" $v) }}{{ printf "%d" $v }}
{{- else if kindIs "float64" $v }}{{ if eq $v (floor $v) }}{{ printf "%d" (int64 $v) }}{{ else }}{{ $v }}{{ end }}
{{- else if kindIs "slice" $v }}[{{ range $i, $e := $v }}{{ if $i }}, {{ end }}{{ include "pixelparty.tomlValue" $e }}{{ end }}]
{{- else }}{{ fail (printf "config: cannot write a %s as TOML (%v)" (kindOf $v) $v) }}
{{- end }}
{{- end }}

{{/*
The server's configuration: .Values.config with the addresses, data directory and
certificate paths that the pod's layout fixes, and [backup] from .Values.backup. Called with
(dict "Values" .Values "node" NAME): in cluster mode NAME is the pod's name, which the
backup target gets as its last part (each pod its own prefix); "" for one node (and for the
checksum that rolls the pods, which the pod names do not change).
*/}}
{{- define "pixelparty.config" -}}
{{- $cfg := deepCopy .Values.config }}
{{- $b := .Values.backup }}
{{- $backup := dict "interval_s" (int $b.intervalSeconds) "retain" (int $b.retain) }}
{{- if $b.target }}
{{- $_ := set $backup "target" (ternary (printf "%s/%s" (trimSuffix "/" $b.target) .node) $b.target (ne .node "")) }}
{{- end }}
{{- if $b.s3.endpoint }}{{ $_ := set $backup "s3_endpoint" $b.s3.endpoint }}{{ end }}
{{- if $b.s3.region }}{{ $_ := set $backup "s3_region" $b.s3.region }}{{ end }}
{{- if $b.s3.allowHttp }}{{ $_ := set $backup "s3_allow_http" true }}{{ end }}
{{- $_ := set $cfg "backup" $backup }}
{{- $server := dict "http" (printf "0.0.0.0:%d" (int .Values.ports.http)) "admin" (printf "0.0.0.0:%d" (int .Values.ports.admin)) "data_dir" "/data" }}
{{- $wt := dict "bind" (printf "0.0.0.0:%d" (int .Values.ports.webtransport)) }}
{{- if .Values.webtransportTLS.secretName }}
{{- $_ := set $wt "cert_file" "/etc/pixelparty/tls/tls.crt" }}
{{- $_ := set $wt "key_file" "/etc/pixelparty/tls/tls.key" }}
{{- end }}
{{- if .Values.cluster.enabled }}
{{- /* Cluster mode: the data in PostgreSQL (the URL from the Secret), WebTransport off. */}}
{{- $_ := set $wt "enabled" false }}
{{- $cfg = mustMergeOverwrite $cfg (dict "storage" (dict "backend" "postgres")) }}
{{- /* TLS: the CA files from cluster.tls.caSecret, mounted at /etc/pixelparty/ca. */}}
{{- with .Values.cluster.tls }}
{{- if .postgresCaKey }}
{{- $cfg = mustMergeOverwrite $cfg (dict "storage" (dict "postgres_ca_file" (printf "/etc/pixelparty/ca/%s" .postgresCaKey))) }}
{{- end }}
{{- if .redisCaKey }}
{{- $cfg = mustMergeOverwrite $cfg (dict "cluster" (dict "redis_ca_file" (printf "/etc/pixelparty/ca/%s" .redisCaKey))) }}
{{- end }}
{{- end }}
{{- end }}
{{- $cfg = mustMergeOverwrite $cfg (dict "server" $server "webtransport" $wt) }}
{{- if not (get $cfg.webtransport "public_url") }}
{{- $_ := unset $cfg.webtransport "public_url" }}
{{- end }}
{{- if hasKey $cfg.server "admin_token" }}
{{- fail "config.server.admin_token: give the admin token through adminToken (a Secret), not the config" }}
{{- end }}
# Rendered by the pixelparty Helm chart from .Values.config and .Values.backup.
{{- range $section, $keys := $cfg }}
{{- if not (kindIs "map" $keys) }}
{{- fail (printf "config.%s must be a table of keys" $section) }}
{{- end }}

[{{ $section }}]
{{- range $k, $v := $keys }}
{{ $k }} = {{ include "pixelparty.tomlValue" $v }}
{{- end }}
{{- end }}
{{- end }}
