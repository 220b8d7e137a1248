{{/* Names, labels and the pieces every workload shares. */}}

{{- define "clusterplex.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "clusterplex.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Selector labels of one component: include with (list $ "worker"). */}}
{{- define "clusterplex.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "clusterplex.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "clusterplex.labels" -}}
{{- $root := index . 0 -}}
{{ include "clusterplex.selectorLabels" . }}
app.kubernetes.io/part-of: clusterplex
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version }}
{{- end -}}

{{- define "clusterplex.image" -}}
{{- $root := index . 0 -}}
{{- printf "%s/%s:%s" $root.Values.image.registry (index . 1) $root.Values.image.tag -}}
{{- end -}}

{{- define "clusterplex.secretName" -}}
{{- default (include "clusterplex.fullname" .) .Values.secret.existingSecret -}}
{{- end -}}

{{- define "clusterplex.dispatcherURL" -}}
{{- printf "http://%s-dispatcher:%v" (include "clusterplex.fullname" .) .Values.dispatcher.service.port -}}
{{- end -}}

{{/*
The env list of a component: every non-empty value of its env map, then
the token from the Secret. include with (list $ .Values.<component>.env).
*/}}
{{- define "clusterplex.env" -}}
{{- $root := index . 0 -}}
{{- range $name, $value := index . 1 }}
{{- if ne (toString $value) "" }}
- name: {{ $name }}
  value: {{ toString $value | quote }}
{{- end }}
{{- end }}
- name: CLUSTERPLEX_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "clusterplex.secretName" $root }}
      key: CLUSTERPLEX_TOKEN
{{- end -}}

{{/* PUID/PGID/TZ of linuxserver.io's images. */}}
{{- define "clusterplex.lsioEnv" -}}
- name: PUID
  value: {{ .Values.puid | quote }}
- name: PGID
  value: {{ .Values.pgid | quote }}
- name: TZ
  value: {{ .Values.timezone | quote }}
{{- end -}}

{{/* Media volumes, shared by PMS and the workers at the same paths. */}}
{{- define "clusterplex.mediaVolumes" -}}
{{- range .Values.pms.media }}
- name: media-{{ .name }}
{{ toYaml .volume | indent 2 }}
{{- end }}
{{- end -}}

{{/*
Media mounts: include with (list $ READONLY). Workers only ever read media
(jobs that write into the library stay on PMS).
*/}}
{{- define "clusterplex.mediaMounts" -}}
{{- $ro := index . 1 -}}
{{- range (index . 0).Values.pms.media }}
- name: media-{{ .name }}
  mountPath: {{ .mountPath }}
  readOnly: {{ $ro }}
{{- end }}
{{- end -}}
