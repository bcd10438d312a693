package notice

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/testbin"
)

// platforms are the release's targets (scripts/release.sh).
var platforms = []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64"}

// linkedModules lists the modules cmd/tollgate links on every release
// platform, as module@version (the replacement, where go.mod replaces one),
// with cgo on as the release builds (the SAST engine's parsers are C).
func linkedModules(t *testing.T) []string {
	t.Helper()
	var mods []string
	for _, p := range platforms {
		goos, goarch, _ := strings.Cut(p, "/")
		cmd := exec.CommandContext(context.Background(), "go", "list", "-deps", "-tags", testbin.Tags,
			"-f", `{{with .Module}}{{if not .Main}}{{with .Replace}}{{.Path}}@{{.Version}}{{else}}{{.Path}}@{{.Version}}{{end}}{{end}}{{end}}`,
			"github.com/tollgate/tollgate/cmd/tollgate")
		cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list the packages cmd/tollgate links on %s: %v\n%s", p, err, stderr.String())
		}
		for _, m := range strings.Fields(string(out)) {
			if !slices.Contains(mods, m) {
				mods = append(mods, m)
			}
		}
	}
	slices.Sort(mods)
	return mods
}

// TestNoticeNamesEveryLinkedModuleUnderAnAllowedLicence is `make
// notice-check`: the committed NOTICE names exactly the modules cmd/tollgate
// links on the release platforms, each licence on the allow list (or an
// exception), each licence text as the module cache holds it, and the MinIO
// server is not linked (only its Apache-2.0 client is).
func TestNoticeNamesEveryLinkedModuleUnderAnAllowedLicence(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list for four platforms")
	}
	f, err := os.Open("../../NOTICE")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	libs, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	linked := linkedModules(t)
	for _, m := range linked {
		if path, _, _ := strings.Cut(m, "@"); path == "github.com/minio/minio" {
			t.Errorf("cmd/tollgate links the MinIO server (%s, AGPL-3.0): it must stay a separate process", m)
		}
	}
	if err := CheckModules(libs, linked); err != nil {
		t.Error(err)
	}
	if err := CheckLicenses(libs); err != nil {
		t.Error(err)
	}
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	modCache := strings.TrimSpace(string(out))
	for _, l := range libs {
		if l.File == "" {
			continue
		}
		text, err := os.ReadFile(modCachePath(modCache, l.Module, l.Version, l.File))
		if err != nil {
			t.Errorf("%s: %v", l.Name, err)
			continue
		}
		if strings.TrimRight(string(text), "\n\t ") != l.Text {
			t.Errorf("%s: NOTICE's licence text differs from %s in %s (run make notice)", l.Name, l.File, l.ModVersion())
		}
	}
}

func TestWriteThenParseKeepsEachLibraryAndText(t *testing.T) {
	mit := "MIT License\n\nCopyright (c) A\n"
	libs := []Library{
		{Name: "example.com/a", Module: "example.com/a", Version: "v1.0.0", License: "MIT", File: "LICENSE", Text: mit},
		{Name: "example.com/a/sub", Module: "example.com/a", Version: "v1.0.0", License: "MIT", File: "sub/LICENSE", Text: mit},
		{Name: "example.com/b", Module: "example.com/b", Version: "v0.2.0", License: "NOASSERTION"},
	}
	var buf bytes.Buffer
	if err := Write(&buf, libs, "go-licenses test"); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "Copyright (c) A"); n != 1 {
		t.Errorf("the shared MIT text appears %d times, want once", n)
	}
	got, err := Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for i := range libs {
		libs[i].Text = strings.TrimRight(libs[i].Text, "\n")
	}
	if !slices.Equal(got, libs) {
		t.Errorf("Parse(Write(libs)) = %+v\nwant %+v", got, libs)
	}
}

func TestCheckLicensesRefusesCopyleftAndUnknown(t *testing.T) {
	libs := []Library{
		{Name: "example.com/ok", Module: "example.com/ok", Version: "v1.0.0", License: "Apache-2.0"},
		{Name: "example.com/gpl", Module: "example.com/gpl", Version: "v1.0.0", License: "GPL-3.0"},
		{Name: "example.com/none", Module: "example.com/none", Version: "v1.0.0", License: Unknown},
	}
	err := CheckLicenses(libs)
	if err == nil {
		t.Fatal("CheckLicenses accepted GPL-3.0 and Unknown")
	}
	for _, want := range []string{"example.com/gpl", "example.com/none"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "example.com/ok") {
		t.Errorf("error %q names the Apache-2.0 library", err)
	}
}

func TestCheckModulesNamesMissingAndExtra(t *testing.T) {
	libs := []Library{{Name: "example.com/a", Module: "example.com/a", Version: "v1.0.0"}}
	if err := CheckModules(libs, []string{"example.com/a@v1.0.0"}); err != nil {
		t.Errorf("same modules: %v", err)
	}
	err := CheckModules(libs, []string{"example.com/a@v1.1.0"})
	if err == nil || !strings.Contains(err.Error(), "example.com/a@v1.1.0") || !strings.Contains(err.Error(), "example.com/a@v1.0.0") {
		t.Errorf("bumped module: got %v, want both versions named", err)
	}
}

func TestOverrideHoldsOnlyWhileTheLicenceSaysWhatWasRead(t *testing.T) {
	l := Library{Name: "github.com/xi2/xz", Module: "github.com/xi2/xz", Version: "v0.0.1", License: Unknown, File: "LICENSE",
		Text: "All the files in this package have been written by Michael Cross,\n    Lasse Collin and/or Igor PavLov. All these files have been put\n    into the public domain. You can do whatever you want with these\n    files."}
	got, err := applyOverride(l)
	if err != nil || got.License != "LicenseRef-public-domain" {
		t.Errorf("applyOverride = %q, %v; want LicenseRef-public-domain", got.License, err)
	}
	l.Text = "Copyright (c) someone; all rights reserved."
	if _, err := applyOverride(l); err == nil {
		t.Error("applyOverride accepted a licence text that no longer says what the override read")
	}
}

func TestSplitModCachePathUnescapes(t *testing.T) {
	mod, ver, file, err := splitModCachePath("/m", "/m/github.com/!azure/azure-sdk-for-go/sdk/azcore@v1.21.1/sdk/azcore/LICENSE.txt")
	if err != nil || mod != "github.com/Azure/azure-sdk-for-go/sdk/azcore" || ver != "v1.21.1" || file != "sdk/azcore/LICENSE.txt" {
		t.Errorf("splitModCachePath = %q %q %q %v", mod, ver, file, err)
	}
}

func TestReadRowsTakesARowWithoutLicenceFileFromItsOverride(t *testing.T) {
	rows := "github.com/nexus-rpc/nexus-proto-annotations/go/nexusannotations/v1\tv0.1.0\tUnknown\t\n" +
		"github.com/tollgate/tollgate\tUnknown\tApache-2.0\t/src/tollgate/LICENSE\n"
	libs, err := ReadRows(strings.NewReader(rows), "/m", "github.com/tollgate/tollgate")
	if err != nil {
		t.Fatal(err)
	}
	if len(libs) != 1 || libs[0].Module != "github.com/nexus-rpc/nexus-proto-annotations" || libs[0].Version != "v0.1.0" {
		t.Errorf("ReadRows = %+v, want the nexus annotations only, in their module", libs)
	}
	if _, err := ReadRows(strings.NewReader("example.com/x\tv1.0.0\tUnknown\t\n"), "/m", "github.com/tollgate/tollgate"); err == nil {
		t.Error("ReadRows accepted a row without a licence file that no override names")
	}
}
