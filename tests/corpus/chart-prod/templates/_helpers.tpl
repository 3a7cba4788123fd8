{{- define "greeter.name" -}}
{{ .Release.Name }}-greeter
{{- end -}}
