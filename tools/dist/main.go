// Command dist writes and checks a release's SHA256SUMS and its signature:
// scripts/release.sh signs with it, `make release-check` checks with it.
//
//	dist sign -key PRIVATE.pem DIR    write DIR/SHA256SUMS over every file in DIR, and DIR/SHA256SUMS.sig
//	dist check -key PUBLIC.pem DIR    verify DIR/SHA256SUMS.sig, then every file against SHA256SUMS
//
// SHA256SUMS is in sha256sum's format (`sha256sum -c SHA256SUMS` checks it
// too); SHA256SUMS.sig is attest.Signer.SignBlob's: base64, as cosign
// sign-blob writes it.
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tollgate/tollgate/attest"
)

const (
	sumsName = "SHA256SUMS"
	sigName  = sumsName + ".sig"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "dist:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: dist sign|check -key KEY DIR")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	key := fs.String("key", "", "PEM key: private for sign, public for check")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *key == "" || fs.NArg() != 1 {
		return fmt.Errorf("usage: dist %s -key KEY DIR", args[0])
	}
	dir := fs.Arg(0)
	switch args[0] {
	case "sign":
		return sign(*key, dir)
	case "check":
		n, err := check(*key, dir)
		if err != nil {
			return err
		}
		fmt.Printf("%s: %s signature and %d checksums OK\n", dir, sumsName, n)
		return nil
	}
	return fmt.Errorf("unknown command %q: want sign or check", args[0])
}

// files lists DIR's release files: every regular file but the sums and
// their signature, sorted.
func files(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list release dir: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && e.Name() != sumsName && e.Name() != sigName {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("release dir %q holds no files", dir)
	}
	return names, nil
}

func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %q: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func sign(keyPath, dir string) error {
	signer, err := attest.LoadSigner(keyPath)
	if err != nil {
		return err
	}
	names, err := files(dir)
	if err != nil {
		return err
	}
	var sums bytes.Buffer
	for _, name := range names {
		sum, err := fileSum(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		fmt.Fprintf(&sums, "%s  %s\n", sum, name)
	}
	sig, err := signer.SignBlob(sums.Bytes())
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, sumsName), sums.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", sumsName, err)
	}
	if err := os.WriteFile(filepath.Join(dir, sigName), append(sig, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", sigName, err)
	}
	return nil
}

// check verifies the signature first, so that no unsigned line is trusted,
// then every listed file, and that no file in dir goes unlisted.
func check(keyPath, dir string) (int, error) {
	v, err := attest.LoadVerifier(keyPath)
	if err != nil {
		return 0, err
	}
	sums, err := os.ReadFile(filepath.Join(dir, sumsName))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", sumsName, err)
	}
	sig, err := os.ReadFile(filepath.Join(dir, sigName))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", sigName, err)
	}
	if err := v.VerifyBlob(sums, sig); err != nil {
		return 0, fmt.Errorf("%s of %s: %w", sigName, dir, err)
	}
	var listed []string
	var bad []string
	sc := bufio.NewScanner(bytes.NewReader(sums))
	for sc.Scan() {
		want, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(want) != 64 || name == "" || strings.ContainsAny(name, `/\`) {
			return 0, fmt.Errorf("%s: bad line %q", sumsName, sc.Text())
		}
		listed = append(listed, name)
		got, err := fileSum(filepath.Join(dir, name))
		switch {
		case err != nil:
			bad = append(bad, fmt.Sprintf("%s: %v", name, err))
		case got != want:
			bad = append(bad, fmt.Sprintf("%s: sha256 %s, SHA256SUMS says %s", name, got, want))
		}
	}
	names, err := files(dir)
	if err != nil {
		return 0, err
	}
	for _, name := range names {
		if !slices.Contains(listed, name) {
			bad = append(bad, name+": not in "+sumsName)
		}
	}
	if len(bad) > 0 {
		return 0, fmt.Errorf("%s: %s", dir, strings.Join(bad, "; "))
	}
	return len(listed), nil
}
