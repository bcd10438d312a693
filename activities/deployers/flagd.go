package deployers

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"
	"unicode/utf8"

	"github.com/tollgate/tollgate/tenant"
)

// FlagdSchema is the $schema written into new flag files.
const FlagdSchema = "https://flagd.dev/schema/v0/flags.json"

// maxFlagFile bounds the flag file Flagd reads.
const maxFlagFile = 16 << 20

// ErrNoRelease is wrapped by Flagd.Current when the flag file records no live
// release for the app: no file, no flag, a disabled flag or no default variant.
var ErrNoRelease = errors.New("no live release recorded")

// Flagd switches the release flag in a flagd flag definition file, which flagd
// (file sync) watches and serves; the app's edge router evaluates the flag and
// routes to the release it names.
//
// The flag (Target.FlagKey, default "<tenant>.<app>-release") is a string
// flag whose variants are release ids mapped to themselves; its
// defaultVariant is the live release:
//
//	{"$schema": "https://flagd.dev/schema/v0/flags.json",
//	 "flags": {"acme.shop-release": {"state": "ENABLED",
//	   "variants": {"r1": "r1", "r2": "r2"}, "defaultVariant": "r1"}}}
//
// Deploy keeps everything else in the file (other flags, other variants,
// targeting, metadata, $evaluators), adds the release's variant if missing,
// enables the flag and sets defaultVariant. Targeting rules are kept and can
// still route some evaluations elsewhere; Receipt.Detail says so. A file that
// is not a flagd JSON document, or whose flag is not a string flag, is refused
// (ErrPermanent) and left untouched.
//
// Writes are atomic (temporary file in the same directory, fsync, rename) and
// serialized: in-process by the Flagd value, across processes by an exclusive
// flock on "<FlagFile>.lock", which is created if missing and never removed.
type Flagd struct {
	path    string
	key     string
	timeout time.Duration
	logger  *slog.Logger
	// sem is the in-process lock; a channel so that waiting honours ctx.
	sem chan struct{}
}

var _ Deployer = (*Flagd)(nil)

