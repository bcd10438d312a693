package health

// Queries are the PromQL expressions the guard pulls samples with,
// one per signal; Requests and Errors count over the last sample interval,
// the percentiles are in seconds. Empty expressions are not pulled.
type Queries struct {
	Requests string `json:"requests,omitempty" yaml:"requests,omitempty"`
	Errors   string `json:"errors,omitempty" yaml:"errors,omitempty"`
	P50      string `json:"p50,omitempty" yaml:"p50,omitempty"`
	P95      string `json:"p95,omitempty" yaml:"p95,omitempty"`
	P99      string `json:"p99,omitempty" yaml:"p99,omitempty"`
}

// IsZero reports whether nothing is to be pulled.
func (q Queries) IsZero() bool { return q == Queries{} }
