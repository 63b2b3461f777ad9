{{/*
Names, labels and the pieces several templates share: the operator's identity, the namespaces
it watches and the RBAC rules it needs (derived from every API call of meterflow_operator and
kopf; the list is explained in docs/kubernetes.md, "RBAC").
*/}}

{{- define "meterflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "meterflow.fullname" -}}
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

{{- define "meterflow.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "meterflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "meterflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "meterflow.labels" -}}
helm.sh/chart: {{ include "meterflow.chart" . }}
{{ include "meterflow.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: meterflow
{{- end }}

{{- define "meterflow.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (printf "%s-operator" (include "meterflow.fullname" .)) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "meterflow.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Combinations of values the schema cannot refuse by itself. */}}
{{- define "meterflow.validate" -}}
{{- if and .Values.watch.clusterWide .Values.watch.namespaces }}
{{- fail "watch.namespaces and watch.clusterWide exclude each other: clusterWide watches every namespace" }}
{{- end }}
{{- end }}

{{/* The namespaces the operator watches, one per line (namespace scope only). */}}
{{- define "meterflow.watchNamespaces" -}}
{{- $namespaces := .Values.watch.namespaces | default (list .Release.Namespace) }}
{{- range $namespaces | uniq }}
{{ . }}
{{- end }}
{{- end }}

{{/* The namespaces that get the Flink job ServiceAccount. */}}
{{- define "meterflow.flinkNamespaces" -}}
{{- $namespaces := list }}
{{- if .Values.flinkServiceAccount.namespaces }}
{{- $namespaces = .Values.flinkServiceAccount.namespaces }}
{{- else if .Values.watch.clusterWide }}
{{- $namespaces = list .Release.Namespace }}
{{- else }}
{{- $namespaces = .Values.watch.namespaces | default (list .Release.Namespace) }}
{{- end }}
{{- range $namespaces | uniq }}
{{ . }}
{{- end }}
{{- end }}

{{/*
The operator's rules, per watched namespace (or cluster-wide). Each verb is one the code uses:
  meterpipelines           get (reconcile reads the object fresh), list+watch (kopf's watch),
                           patch (kopf: finalizer and its annotations; the operator: run-batch annotation)
  meterpipelines/status    patch (the operator's resourceVersion-guarded status merge patch)
  meterpipelines/finalizers update (children's ownerReferences set blockOwnerDeletion, which the
                           OwnerReferencesPermissionEnforcement admission plugin checks this way)
  kafkatopics              list (by label), create+patch (server-side apply creates or updates;
                           Retain releases the ownerReference with a JSON patch), delete (Delete policy)
  flinkdeployments         get (the streaming job), list (batch runs by label), create+patch (apply), delete (pruning, Delete policy)
  configmaps               get, list, create+patch (apply), delete (Delete policy)
  secrets                  get (only the sinks' secretRefs, by name: schema.read_secret)
  events                   create (kopf posts core/v1 Events; it never patches them)
*/}}
{{- define "meterflow.operatorRules" -}}
- apiGroups: [meterflow.io]
  resources: [meterpipelines]
  verbs: [get, list, watch, patch]
- apiGroups: [meterflow.io]
  resources: [meterpipelines/status]
  verbs: [patch]
- apiGroups: [meterflow.io]
  resources: [meterpipelines/finalizers]
  verbs: [update]
- apiGroups: [kafka.strimzi.io]
  resources: [kafkatopics]
  verbs: [list, create, patch, delete]
- apiGroups: [flink.apache.org]
  resources: [flinkdeployments]
  verbs: [get, list, create, patch, delete]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, create, patch, delete]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
  {{- with .Values.rbac.secretNames }}
  resourceNames:
    {{- toYaml . | nindent 4 }}
  {{- end }}
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, create, patch, delete]
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get, list, create, patch, delete]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end }}

{{/*
The operator's default MQTT broker URL: settings.mqttUrl, else the chart's Mosquitto Service.
*/}}
{{- define "meterflow.mqttUrl" -}}
{{- if .Values.settings.mqttUrl -}}
{{ .Values.settings.mqttUrl }}
{{- else if .Values.mosquitto.enabled -}}
mqtt://{{ include "meterflow.fullname" . }}-mosquitto.{{ .Release.Namespace }}.svc:1883
{{- end -}}
{{- end }}

{{/*
mosquitto.conf of the chart's Mosquitto (templates/mosquitto.yaml).
*/}}
{{- define "meterflow.mosquittoConf" -}}
listener 1883
allow_anonymous true
persistence true
persistence_location /mosquitto/data/
autosave_interval {{ int .Values.mosquitto.autosaveInterval }}
max_queued_messages 0
max_queued_bytes {{ int64 .Values.mosquitto.maxQueuedBytes }}
max_inflight_messages 1000
persistent_client_expiration 14d
log_dest stdout
log_type error
log_type warning
log_type notice
log_type information
{{- end }}