// NewFlagd builds a Flagd from a flagd Target.
func NewFlagd(t Target, opts ...Option) (*Flagd, error) {
	if t.Type != TypeFlagd {
		return nil, fmt.Errorf("build flagd deployer from %q target %s: %w", t.Type, t.where(), ErrPermanent)
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	return &Flagd{
		path:    t.FlagFile,
		key:     t.FlagKey,
		timeout: cmp.Or(t.Timeout, DefaultTimeout),
		logger:  o.logger,
		sem:     make(chan struct{}, 1),
	}, nil
}

// FlagKey is the flag Flagd sets for a tenant's app: the configured
// Target.FlagKey as it is, else "<tenant>.<app>-release". The default always
// carries the tenant, so that two tenants' apps of one name sharing a flag
// file never switch each other's flag; a tenant name has no '.', so the
// first '.' ends it. Its errors wrap ErrPermanent and tenant.ErrInvalid.
func (f *Flagd) FlagKey(tenantName, app string) (string, error) {
	if f.key != "" {
		return f.key, nil
	}
	if err := tenant.Validate(tenantName); err != nil {
		return "", fmt.Errorf("flagd flag key of app %q: %w: %w", app, err, ErrPermanent)
	}
	if app == "" {
		return "", fmt.Errorf("flagd flag key of tenant %q: no app: %w", tenantName, ErrPermanent)
	}
	return tenantName + "." + app + "-release", nil
}

// Deploy makes req.ReleaseID the default variant of the app's flag.
// Receipt.Duplicate is set, and nothing is written, when it already was and
// the flag was enabled.
func (f *Flagd) Deploy(ctx context.Context, req Request) (Receipt, error) {
	if err := req.Validate(); err != nil {
		return Receipt{Target: TypeFlagd + " " + f.path}, err
	}
	key, err := f.FlagKey(req.Tenant, req.App)
	if err != nil {
		return Receipt{Target: TypeFlagd + " " + f.path}, err
	}
	if req.Action == ActionDisable {
		return Receipt{Target: TypeFlagd + " " + f.path}, fmt.Errorf("deploy app %q via flagd: the request is a disable (call Disable): %w", req.App, ErrPermanent)
	}
	rc := Receipt{Target: TypeFlagd + " " + f.path + "#" + key}
	op := fmt.Sprintf("deploy app %q release %q via flagd flag %q in %s", req.App, req.ReleaseID, key, f.path)
	log := f.logger.With("app", req.App, "release", req.ReleaseID, "rollback_id", req.RollbackID, "target", rc.Target)
	res, err := f.update(ctx, op, func(old []byte) (flagUpdate, error) { return setRelease(old, key, req.ReleaseID) })
	if err != nil {
		return rc, err
	}
	rc.Detail = res.detail(req.ReleaseID)
	if !res.changed {
		rc.Duplicate = true
		log.InfoContext(ctx, "flagd release flag already set")
		return rc, nil
	}
	if res.hasTargeting {
		log.WarnContext(ctx, "flagd release flag has targeting rules that may override the default variant")
	}
	log.InfoContext(ctx, "flagd release flag set", "previous", res.previous, "enabled", res.enabled)
	return rc, nil
}

var _ Disabler = (*Flagd)(nil)

// Disable turns the app's flag off (state DISABLED), keeping its variants
// and default variant, so that flagd serves no release for it and a later
// Deploy enables it again. Receipt.Duplicate is set, and nothing is
// written, when the flag was already off or does not exist.
func (f *Flagd) Disable(ctx context.Context, req Request) (Receipt, error) {
	req.Action = ActionDisable
	if err := req.Validate(); err != nil {
		return Receipt{Target: TypeFlagd + " " + f.path}, err
	}
	key, err := f.FlagKey(req.Tenant, req.App)
	if err != nil {
		return Receipt{Target: TypeFlagd + " " + f.path}, err
	}
	rc := Receipt{Target: TypeFlagd + " " + f.path + "#" + key}
	op := fmt.Sprintf("disable app %q via flagd flag %q in %s", req.App, key, f.path)
	res, err := f.update(ctx, op, func(old []byte) (flagUpdate, error) { return disableFlag(old, key) })
	if err != nil {
		return rc, err
	}
	rc.Detail, rc.Duplicate = "flag disabled", !res.changed
	if !res.changed {
		rc.Detail = "flag already disabled or absent"
	}
	f.logger.InfoContext(ctx, "flagd release flag disabled", "app", req.App, "rollback_id", req.RollbackID, "target", rc.Target, "duplicate", rc.Duplicate)
	return rc, nil
}

// update rewrites the flag file under both locks with change, when change
// says it changed; op names the operation in errors.
func (f *Flagd) update(ctx context.Context, op string, change func(old []byte) (flagUpdate, error)) (flagUpdate, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		return flagUpdate{}, fmt.Errorf("%s: wait for in-process lock: %w", op, context.Cause(ctx))
	}
	defer func() { <-f.sem }()
	unlock, err := lockFile(ctx, f.path+".lock")
	if err != nil {
		return flagUpdate{}, fmt.Errorf("%s: %w", op, err)
	}
	defer unlock()

	path, old, mode, err := readFlagFile(f.path)
	if err != nil {
		return flagUpdate{}, fmt.Errorf("%s: %w", op, err)
	}
	res, err := change(old)
	if err != nil {
		return flagUpdate{}, fmt.Errorf("%s: %s: %w: %w", op, path, err, ErrPermanent)
	}
	if !res.changed {
		return res, nil
	}
	if err := ctx.Err(); err != nil {
		return flagUpdate{}, fmt.Errorf("%s: %w", op, context.Cause(ctx))
	}
	if err := writeFileAtomic(path, res.doc, mode); err != nil {
		return flagUpdate{}, fmt.Errorf("%s: %w", op, err)
	}
	return res, nil
}

