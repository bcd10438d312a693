package deploy_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/opencontainers/go-digest"
)

// offline answers BuildKit's base-image lookups with an empty linux/amd64
// config: the lint reads the Dockerfile, never a registry.
type offline struct{}

func (offline) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	return ref, digest.FromString(ref), []byte(`{"architecture":"amd64","os":"linux","config":{}}`), nil
}

// lintDockerfile runs BuildKit's Dockerfile checks, what `docker build
// --check` runs (instruction casing, JSON-form CMD and ENTRYPOINT, stage
// names, legacy ENV syntax, undefined variables, secrets in ARG or ENV,
// MAINTAINER, empty continuations...), and returns one line per finding.
func lintDockerfile(t *testing.T, src []byte) []string {
	t.Helper()
	sm := llb.NewSourceMap(nil, "Dockerfile", "Dockerfile", src)
	sm.Definition = &llb.Definition{}
	res, err := dockerfile2llb.DockerfileLint(context.Background(), src, dockerfile2llb.ConvertOpt{MetaResolver: offline{}, SourceMap: sm})
	if err != nil {
		t.Fatalf("lint Dockerfile: %v", err)
	}
	var found []string
	for _, w := range res.Warnings {
		line := int32(0)
		if w.Location != nil && len(w.Location.Ranges) > 0 {
			line = w.Location.Ranges[0].Start.Line
		}
		found = append(found, fmt.Sprintf("line %d: %s: %s", line, w.RuleName, w.Detail))
	}
	if res.Error != nil {
		found = append(found, "error: "+res.Error.Message)
	}
	return found
}

// The image's Dockerfile passes BuildKit's checks with none skipped.
func TestDockerfileLint(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile(filepath.Join("Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range lintDockerfile(t, src) {
		t.Errorf("deploy/Dockerfile %s", f)
	}
}

// The lint has teeth.
func TestDockerfileLintFinds(t *testing.T) {
	t.Parallel()
	bad := "FROM golang:1.26 as Build\nmaintainer someone\nENV A b\nRUN echo \\\n\n  hi\nCOPY $UNSET /x\nCMD /app --serve\n"
	found := lintDockerfile(t, []byte(bad))
	for _, rule := range []string{"ConsistentInstructionCasing", "FromAsCasing", "StageNameCasing", "MaintainerDeprecated", "LegacyKeyValueFormat", "JSONArgsRecommended", "NoEmptyContinuation", "UndefinedVar"} {
		if !slices.ContainsFunc(found, func(f string) bool { return bytes.Contains([]byte(f), []byte(rule)) }) {
			t.Errorf("no %s in %q", rule, found)
		}
	}
}
