package vulndb

import (
	"reflect"
	"testing"
)

func TestConstraints(t *testing.T) {
	t.Parallel()
	ev := func(kind, v string) osvEvent {
		switch kind {
		case "introduced":
			return osvEvent{Introduced: v}
		case "fixed":
			return osvEvent{Fixed: v}
		case "last_affected":
			return osvEvent{LastAffected: v}
		}
		return osvEvent{} // e.g. "limit", which the import does not read
	}
	rng := func(typ string, events ...osvEvent) osvRange { return osvRange{Type: typ, Events: events} }

	tests := []struct {
		name      string
		ecosystem string
		affected  osvAffected
		want      []string
		wantNotes int
	}{
		{
			name:      "introduced 0 and fixed",
			ecosystem: "npm",
			affected:  osvAffected{Ranges: []osvRange{rng("SEMVER", ev("introduced", "0"), ev("fixed", "1.2.3"))}},
			want:      []string{"<1.2.3"},
		},
		{
			name:      "introduced and fixed",
			ecosystem: "npm",
			affected:  osvAffected{Ranges: []osvRange{rng("ECOSYSTEM", ev("introduced", "1.0.0"), ev("fixed", "1.2.3"))}},
			want:      []string{">=1.0.0, <1.2.3"},
		},
		{
			name:      "last_affected",
			ecosystem: "npm",
			affected:  osvAffected{Ranges: []osvRange{rng("SEMVER", ev("introduced", "0"), ev("last_affected", "1.5.1"))}},
			want:      []string{"<=1.5.1"},
		},
		{
			name:      "introduced and last_affected",
			ecosystem: "PyPI",
			affected:  osvAffected{Ranges: []osvRange{rng("ECOSYSTEM", ev("introduced", "1.0"), ev("last_affected", "1.5"))}},
			want:      []string{">=1.0, <=1.5"},
		},
		{
			name:      "single version",
			ecosystem: "npm",
			affected:  osvAffected{Ranges: []osvRange{rng("SEMVER", ev("introduced", "2.0.0"), ev("last_affected", "2.0.0"))}},
			want:      []string{"=2.0.0"},
		},
		{
			name:      "no fix",
			ecosystem: "npm",
			affected:  osvAffected{Ranges: []osvRange{rng("SEMVER", ev("introduced", "1.0.0"))}},
			want:      []string{">=1.0.0"},
		},
		{
			name:      "every version",
			ecosystem: "Go",
			affected:  osvAffected{Ranges: []osvRange{rng("SEMVER", ev("introduced", "0"))}, Versions: []string{"v0.0.0-20200101000000-abcdefabcdef"}},
			want:      []string{allVersions},
		},
		{
			name:      "pairs in one range are alternatives",
			ecosystem: "Go",
			affected: osvAffected{Ranges: []osvRange{rng("SEMVER",
				ev("introduced", "0"), ev("fixed", "1.15.12"), ev("introduced", "1.16.0-0"), ev("fixed", "1.16.4"))}},
			want: []string{"<1.15.12", ">=1.16.0-0, <1.16.4"},
		},
		{
			name:      "introduced twice keeps the first open",
			ecosystem: "Maven",
			affected:  osvAffected{Ranges: []osvRange{rng("ECOSYSTEM", ev("introduced", "1.0"), ev("introduced", "2.0"), ev("fixed", "2.5"))}},
			want:      []string{">=1.0", ">=2.0, <2.5"},
		},
		{
			name:      "fixed without introduced",
			ecosystem: "npm",
			affected:  osvAffected{Ranges: []osvRange{rng("ECOSYSTEM", ev("fixed", "1.0.0"))}},
			want:      []string{"<1.0.0"},
		},
		{
			name:      "limit and empty events ignored",
			ecosystem: "npm",
			affected:  osvAffected{Ranges: []osvRange{rng("ECOSYSTEM", ev("introduced", "1.0.0"), ev("limit", "9"), ev("fixed", "1.1.0"))}},
			want:      []string{">=1.0.0, <1.1.0"},
		},
		{
			name:      "go v prefix dropped",
			ecosystem: "Go",
			affected:  osvAffected{Ranges: []osvRange{rng("SEMVER", ev("introduced", "v1.0.0"), ev("fixed", "v1.2.3"))}, Versions: []string{"v0.9.0"}},
			want:      []string{">=1.0.0, <1.2.3", "=0.9.0"},
		},
		{
			name:      "git range ignored, versions kept",
			ecosystem: "PyPI",
			affected: osvAffected{
				Ranges:   []osvRange{rng("GIT", ev("introduced", "0"), ev("fixed", "960cb060ce5e2964e6d716ff787c72fc18a371e7"))},
				Versions: []string{"1.0", "1.1"},
			},
			want: []string{"=1.0", "=1.1"},
		},
		{
			name:      "versions covered by ranges left out",
			ecosystem: "PyPI",
			affected: osvAffected{
				Ranges:   []osvRange{rng("ECOSYSTEM", ev("introduced", "0"), ev("fixed", "2.0"))},
				Versions: []string{"1.0", "1.9rc1", "2.1", "2.1"},
			},
			want: []string{"<2.0", "=2.1"},
		},
		{
			name:      "duplicate ranges merged",
			ecosystem: "npm",
			affected: osvAffected{Ranges: []osvRange{
				rng("ECOSYSTEM", ev("introduced", "0"), ev("fixed", "1.0.0")),
				rng("SEMVER", ev("introduced", "0"), ev("fixed", "1.0.0")),
			}},
			want: []string{"<1.0.0"},
		},
		{
			name:      "constraint syntax in a fixed version drops the range",
			ecosystem: "npm",
			affected: osvAffected{Ranges: []osvRange{
				rng("ECOSYSTEM", ev("introduced", "1.0.0"), ev("fixed", "1.1.0 || >=0")),
				rng("ECOSYSTEM", ev("introduced", "2.0.0"), ev("fixed", "2.1.0")),
			}},
			want:      []string{">=2.0.0, <2.1.0"},
			wantNotes: 1,
		},
		{
			name:      "bad introduced drops its bound too",
			ecosystem: "npm",
			affected:  osvAffected{Ranges: []osvRange{rng("ECOSYSTEM", ev("introduced", ">=0"), ev("fixed", "1.1.0"), ev("introduced", "2.0.0"))}},
			want:      []string{">=2.0.0"},
			wantNotes: 1,
		},
		{
			name:      "constraint syntax in versions dropped",
			ecosystem: "Maven",
			affected:  osvAffected{Versions: []string{"1.0,2.0", "[1.0]", "1.5"}},
			want:      []string{"=1.5"},
			wantNotes: 2,
		},
		{
			name:      "version the ecosystem cannot parse dropped",
			ecosystem: "PyPI",
			affected: osvAffected{
				Ranges:   []osvRange{rng("ECOSYSTEM", ev("introduced", "0"), ev("fixed", "0.2.0-n653"))},
				Versions: []string{"0.1", "trunk"},
			},
			want:      []string{"=0.1"},
			wantNotes: 2,
		},
		{
			name:      "nothing usable",
			ecosystem: "npm",
			affected:  osvAffected{},
			want:      nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			eco, ok := ecosystemFor(tt.ecosystem)
			if !ok {
				t.Fatalf("ecosystem %q not supported", tt.ecosystem)
			}
			got, notes := eco.constraints(tt.affected)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("constraints = %q, want %q", got, tt.want)
			}
			if len(notes) != tt.wantNotes {
				t.Errorf("notes = %v, want %d", notes, tt.wantNotes)
			}
		})
	}
}

