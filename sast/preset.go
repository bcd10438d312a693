package sast

import (
	"fmt"
	"io/fs"
	"path"
	"strings"

	"sigs.k8s.io/yaml"
)

// presetSpec is a named list of source queries shared by taint rules
// (`- preset: request` in taint.sources), embedded from presets/<name>.yaml.
// Each query captures @source and names its languages.
type presetSpec struct {
	Description string      `json:"description"`
	Queries     []querySpec `json:"queries"`
}

// loadPresets reads the embedded presets.
func loadPresets(fsys fs.FS) (map[string][]querySpec, error) {
	files, err := fs.Glob(fsys, "presets/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("list presets: %w", err)
	}
	presets := map[string][]querySpec{}
	for _, f := range files {
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, fmt.Errorf("read preset %q: %w", f, err)
		}
		var p presetSpec
		if err := yaml.UnmarshalStrict(data, &p); err != nil {
			return nil, fmt.Errorf("preset %q: %w", f, err)
		}
		for i, q := range p.Queries {
			if q.Preset != "" || len(q.Languages) == 0 || strings.TrimSpace(q.Query) == "" {
				return nil, fmt.Errorf("preset %q: queries[%d]: want a query and its languages", f, i)
			}
		}
		presets[strings.TrimSuffix(path.Base(f), ".yaml")] = p.Queries
	}
	return presets, nil
}
