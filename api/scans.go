package api

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"github.com/tollgate/tollgate/control"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/storage/archive"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/vex"
	"github.com/tollgate/tollgate/workflows"
)

// Metadata is the "metadata" part of a scan submission.
type Metadata struct {
	App        string      `json:"app"`
	Commit     string      `json:"commit,omitempty"`
	Labels     []string    `json:"labels,omitempty"`
	Provenance *Provenance `json:"provenance,omitempty"`
	// Priority is "ci" (the default: someone waits on the verdict) or
	// "bulk" (rescans and backfills, served after CI work).
	Priority string `json:"priority,omitempty"`
	// Author is the commit author's email: that person may not approve the
	// change in a review, whatever token they hold.
	Author string `json:"author,omitempty"`
	// Baseline names the scan (of this tenant and app, finished) the
	// findings are compared with; empty takes the app's newest known-good
	// release's scan, when it has one.
	Baseline string `json:"baseline,omitempty"`
}

// Provenance records how an LLM-made app came to be. Secrets in the prompts
// are redacted before it is stored or logged.
type Provenance struct {
	PromptTemplate string     `json:"prompt_template,omitempty"`
	Prompt         string     `json:"prompt,omitempty"`
	Model          string     `json:"model,omitempty"`
	Temperature    *float64   `json:"temperature,omitempty"`
	User           string     `json:"user,omitempty"`
	Timestamp      *time.Time `json:"timestamp,omitempty"`
	// Redactions counts the secrets replaced in the prompts (set by the server).
	Redactions int `json:"redactions"`
}

// Redactor replaces secrets in text; the workers' gitleaks rules are one.
type Redactor interface {
	Redact(ctx context.Context, text string) (string, int, error)
}

