// Package deploy holds tollgate's deployment material: the container image
// (Dockerfile), Kubernetes manifests (k8s/, kustomize, with KEDA autoscaling
// in k8s/keda), an OpenTelemetry Collector config (otel/) and a Grafana
// dashboard (grafana/). It has no Go code; its test checks those files.
package deploy
