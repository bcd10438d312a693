package loadtest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// CorpusApp is one app of a generated corpus (loadtest/corpus writes
// manifest.json; this package reads only what it needs).
type CorpusApp struct {
	Name          string `json:"name"`
	Ecosystem     string `json:"ecosystem"`
	Dir           string `json:"dir"`
	Packages      int    `json:"packages"`
	Secret        bool   `json:"secret"`
	Vuln          string `json:"vuln"`
	Expected      string `json:"expected"`
	ExpectedStage string `json:"expected_stage"`
}

// LoadManifest reads a corpus's manifest.json: its seed and apps.
func LoadManifest(root string) (int64, []CorpusApp, error) {
	raw, err := os.ReadFile(filepath.Join(root, "manifest.json"))
	if err != nil {
		return 0, nil, fmt.Errorf("read corpus manifest: %w", err)
	}
	var m struct {
		Seed int64       `json:"seed"`
		Apps []CorpusApp `json:"apps"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return 0, nil, fmt.Errorf("decode corpus manifest in %s: %w", root, err)
	}
	if len(m.Apps) == 0 {
		return 0, nil, fmt.Errorf("corpus manifest in %s lists no apps", root)
	}
	return m.Seed, m.Apps, nil
}

// corpusInfo summarises the corpus for the report.
func corpusInfo(seed int64, apps []CorpusApp) CorpusInfo {
	info := CorpusInfo{Seed: seed, Apps: len(apps), Kinds: map[string]int{}}
	counts := make([]int, 0, len(apps))
	var sum int
	for _, a := range apps {
		info.Kinds[a.Ecosystem]++
		info.Kinds["expected "+a.Expected]++
		if a.Secret {
			info.Kinds["secret"]++
		}
		if a.Vuln != "" {
			info.Kinds["vulnerable "+a.Vuln]++
		}
		counts = append(counts, a.Packages)
		sum += a.Packages
	}
	slices.Sort(counts)
	at := func(q float64) float64 { return float64(counts[min(len(counts)-1, int(q*float64(len(counts))))]) }
	info.Packages = Latencies{Count: int64(len(counts)), P50: at(0.5), P90: at(0.9), P99: at(0.99), Max: float64(counts[len(counts)-1]), Mean: float64(sum) / float64(len(counts))}
	return info
}