var (
	appRe    = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	commitRe = regexp.MustCompile(`^[0-9a-f]{7,64}$`)
	labelRe  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$`)
)

// Validate checks submitted metadata.
func (m Metadata) Validate() error {
	if !appRe.MatchString(m.App) {
		return fmt.Errorf("app %q must be 1-63 characters of a-z, 0-9, '.', '_' or '-'", m.App)
	}
	if m.Author != "" && !validEmail(m.Author) {
		return fmt.Errorf("author %q is not an email address", m.Author)
	}
	if m.Commit != "" && !commitRe.MatchString(m.Commit) {
		return fmt.Errorf("commit %q is not a git object id", m.Commit)
	}
	if _, err := uuid.Parse(m.Baseline); m.Baseline != "" && err != nil {
		return fmt.Errorf("baseline %q is not a scan id", m.Baseline)
	}
	if err := tasks.ValidPriority(m.Priority); err != nil {
		return err
	}
	if len(m.Labels) > 32 {
		return fmt.Errorf("%d labels, at most 32", len(m.Labels))
	}
	for _, l := range m.Labels {
		if !labelRe.MatchString(l) {
			return fmt.Errorf("label %q: 1-64 characters of letters, digits and . _ : / -", l)
		}
	}
	if p := m.Provenance; p != nil {
		if len(p.Prompt)+len(p.PromptTemplate) > 256<<10 {
			return errors.New("provenance prompts are over 256 KiB")
		}
		if len(p.Model) > 256 || len(p.User) > 256 {
			return errors.New("provenance model and user must be at most 256 characters")
		}
		if p.Temperature != nil && (*p.Temperature < 0 || *p.Temperature > 10) {
			return errors.New("provenance temperature must be between 0 and 10")
		}
	}
	return nil
}

// ScanStatus is the body of GET /v1/scans/{id}.
type ScanStatus struct {
	ScanID string `json:"scan_id"`
	App    string `json:"app,omitempty"`
	Status string `json:"status"` // running, completed, failed
	Stage  string `json:"stage,omitempty"`
	// Waiting says what a running scan waits for besides a worker.
	Waiting string `json:"waiting,omitempty"`
	// Review is set while the scan waits for a human review (its verdict
	// is then "review").
	Review    *report.Review  `json:"review,omitempty"`
	Verdict   report.Verdict  `json:"verdict,omitempty"`
	Reasons   []report.Reason `json:"reasons,omitempty"`
	Error     string          `json:"error,omitempty"`
	BadInput  bool            `json:"bad_input,omitempty"`
	StatusURL string          `json:"status_url"`
	ReportURL string          `json:"report_url,omitempty"`
	// StartedAt and Timings (seconds per stage) of a completed scan: its
	// fast verdict came at StartedAt + timings.fast.
	StartedAt time.Time          `json:"started_at,omitzero"`
	Timings   map[string]float64 `json:"timings,omitempty"`
}

func (s *Server) createScan(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := principalFrom(ctx)
	if ok, reason := s.authorize(ctx, p, "scan.create", p.Tenant); !ok {
		writeProblem(w, r, http.StatusForbidden, "forbidden", reason)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxArchiveBytes+1<<20)
	mr, err := r.MultipartReader()
	if err != nil {
		writeProblem(w, r, http.StatusBadRequest, "bad-request", "the body must be multipart/form-data with a metadata part and an archive part")
		return
	}
	var meta *Metadata
	var upload *os.File
	var vexDocs [][]byte
	defer func() {
		if upload != nil {
			upload.Close()
			os.Remove(upload.Name())
		}
	}()
	var size int64
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			s.bodyError(w, r, err)
			return
		}
		switch part.FormName() {
		case "metadata":
			if meta != nil {
				writeProblem(w, r, http.StatusBadRequest, "bad-request", "more than one metadata part")
				return
			}
			meta = &Metadata{}
			dec := json.NewDecoder(io.LimitReader(part, 512<<10))
			dec.DisallowUnknownFields()
			if err := dec.Decode(meta); err != nil {
				writeProblem(w, r, http.StatusBadRequest, "bad-request", "metadata is not valid JSON: "+err.Error())
				return
			}
		case "archive":
			if upload != nil {
				writeProblem(w, r, http.StatusBadRequest, "bad-request", "more than one archive part")
				return
			}
			if upload, size, err = s.spool(part); err != nil {
				s.bodyError(w, r, err)
				return
			}
		case "vex":
			if len(vexDocs) == maxScanVEX {
				writeProblem(w, r, http.StatusBadRequest, "bad-request", fmt.Sprintf("more than %d vex parts", maxScanVEX))
				return
			}
			doc, err := io.ReadAll(io.LimitReader(part, maxVEXBody+1))
			if err != nil {
				s.bodyError(w, r, err)
				return
			}
			if len(doc) > maxVEXBody {
				writeProblem(w, r, http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("a vex part is over %d bytes", maxVEXBody))
				return
			}
			vexDocs = append(vexDocs, doc)
		default:
			writeProblem(w, r, http.StatusBadRequest, "bad-request", fmt.Sprintf("unknown part %q (want metadata, archive and vex)", part.FormName()))
			return
		}
	}
	switch {
	case meta == nil:
		writeProblem(w, r, http.StatusBadRequest, "bad-request", "no metadata part")
		return
	case upload == nil:
		writeProblem(w, r, http.StatusBadRequest, "bad-request", "no archive part")
		return
	}
	if err := meta.Validate(); err != nil {
		writeProblem(w, r, http.StatusBadRequest, "bad-metadata", err.Error())
		return
	}
	vexDigests, ok := s.checkScanVEX(w, r, p, vexDocs)
	if !ok {
		return
	}
	release, ok := s.edge.acquireCheck(ctx)
	if !ok {
		s.met.refused.WithLabelValues("busy").Inc()
		w.Header().Set("Retry-After", "5")
		writeProblem(w, r, http.StatusServiceUnavailable, "busy", "too many uploads are being checked; retry in a few seconds")
		return
	}
	_, err = archive.CheckReader(ctx, upload, size, s.cfg.Limits)
	release()
	if err != nil {
		// The rejection says what is wrong with which entry; the path the
		// upload was spooled to is the server's business.
		if errors.Is(err, archive.ErrRejected) {
			detail := err.Error()
			if rej := (*archive.RejectError)(nil); errors.As(err, &rej) {
				detail = rej.Error()
			}
			writeProblem(w, r, http.StatusBadRequest, "archive-rejected", detail)
			return
		}
		s.internal(w, r, "check archive", err)
		return
	}
	if _, err := upload.Seek(0, io.SeekStart); err != nil {
		s.internal(w, r, "rewind upload", err)
		return
	}
	obj, err := s.deps.Inputs.PutInput(ctx, upload, size)
	if err != nil {
		s.internal(w, r, "store input", err)
		return
	}

	now := time.Now().UTC()
	content := contentDigest(p.Tenant, obj.SHA256, *meta, vexDigests)
	idemKey := r.Header.Get("Idempotency-Key")
	id := scanID(p.Tenant, idemKey, content, now, s.cfg.DedupeWindow)
	// A scan of this id already started: the same content is the same scan;
	// other content under the same name is a conflict, never its verdict.
	// (Looked up before the provenance is stored: that is written once.)
	if sc, err := s.scans.Describe(ctx, id); err == nil {
		if !sc.SameContent(content) {
			s.contentConflict(w, r, idemKey)
			return
		}
		s.accepted(w, r, p, id, meta.App, obj.Key)
		return
	} else if !errors.Is(err, control.ErrNoScan) {
		s.internal(w, r, "describe scan", err)
		return
	}
	base, problem, err := s.baseline(ctx, p.Tenant, *meta)
	if err != nil {
		s.internal(w, r, "find the baseline", err)
		return
	}
	if problem != "" {
		writeProblem(w, r, http.StatusBadRequest, "bad-baseline", problem)
		return
	}
	req := workflows.ScanRequest{ScanID: id, Baseline: base, App: meta.App, Commit: meta.Commit, Labels: meta.Labels, Full: s.cfg.Full,
		Input: tasks.Input{Archive: &obj}, SubmittedAt: now.Truncate(time.Second), Tenant: p.Tenant,
		Priority: meta.Priority, Submitter: p.Name, SubmitterPerson: p.Person, Author: meta.Author}
	// The scan's own VEX documents are stored before it starts, so that its
	// policy reads them. A retried or raced submission stores the same
	// records again: a scan's record ids come from its content.
	for _, doc := range vexDocs {
		if _, err := s.deps.VEX.Add(ctx, p.Tenant, id, p.Name, doc); err != nil {
			s.internal(w, r, "store the scan's VEX document", err)
			return
		}
	}
	if meta.Provenance != nil {
		ev, err := s.storeProvenance(ctx, id, *meta.Provenance)
		if errors.Is(err, errProvenanceRefused) {
			writeProblem(w, r, http.StatusBadRequest, "bad-request", errProvenanceRefused.Error())
			return
		}
		if err != nil {
			s.internal(w, r, "store provenance", err)
			return
		}
		req.Provenance = &ev
	}
	// A start that races another of the same id is compared with the one
	// that won: the same content is this scan, other content a conflict.
	_, err = s.scans.Start(ctx, req, control.StartOptions{Content: content})
	if errors.Is(err, control.ErrContentConflict) {
		s.contentConflict(w, r, idemKey)
		return
	}
	if _, taken := errors.AsType[*serviceerror.WorkflowExecutionAlreadyStarted](err); taken {
		s.internal(w, r, "describe scan", err)
		return
	} else if err != nil {
		s.internal(w, r, "start scan workflow", err)
		return
	}
	s.accepted(w, r, p, id, meta.App, obj.Key)
}

// accepted answers a submission with the scan it names.
func (s *Server) accepted(w http.ResponseWriter, r *http.Request, p Principal, id, app, input string) {
	s.met.submitted.WithLabelValues(p.Tenant).Inc()
	s.deps.Logger.InfoContext(r.Context(), "scan submitted", "scan_id", id, "app", app, "tenant", p.Tenant, "principal", p.Name, "input", input)
	writeJSON(w, http.StatusAccepted, ScanStatus{ScanID: id, App: app, Status: "running", StatusURL: statusURL(id), ReportURL: reportURL(id)})
}

// contentDigest names what a submission asks to scan: the tenant, the
// archive, the app, the commit, the labels (their order aside; labels such as
// do-not-ship and ai-generated change the verdict) and the priority. Two
// submissions that share a scan id must share this digest.
func contentDigest(tenant, archiveSHA256 string, m Metadata, vexDigests []string) string {
	labels := slices.Clone(m.Labels)
	slices.Sort(labels)
	labels = slices.Compact(labels)
	parts := []any{"tollgate-scan-content/1", tenant, archiveSHA256, m.App, m.Commit, labels, cmp.Or(m.Priority, tasks.PriorityCI), m.Author}
	if m.Baseline != "" {
		// A named baseline changes the verdict; without one the digest
		// stays what it was before baselines.
		parts = append(parts, "baseline", m.Baseline)
	}
	if len(vexDigests) > 0 {
		// So do the scan's own VEX documents (their order aside).
		parts = append(parts, "vex", slices.Sorted(slices.Values(vexDigests)))
	}
	b, _ := json.Marshal(parts)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// contentConflict answers a submission whose scan id is taken by other content.
func (s *Server) contentConflict(w http.ResponseWriter, r *http.Request, idemKey string) {
	s.met.refused.WithLabelValues("idempotency-conflict").Inc()
	detail := "a scan of this archive, app and commit was submitted with other labels or priority in the dedupe window; wait or change the commit"
	if idemKey != "" {
		detail = "this Idempotency-Key was used for a submission with another archive, app, commit, labels or priority; use a new key"
	}
	writeProblem(w, r, http.StatusConflict, "idempotency-conflict", detail)
}

// scanID names a submission. The same Idempotency-Key from one tenant, or
// the same content (contentDigest: archive, app, commit, labels, priority)
// within the dedupe window, names the same scan, and Temporal's workflow id
// makes it start only once; createScan refuses a name already taken by
// other content.
func scanID(tenant, idemKey, content string, now time.Time, window time.Duration) string {
	name := "tollgate-scan\x00" + tenant + "\x00"
	if idemKey != "" {
		name += "idem\x00" + idemKey
	} else {
		name += fmt.Sprintf("content\x00%s\x00%d", content, now.UnixNano()/int64(window))
	}
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte(name)).String()
}

func statusURL(id string) string { return "/v1/scans/" + id }
func reportURL(id string) string { return "/v1/scans/" + id + "/report" }

// spool writes the archive part to a temporary file, refusing more than the limit.
func (s *Server) spool(part *multipart.Part) (*os.File, int64, error) {
	f, err := os.CreateTemp(s.cfg.WorkDir, "tollgate-upload-*")
	if err != nil {
		return nil, 0, err
	}
	n, err := io.Copy(f, io.LimitReader(part, s.cfg.MaxArchiveBytes+1))
	if err == nil && n > s.cfg.MaxArchiveBytes {
		err = &http.MaxBytesError{Limit: s.cfg.MaxArchiveBytes}
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, 0, err
	}
	return f, n, nil
}

func (s *Server) bodyError(w http.ResponseWriter, r *http.Request, err error) {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeProblem(w, r, http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("the archive is larger than %d bytes", s.cfg.MaxArchiveBytes))
		return
	}
	writeProblem(w, r, http.StatusBadRequest, "bad-request", "could not read the request body: "+err.Error())
}

func (s *Server) internal(w http.ResponseWriter, r *http.Request, op string, err error) {
	s.deps.Logger.ErrorContext(r.Context(), op, "err", err, "path", r.URL.Path)
	writeProblem(w, r, http.StatusInternalServerError, "internal", op+" failed")
}

// lookup finds a scan the principal may see; anything else is 404, so that
// other tenants' scan ids are not confirmed.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) (control.Scan, bool) {
	id := r.PathValue("id")
	sc, err := s.scans.Describe(r.Context(), id)
	if errors.Is(err, control.ErrNoScan) {
		writeProblem(w, r, http.StatusNotFound, "not-found", "no scan "+id)
		return control.Scan{}, false
	}
	if err != nil {
		s.internal(w, r, "describe scan", err)
		return control.Scan{}, false
	}
	if ok, _ := s.authorize(r.Context(), principalFrom(r.Context()), "scan.read", sc.Tenant); !ok {
		writeProblem(w, r, http.StatusNotFound, "not-found", "no scan "+id)
		return control.Scan{}, false
	}
	return sc, true
}

// getScan answers a scan's status from one description and one read; with
// ?wait= a running scan is long-polled, and the poll's answer is the status.
func (s *Server) getScan(w http.ResponseWriter, r *http.Request) {
	sc, ok := s.lookup(w, r)
	if !ok {
		return
	}
	var wait time.Duration
	if v := r.URL.Query().Get("wait"); v != "" && sc.Running() {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > MaxWait {
			writeProblem(w, r, http.StatusBadRequest, "bad-request", "wait must be a duration of at most 60s, e.g. 30s")
			return
		}
		wait = d
	}
	out, err := s.scans.Read(r.Context(), sc, wait)
	if err != nil {
		s.internal(w, r, "describe scan", err)
		return
	}
	writeJSON(w, http.StatusOK, scanStatus(sc.ID, sc.App, out))
}

// MaxWait caps GET /v1/scans/{id}?wait= (the servers have no write timeout
// for it; a client's own timeout must be longer).
const MaxWait = 60 * time.Second

// scanStatus is the body of GET /v1/scans/{id} for a scan's outcome.
func scanStatus(id, app string, o control.Outcome) ScanStatus {
	out := ScanStatus{ScanID: id, App: app, StatusURL: statusURL(id), Status: o.Status}
	switch o.Status {
	case control.StatusRunning:
		if p := o.Progress; p != nil {
			out.Stage, out.Waiting, out.Review = p.Stage, p.Waiting, p.Review
			if p.Verdict == report.VerdictReview {
				out.Verdict = p.Verdict
			}
		}
	case control.StatusCompleted:
		res := o.Result
		out.Stage, out.Verdict, out.Reasons, out.ReportURL = res.Stage, res.Verdict, res.Reasons, reportURL(id)
		out.StartedAt, out.Timings = res.StartedAt, res.Timings
	default:
		if o.Err != nil {
			out.Error = o.Err.Error()
			out.BadInput = o.BadInput()
		}
	}
	return out
}

func (s *Server) getReport(w http.ResponseWriter, r *http.Request) {
	sc, ok := s.lookup(w, r)
	if !ok {
		return
	}
	if sc.Status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		writeProblem(w, r, http.StatusConflict, "not-finished", "the scan has no report (yet): see its status")
		return
	}
	out, err := s.scans.Read(r.Context(), sc, 0)
	if err == nil && out.Status != control.StatusCompleted {
		err = out.Err
	}
	if err != nil {
		s.internal(w, r, "read scan result", err)
		return
	}
	res := out.Result
	format := strings.ToLower(r.URL.Query().Get("format"))
	if format == "" {
		format = "json"
	}
	data, ctype, err := s.render(r.Context(), res, format)
	if errors.Is(err, errNoSuchFormat) {
		writeProblem(w, r, http.StatusBadRequest, "bad-request", err.Error())
		return
	}
	if errors.Is(err, errNoSBOM) {
		writeProblem(w, r, http.StatusNotFound, "not-found", err.Error())
		return
	}
	if err != nil {
		s.internal(w, r, "render report", err)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Write(data)
}

var (
	errNoSuchFormat = errors.New("format must be json, sarif, openvex, cyclonedx or spdx")
	errNoSBOM       = errors.New("the scan ended in the fast stage: it has no SBOM")
)

func (s *Server) render(ctx context.Context, res workflows.ScanResult, format string) ([]byte, string, error) {
	switch format {
	case "json", "sarif", "openvex":
		data, _, err := s.deps.Evidence.Get(ctx, res.Report.Key)
		if err != nil || format == "json" {
			return data, "application/json", err
		}
		var rep report.Report
		if err := json.Unmarshal(data, &rep); err != nil {
			return nil, "", err
		}
		if format == "openvex" {
			out, err := vex.Export(rep)
			return out, "application/json", err
		}
		out, err := report.SARIF(rep, s.cfg.Version)
		return out, "application/sarif+json", err
	case "cyclonedx", "spdx":
		name := map[string]string{"cyclonedx": "sbom.cdx.json", "spdx": "sbom.spdx.json"}[format]
		for _, e := range res.Evidence {
			if e.Name == name {
				data, _, err := s.deps.Evidence.Get(ctx, e.Key)
				return data, map[string]string{"cyclonedx": "application/vnd.cyclonedx+json", "spdx": "application/spdx+json"}[format], err
			}
		}
		return nil, "", errNoSBOM
	default:
		return nil, "", errNoSuchFormat
	}
}

// errProvenanceRefused is a submission whose prompts hold a secret the
// redactor could not take out (an encoded one it could not place, say): the
// record would be kept under an object lock nobody can lift, so it is
// refused (400) rather than stored.
var errProvenanceRefused = errors.New("provenance refused: a secret in the prompts cannot be redacted; remove it and submit again")

// storeProvenance redacts the prompts and stores the record as evidence.
func (s *Server) storeProvenance(ctx context.Context, scanID string, p Provenance) (report.Evidence, error) {
	if s.deps.Redactor == nil {
		return report.Evidence{}, errors.New("no redactor configured: refusing to store prompts unredacted")
	}
	redact := func(field, text string) (string, int, error) {
		out, n, err := s.deps.Redactor.Redact(ctx, text)
		if err != nil {
			if ctx.Err() != nil {
				return "", 0, fmt.Errorf("redact provenance %s: %w", field, err)
			}
			return "", 0, fmt.Errorf("%w (%s: %w)", errProvenanceRefused, field, err)
		}
		return out, n, nil
	}
	var n, m int
	var err error
	if p.Prompt, n, err = redact("prompt", p.Prompt); err != nil {
		return report.Evidence{}, err
	}
	if p.PromptTemplate, m, err = redact("prompt_template", p.PromptTemplate); err != nil {
		return report.Evidence{}, err
	}
	p.Redactions = n + m
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return report.Evidence{}, err
	}
	obj, err := s.deps.Evidence.Put(ctx, "scans/"+scanID+"/provenance.json", "application/json", data)
	if err != nil {
		return report.Evidence{}, err
	}
	if p.Redactions > 0 {
		s.deps.Logger.InfoContext(ctx, "secrets redacted from provenance", "scan_id", scanID, "count", p.Redactions)
	}
	return report.Evidence{Name: "provenance.json", Bucket: obj.Bucket, Key: obj.Key, VersionID: obj.VersionID, SHA256: obj.SHA256}, nil
}
