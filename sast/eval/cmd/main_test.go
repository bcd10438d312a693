package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestListPrintsNameRepoAndCommitOfEveryApp(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-truth", "../truth.yaml", "-list"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 4 {
		t.Fatalf("listed %d apps, want at least two vulnerable and two controls:\n%s", len(lines), out.String())
	}
	for _, l := range lines {
		if f := strings.Fields(l); len(f) != 3 || len(f[2]) != 40 {
			t.Errorf("line %q is not NAME OWNER/REPO COMMIT", l)
		}
	}
}

func TestRunWithoutAppsIsAUsageError(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-truth", "../truth.yaml"}, &out, &errOut); code != 2 {
		t.Errorf("exit %d, want 2 (usage); stderr: %s", code, errOut.String())
	}
	if code := run([]string{"-truth", "missing.yaml", "-list"}, &out, &errOut); code != 2 {
		t.Errorf("exit %d for a missing truth list, want 2", code)
	}
}
