package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// devLinkFile is the file in a running `tollgate dev`'s state folder that
// tells `tollgate scan` where the dev's API is. dev writes it once its API
// listens and removes it when it stops; a file left by a dev that was killed
// is found stale by its health check and ignored.
const devLinkFile = "dev.json"

// devLink is what a running dev tells scan: its API, a token for it, and
// whether it runs the deep stage after a fast block (--full).
type devLink struct {
	API     string `json:"api"`
	Token   string `json:"token"`
	Full    bool   `json:"full"`
	PID     int    `json:"pid"`
	Version string `json:"version"`
}

// writeDevLink writes l into the state folder, readable by its owner only
// (it holds the dev's token), and returns the function that removes it.
func writeDevLink(state string, l devLink) (func(), error) {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode dev link: %w", err)
	}
	path := filepath.Join(state, devLinkFile)
	tmp, err := os.CreateTemp(state, devLinkFile+".*")
	if err != nil {
		return nil, fmt.Errorf("write dev link in %s: %w", state, err)
	}
	_, werr := tmp.Write(append(b, '\n'))
	if err := errors.Join(werr, tmp.Close()); err != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("write dev link %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("write dev link %s: %w", path, err)
	}
	return func() { os.Remove(path) }, nil
}

// findDev reads the dev link in state and checks that its API answers. It
// returns why no dev is usable when there is none ("" when no dev ever
// wrote a link there: the usual case, nothing to say).
func findDev(ctx context.Context, state string) (devLink, string) {
	path := filepath.Join(state, devLinkFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return devLink{}, ""
	}
	if err != nil {
		return devLink{}, fmt.Sprintf("read %s: %v", path, err)
	}
	var l devLink
	if err := json.Unmarshal(b, &l); err != nil || l.API == "" || l.Token == "" {
		return devLink{}, fmt.Sprintf("%s is not a dev link", path)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.API+"/readyz", nil)
	if err != nil {
		return devLink{}, fmt.Sprintf("%s names a bad API address %q", path, l.API)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return devLink{}, fmt.Sprintf("the tollgate dev in %s does not answer at %s (stopped?)", state, l.API)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return devLink{}, fmt.Sprintf("the tollgate dev at %s is not ready (%s)", l.API, resp.Status)
	}
	return l, ""
}
