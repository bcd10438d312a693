package workflows

import "go.temporal.io/sdk/temporal"

// Search attributes (type Keyword) the API sets when it starts a scan, so
// that Temporal's visibility store answers "this tenant's scans" by itself
// (GET /v1/scans). They must be registered in the namespace: the dev server
// stack starts registers them (stack.TemporalSearchAttributes); a cluster
// needs `temporal operator search-attribute create` once (README).
var (
	SearchTenant = temporal.NewSearchAttributeKeyKeyword("TollgateTenant")
	SearchApp    = temporal.NewSearchAttributeKeyKeyword("TollgateApp")
)
