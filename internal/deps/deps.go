// Package deps pins the scanner and infrastructure libraries while the module is assembled.
package deps

import (
	_ "github.com/anchore/syft/syft"
	_ "github.com/aquasecurity/trivy-db/pkg/db"
	_ "github.com/aquasecurity/trivy/pkg/scan"
	_ "github.com/aquasecurity/trivy/pkg/fanal/artifact/local"
	_ "github.com/minio/minio-go/v7"
	_ "github.com/nats-io/nats-server/v2/server"
	_ "github.com/nats-io/nats.go/jetstream"
	_ "github.com/open-policy-agent/opa/v1/rego"
	_ "github.com/zricethezav/gitleaks/v8/detect"
	_ "go.opentelemetry.io/otel"
	_ "go.temporal.io/sdk/client"
	_ "go.temporal.io/sdk/testsuite"
)