// disableFlag returns old with flag key's state DISABLED; unchanged when
// there is no file, no such flag, or the flag is already off.
func disableFlag(old []byte, key string) (flagUpdate, error) {
	if old == nil {
		return flagUpdate{}, nil
	}
	top, flags, err := parseFlagDoc(old)
	if err != nil {
		return flagUpdate{}, err
	}
	raw, ok := flags[key]
	if !ok {
		return flagUpdate{}, nil
	}
	fl, err := parseFlag(raw)
	if err != nil {
		return flagUpdate{}, fmt.Errorf("flag %q: %w", key, err)
	}
	if fl.state == "DISABLED" {
		return flagUpdate{previous: fl.defaultVariant}, nil
	}
	u := flagUpdate{changed: true, previous: fl.defaultVariant}
	fl.fields["state"] = jsonString("DISABLED")
	if u.doc, err = withFlag(top, flags, key, fl.fields); err != nil {
		return flagUpdate{}, err
	}
	return u, nil
}

// Current reads back a tenant's app's live release: the default variant of
// its enabled flag. Errors wrap ErrNoRelease when none is recorded.
func (f *Flagd) Current(ctx context.Context, tenantName, app string) (string, error) {
	key, err := f.FlagKey(tenantName, app)
	if err != nil {
		return "", err
	}
	op := fmt.Sprintf("read live release of app %q from flagd flag %q in %s", app, key, f.path)
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	_, data, _, err := readFlagFile(f.path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	if data == nil {
		return "", fmt.Errorf("%s: file does not exist: %w", op, ErrNoRelease)
	}
	_, flags, err := parseFlagDoc(data)
	if err != nil {
		return "", fmt.Errorf("%s: %w: %w", op, err, ErrPermanent)
	}
	raw, ok := flags[key]
	if !ok {
		return "", fmt.Errorf("%s: no such flag: %w", op, ErrNoRelease)
	}
	fl, err := parseFlag(raw)
	if err != nil {
		return "", fmt.Errorf("%s: %w: %w", op, err, ErrPermanent)
	}
	if fl.state == "DISABLED" {
		return "", fmt.Errorf("%s: flag is disabled: %w", op, ErrNoRelease)
	}
	if fl.defaultVariant == "" {
		return "", fmt.Errorf("%s: flag has no default variant: %w", op, ErrNoRelease)
	}
	return fl.defaultVariant, nil
}

// readFlagFile returns the real path (symlinks resolved, so that the rename
// replaces the target and keeps the link), the content (nil when the file
// does not exist) and the permission bits to keep.
func readFlagFile(name string) (path string, data []byte, mode fs.FileMode, err error) {
	path, err = filepath.EvalSymlinks(name)
	if errors.Is(err, fs.ErrNotExist) {
		return name, nil, 0o644, nil
	}
	if err != nil {
		return name, nil, 0, fmt.Errorf("resolve flag file %s: %w", name, err)
	}
	fh, err := os.Open(path)
	if err != nil {
		return path, nil, 0, fmt.Errorf("open flag file %s: %w", path, err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return path, nil, 0, fmt.Errorf("stat flag file %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return path, nil, 0, fmt.Errorf("flag file %s is not a regular file: %w", path, ErrPermanent)
	}
	data, err = io.ReadAll(io.LimitReader(fh, maxFlagFile+1))
	if err != nil {
		return path, nil, 0, fmt.Errorf("read flag file %s: %w", path, err)
	}
	if len(data) > maxFlagFile {
		return path, nil, 0, fmt.Errorf("flag file %s is larger than %d bytes: %w", path, maxFlagFile, ErrPermanent)
	}
	if data == nil {
		data = []byte{} // exists but empty: not the same as absent
	}
	return path, data, st.Mode().Perm(), nil
}

// writeFileAtomic replaces path with data: a temporary file in the same
// directory, fsynced, renamed over path, then the directory fsynced.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary flag file in %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write temporary flag file %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("chmod temporary flag file %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("fsync temporary flag file %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close temporary flag file %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename temporary flag file over %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open flag file directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync flag file directory %s: %w", dir, err)
	}
	return nil
}

// flagUpdate is the outcome of setRelease.
type flagUpdate struct {
	doc          []byte
	changed      bool
	previous     string // previous defaultVariant, "" if none
	enabled      bool   // the flag was disabled and is now enabled
	hasTargeting bool
}

func (u flagUpdate) detail(release string) string {
	var s string
	switch {
	case !u.changed:
		s = fmt.Sprintf("release %s already live", release)
	case u.previous == "":
		s = fmt.Sprintf("release %s live", release)
	default:
		s = fmt.Sprintf("release %s live, was %s", release, u.previous)
	}
	if u.enabled {
		s += "; flag was disabled, now enabled"
	}
	if u.hasTargeting {
		s += "; flag has targeting rules that may override the default variant"
	}
	return detail([]byte(s))
}

// flag is the part of a flagd flag tollgate reads.
type flag struct {
	fields         map[string]json.RawMessage
	state          string
	variants       map[string]json.RawMessage
	defaultVariant string
}

// setRelease returns old (nil: no file) with flag key's defaultVariant set to
// release. Its errors say why old is not a document tollgate may rewrite.
func setRelease(old []byte, key, release string) (flagUpdate, error) {
	var top, flags map[string]json.RawMessage
	if old == nil {
		top = map[string]json.RawMessage{"$schema": jsonString(FlagdSchema)}
		flags = map[string]json.RawMessage{}
	} else {
		var err error
		if top, flags, err = parseFlagDoc(old); err != nil {
			return flagUpdate{}, err
		}
	}

	var u flagUpdate
	fl := flag{fields: map[string]json.RawMessage{}, variants: map[string]json.RawMessage{}}
	if raw, ok := flags[key]; ok {
		var err error
		if fl, err = parseFlag(raw); err != nil {
			return flagUpdate{}, fmt.Errorf("flag %q: %w", key, err)
		}
		for name, v := range fl.variants {
			if !isJSONString(v) {
				return flagUpdate{}, fmt.Errorf("flag %q: variant %q is not a string; tollgate only manages string release flags", key, name)
			}
		}
		if fl.variants == nil {
			fl.variants = map[string]json.RawMessage{}
		}
	} else {
		u.changed = true
	}
	u.previous = fl.defaultVariant
	u.hasTargeting = hasTargeting(fl.fields["targeting"])
	if fl.state != "ENABLED" {
		u.enabled = fl.state == "DISABLED"
		u.changed = true
	}
	if _, ok := fl.variants[release]; !ok {
		fl.variants[release] = jsonString(release)
		u.changed = true
	}
	if fl.defaultVariant != release {
		u.changed = true
	}
	if !u.changed {
		return u, nil
	}

	fl.fields["state"] = jsonString("ENABLED")
	fl.fields["defaultVariant"] = jsonString(release)
	var err error
	if fl.fields["variants"], err = encodeJSON(fl.variants, ""); err != nil {
		return flagUpdate{}, fmt.Errorf("encode flag %q variants: %w", key, err)
	}
	if u.doc, err = withFlag(top, flags, key, fl.fields); err != nil {
		return flagUpdate{}, err
	}
	return u, nil
}

// withFlag encodes the flag document top with flag key's fields replaced.
func withFlag(top, flags map[string]json.RawMessage, key string, fields map[string]json.RawMessage) ([]byte, error) {
	var err error
	if flags[key], err = encodeJSON(fields, ""); err != nil {
		return nil, fmt.Errorf("encode flag %q: %w", key, err)
	}
	if top["flags"], err = encodeJSON(flags, ""); err != nil {
		return nil, fmt.Errorf("encode flags: %w", err)
	}
	doc, err := encodeJSON(top, "  ")
	if err != nil {
		return nil, fmt.Errorf("encode flag document: %w", err)
	}
	return doc, nil
}

// encodeJSON encodes v without HTML escaping, indented when indent is set.
func encodeJSON(v any, indent string) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if indent == "" {
		return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
	}
	return b.Bytes(), nil
}