// TestConstraintSyntax checks that every shape interval.constraint produces parses
// with each ecosystem's comparer, and means what it says.
func TestConstraintSyntax(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ecosystem      string
		constraint     string
		match, nomatch []string
	}{
		{"npm", ">=1.0.0, <1.2.3 || =2.0.0", []string{"1.0.0", "1.2.2", "2.0.0"}, []string{"0.9.9", "1.2.3", "2.0.1"}},
		{"PyPI", ">=1.0, <=1.5 || =2.1", []string{"1.0", "1.5", "2.1.0"}, []string{"0.9", "1.5.1", "2.2"}},
		{"Go", "<1.15.12 || >=1.16.0-0, <1.16.4", []string{"v1.15.11", "1.15.11", "v1.16.0-rc1", "v1.16.3"}, []string{"v1.15.12", "v1.16.4"}},
		{"Maven", ">=2.0-beta9, <2.3.1 || <=1.2.1.2-jre17", []string{"2.0-beta9", "2.3", "1.2.1.2-jre17"}, []string{"2.0-beta8", "2.3.1"}},
	}
	for _, tt := range tests {
		eco, _ := ecosystemFor(tt.ecosystem)
		m, err := eco.compile(tt.constraint)
		if err != nil {
			t.Errorf("%s %q: %v", tt.ecosystem, tt.constraint, err)
			continue
		}
		for _, v := range tt.match {
			if ok, err := m(v); !ok || err != nil {
				t.Errorf("%s %q does not match %s (%v)", tt.ecosystem, tt.constraint, v, err)
			}
		}
		for _, v := range tt.nomatch {
			if ok, err := m(v); ok || err != nil {
				t.Errorf("%s %q matches %s (%v)", tt.ecosystem, tt.constraint, v, err)
			}
		}
	}
}
