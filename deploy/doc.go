// Package deploy holds tollgate's deployment material: the container image
// (Dockerfile), Kubernetes manifests (k8s/, kustomize, with KEDA autoscaling
// in k8s/keda and the production overlay in k8s/production), the production
// layout of the servers tollgate runs on (helm/: Temporal on PostgreSQL, NATS
// JetStream R3 and distributed MinIO, each from its own project's Helm chart,
// pinned, with values only), an OpenTelemetry Collector config (otel/) and a
// Grafana dashboard (grafana/). It has no Go code; its tests check those
// files.
package deploy