// parseFlagDoc checks that data is a flagd flag document in JSON (an object
// whose "flags", if present, maps non-empty keys to flag objects) and splits
// it into its top-level fields and its flags.
func parseFlagDoc(data []byte) (top, flags map[string]json.RawMessage, err error) {
	if !utf8.Valid(data) {
		return nil, nil, errors.New("not a flagd flag document: not UTF-8")
	}
	if err := checkUniqueNames(data); err != nil {
		return nil, nil, fmt.Errorf("not a flagd flag document: %w", err)
	}
	if err := decodeObject(data, &top); err != nil {
		return nil, nil, fmt.Errorf("not a flagd flag document: %w", err)
	}
	flags = map[string]json.RawMessage{}
	if raw, ok := top["flags"]; ok {
		if err := decodeObject(raw, &flags); err != nil {
			return nil, nil, fmt.Errorf("not a flagd flag document: \"flags\": %w", err)
		}
	}
	for k, raw := range flags {
		if k == "" {
			return nil, nil, errors.New("not a flagd flag document: empty flag key")
		}
		if _, err := parseFlag(raw); err != nil {
			return nil, nil, fmt.Errorf("not a flagd flag document: flag %q: %w", k, err)
		}
	}
	return top, flags, nil
}

// parseFlag checks the fields of a flag that flagd's schema constrains and
// tollgate relies on; targeting and metadata are kept as they are.
func parseFlag(raw json.RawMessage) (flag, error) {
	fl := flag{}
	if err := decodeObject(raw, &fl.fields); err != nil {
		return flag{}, err
	}
	if v, ok := fl.fields["state"]; ok {
		if err := json.Unmarshal(v, &fl.state); err != nil || (fl.state != "ENABLED" && fl.state != "DISABLED") {
			return flag{}, errors.New(`"state" is not "ENABLED" or "DISABLED"`)
		}
	}
	if v, ok := fl.fields["variants"]; ok {
		if err := decodeObject(v, &fl.variants); err != nil {
			return flag{}, fmt.Errorf(`"variants": %w`, err)
		}
		for name := range fl.variants {
			if name == "" {
				return flag{}, errors.New(`"variants": empty variant name`)
			}
		}
	}
	if v, ok := fl.fields["defaultVariant"]; ok && !bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
		if err := json.Unmarshal(v, &fl.defaultVariant); err != nil {
			return flag{}, errors.New(`"defaultVariant" is not a string or null`)
		}
	}
	return fl, nil
}

