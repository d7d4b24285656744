{{/* Chart name, truncated to the 63 characters DNS labels allow. */}}
{{- define "fedsynth.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: release-chart unless the release name already holds the chart name. */}}
{{- define "fedsynth.fullname" -}}
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

{{- define "fedsynth.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "fedsynth.labels" -}}
helm.sh/chart: {{ include "fedsynth.chart" . }}
{{ include "fedsynth.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: fedsynth
{{- end }}

{{- define "fedsynth.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fedsynth.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Names and labels of the two roles. */}}
{{- define "fedsynth.coordinator.fullname" -}}
{{- printf "%s-coordinator" (include "fedsynth.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- define "fedsynth.agent.fullname" -}}
{{- printf "%s-agent-%s" (include "fedsynth.fullname" .) .Values.agent.siteId | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- define "fedsynth.coordinator.selectorLabels" -}}
{{ include "fedsynth.selectorLabels" . }}
app.kubernetes.io/component: coordinator
{{- end }}
{{- define "fedsynth.agent.selectorLabels" -}}
{{ include "fedsynth.selectorLabels" . }}
app.kubernetes.io/component: agent
fedsynth.io/site: {{ .Values.agent.siteId | quote }}
{{- end }}

{{- define "fedsynth.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The schema path inside the container. */}}
{{- define "fedsynth.schemaPath" -}}
{{- if .Values.schema.inline -}}
/etc/fedsynth/schema/schema.yaml
{{- else -}}
{{- .Values.schema.path -}}
{{- end -}}
{{- end }}

{{/* host:port the agent dials: agent.coordinator, or this release's coordinator Service. */}}
{{- define "fedsynth.coordinatorAddress" -}}
{{- if .Values.agent.coordinator -}}
{{- .Values.agent.coordinator -}}
{{- else -}}
{{- printf "%s.%s.svc:%d" (include "fedsynth.coordinator.fullname" .) .Release.Namespace (int .Values.coordinator.port) -}}
{{- end -}}
{{- end }}

{{/* The port the agent dials, for its NetworkPolicy. */}}
{{- define "fedsynth.coordinatorPort" -}}
{{- $addr := include "fedsynth.coordinatorAddress" . -}}
{{- $parts := splitList ":" $addr -}}
{{- last $parts | int -}}
{{- end }}

{{- define "fedsynth.coordinator.kitSecret" -}}
{{- default (printf "%s-kit" (include "fedsynth.coordinator.fullname" .)) .Values.coordinator.kit.existingSecret }}
{{- end }}
{{- define "fedsynth.agent.kitSecret" -}}
{{- default (printf "%s-kit" (include "fedsynth.agent.fullname" .)) .Values.agent.kit.existingSecret }}
{{- end }}

{{/* coordinator.yaml. With PostgreSQL, storage is replaced at start by the init container. */}}
{{/* The http section of coordinator.yaml (fedsynth serve): the API and web page. */}}
{{- define "fedsynth.coordinatorHttp" -}}
listen: {{ printf "0.0.0.0:%d" (int .Values.coordinator.http.port) | quote }}
cohorts: /var/lib/fedsynth/cohorts
{{- with .Values.coordinator.http.publicUrl }}
publicUrl: {{ . | quote }}
{{- end }}
{{- end }}

{{- define "fedsynth.coordinatorConfig" -}}
{{- $c := .Values.coordinator.config -}}
{{- $fit := merge (dict "out" "/var/lib/fedsynth/out") (deepCopy $c.fit) -}}
{{- $cfg := dict
  "federationId" $c.federationId
  "schema" (include "fedsynth.schemaPath" .)
  "listen" (printf "0.0.0.0:%d" (int .Values.coordinator.port))
  "kit" "/etc/fedsynth/kit"
  "storage" (dict "pglite" "/var/lib/fedsynth/pglite")
  "sites" $c.sites
  "committee" $c.committee
  "rounds" $c.rounds
  "fit" $fit
  "http" (include "fedsynth.coordinatorHttp" . | fromYaml)
  "metrics" (dict "listen" (printf "0.0.0.0:%d" (int .Values.coordinator.metrics.port))) -}}
{{- if .Values.revocation.crl }}
{{- $_ := set $cfg "revocationList" "/etc/fedsynth/revocation/revoked.crl.pem" }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/* site.yaml. With fhirRest, the bearer token is added at start by the init container. */}}
{{- define "fedsynth.agentConfig" -}}
{{- $a := .Values.agent -}}
{{- $data := dict -}}
{{- if $a.data.fhirRest.baseUrl -}}
{{- $rest := dict "baseUrl" $a.data.fhirRest.baseUrl -}}
{{- if $a.data.fhirRest.pageSize -}}
{{- $_ := set $rest "pageSize" (int $a.data.fhirRest.pageSize) -}}
{{- end -}}
{{- $_ := set $data "fhirRest" $rest -}}
{{- else -}}
{{- $_ := set $data "fhirNdjson" "/srv/fhir" -}}
{{- end -}}
{{- $cfg := dict
  "siteId" $a.siteId
  "federationId" $a.federationId
  "coordinator" (include "fedsynth.coordinatorAddress" .)
  "kit" "/etc/fedsynth/kit"
  "schema" (include "fedsynth.schemaPath" .)
  "data" $data
  "state" "/var/lib/fedsynth"
  "policy" $a.policy -}}
{{- if $a.metrics.enabled }}
{{- $_ := set $cfg "metrics" (dict "listen" (printf "0.0.0.0:%d" (int $a.metrics.port))) }}
{{- end }}
{{- if .Values.revocation.crl }}
{{- $_ := set $cfg "revocationList" "/etc/fedsynth/revocation/revoked.crl.pem" }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/* Fails the render on an unusable agent configuration. */}}
{{- define "fedsynth.agent.validate" -}}
{{- if not .Values.agent.siteId }}
{{- fail "agent.siteId is required (the CN of the site's kit certificate)" }}
{{- end }}
{{- if not (regexMatch "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$" .Values.agent.siteId) }}
{{- fail "agent.siteId must be a-z, 0-9 and '-', up to 63 characters" }}
{{- end }}
{{- $ndjson := .Values.agent.data.fhirNdjson.existingClaim -}}
{{- $rest := .Values.agent.data.fhirRest.baseUrl -}}
{{- if or (and $ndjson $rest) (and (not $ndjson) (not $rest)) }}
{{- fail "agent.data needs exactly one of fhirNdjson.existingClaim or fhirRest.baseUrl" }}
{{- end }}
{{- if and (not .Values.agent.kit.existingSecret) (not .Values.agent.kit.key) }}
{{- fail "agent.kit: set existingSecret, or ca/cert/key (--set-file)" }}
{{- end }}
{{- end }}
