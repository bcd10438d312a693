package scanners

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/tollgate/tollgate/workers"
)

func TestTerraformBomb(t *testing.T) {
	for name, c := range map[string]struct {
		tf   string
		bomb bool
	}{
		"literal count":        {`resource "aws_s3_bucket" "b" { count = 2000000 }`, true},
		"count from a default": {"variable \"n\" { default = 50000 }\nresource \"aws_s3_bucket\" \"b\" { count = var.n }", true},
		"for_each of a list":   {`resource "aws_s3_bucket" "b" { for_each = toset([for i in [1,2] : tostring(i)]) }`, false},
		"fractional count":     {`resource "aws_s3_bucket" "b" { count = 1.5 }`, true},
		"small count":          {`resource "aws_s3_bucket" "b" { count = 3 }`, false},
		"count from input":     {"variable \"n\" {}\nresource \"aws_s3_bucket\" \"b\" { count = var.n }", false},
		"no count":             {`resource "aws_s3_bucket" "b" { bucket = "x" }`, false},
		"unparsable":           {`resource "aws_s3_bucket" "b" {`, false},
	} {
		at, err := terraformBomb(fstest.MapFS{"main.tf": {Data: []byte(c.tf)}})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if (at != "") != c.bomb {
			t.Errorf("%s: found %q, want a bomb: %v", name, at, c.bomb)
		}
	}
}

// A Terraform file that would expand a block two million times is refused as
// bad input, at once, instead of holding the worker.
func TestMisconfigRefusesTerraformBomb(t *testing.T) {
	needEngine(t)
	dir := t.TempDir()
	tf := "resource \"aws_security_group\" \"open\" {\n  count = 2000000\n  description = \"x\"\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(tf), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := engine.iac.Scan(context.Background(), dir)
	if err == nil || !strings.Contains(err.Error(), "main.tf:2") || !workers.IsBadInput(err) {
		t.Fatalf("got %v, want a bad-input error naming main.tf:2", err)
	}
}