// checkUniqueNames rejects JSON with an object that has a name twice: decoding
// keeps only one of the values, and rewriting would silently drop the other.
func checkUniqueNames(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type object struct {
		names   map[string]bool
		wantKey bool // the next token is a name
	}
	var stack []*object
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		var top *object
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.wantKey {
			if name, ok := tok.(string); ok {
				if top.names[name] {
					return fmt.Errorf("name %q appears twice in one object", name)
				}
				top.names[name] = true
				top.wantKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &object{names: map[string]bool{}, wantKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, &object{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value ended: in an object, a name comes next.
		if len(stack) > 0 && stack[len(stack)-1].names != nil {
			stack[len(stack)-1].wantKey = true
		}
	}
}

// decodeObject decodes a JSON object (not null, not another type) into m.
func decodeObject(data []byte, m *map[string]json.RawMessage) error {
	t := bytes.TrimLeft(data, " \t\r\n")
	if len(t) == 0 || t[0] != '{' {
		return errors.New("not a JSON object")
	}
	if err := json.Unmarshal(data, m); err != nil {
		return err
	}
	if *m == nil {
		*m = map[string]json.RawMessage{}
	}
	return nil
}

func isJSONString(v json.RawMessage) bool {
	var s string
	t := bytes.TrimSpace(v)
	return len(t) > 0 && t[0] == '"' && json.Unmarshal(t, &s) == nil
}

func hasTargeting(v json.RawMessage) bool {
	t := bytes.TrimSpace(v)
	return len(t) > 0 && !bytes.Equal(t, []byte("null")) && !bytes.Equal(t, []byte("{}"))
}

// jsonString encodes s; strings always encode (invalid UTF-8 becomes U+FFFD).
func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}
