{{/*
Names and labels shared by the templates.
*/}}

{{/* The chart's name, or nameOverride. */}}
{{- define "export-service.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name (63 characters at most: some name fields are DNS labels). A release
name that already contains the chart name is used as it is.
*/}}
{{- define "export-service.fullname" -}}
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

{{- define "export-service.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "export-service.labels" -}}
helm.sh/chart: {{ include "export-service.chart" . }}
{{ include "export-service.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: worker
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "export-service.selectorLabels" -}}
app.kubernetes.io/name: {{ include "export-service.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "export-service.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "export-service.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Seconds Kubernetes waits after SIGTERM: the export timeout plus a margin. */}}
{{- define "export-service.terminationGracePeriodSeconds" -}}
{{- add (int (ceil .Values.export.timeoutSeconds)) (int .Values.shutdown.marginSeconds) }}
{{- end }}

{{/*
The ConfigMap's settings: `config` plus what the chart owns. Fails on a credential in `config`
or a name set in both `config` and `secretEnv`.
*/}}
{{- define "export-service.config" -}}
{{- $owned := list "WEB_HOST" "WEB_PORT" "DATA_DIR" "EXPORT_TIMEOUT_SECONDS" "SHUTDOWN_GRACE_SECONDS" }}
{{- range $name, $value := .Values.config }}
{{- if has $name $owned }}
{{- fail (printf "config.%s is set by the chart; use service.port, dataDir or export.timeoutSeconds" $name) }}
{{- end }}
{{- if regexMatch "(SECRET|PASSWORD|TOKEN|ACCESS_KEY|PRIVATE_KEY|^MONGO_URL$|^JWT_PUBLIC_KEY$)" $name }}
{{- fail (printf "config.%s is a credential: reference a Secret in secretEnv instead" $name) }}
{{- end }}
{{- if hasKey $.Values.secretEnv $name }}
{{- fail (printf "%s is in both config and secretEnv" $name) }}
{{- end }}
{{- end }}
{{- /* On SIGTERM the worker lets a running export finish for up to the export timeout; the
pod's grace period (timeout + shutdown.marginSeconds) leaves room to commit and exit. */}}
{{- $settings := dict "WEB_HOST" "0.0.0.0" "WEB_PORT" (toString .Values.service.port) "DATA_DIR" .Values.dataDir "EXPORT_TIMEOUT_SECONDS" (toString .Values.export.timeoutSeconds) "SHUTDOWN_GRACE_SECONDS" (toString .Values.export.timeoutSeconds) }}
{{- range $name, $value := .Values.config }}
{{- if not (kindIs "invalid" $value) }}
{{- $_ := set $settings $name (toString $value) }}
{{- end }}
{{- end }}
{{- toYaml $settings }}
{{- end }}
