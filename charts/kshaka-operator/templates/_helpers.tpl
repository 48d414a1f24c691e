{{/* Chart name, truncated for label values. */}}
{{- define "kshaka-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name. */}}
{{- define "kshaka-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "kshaka-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "kshaka-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "kshaka-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kshaka-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
control-plane: controller-manager
{{- end }}

{{- define "kshaka-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kshaka-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Whether to render the Prometheus operator's objects: monitoring.enabled true,
or "auto" (the default) and the cluster serves monitoring.coreos.com/v1.
Prints "true" or nothing.
*/}}
{{- define "kshaka-operator.monitoring" -}}
{{- $m := toString .Values.monitoring.enabled -}}
{{- if or (eq $m "true") (and (eq $m "auto") (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/PodMonitor")) -}}
true
{{- end -}}
{{- end }}

{{/* Labels of the monitoring objects: the chart's and monitoring.labels. */}}
{{- define "kshaka-operator.monitoringLabels" -}}
{{ include "kshaka-operator.labels" . }}
{{- with .Values.monitoring.labels }}
{{ toYaml . }}
{{- end }}
{{- end }}
