{{/* go-licenses report --template: one row per library (a tree of packages under one licence file), tab-separated: name, module version, licence (SPDX id or Unknown), licence file. scripts/notice.sh reads it. */ -}}
{{range .}}{{.Name}}	{{.Version}}	{{.LicenseName}}	{{.LicensePath}}
{{end}}
