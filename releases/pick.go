package releases

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/tollgate/tollgate/attest"
	"github.com/tollgate/tollgate/report"
)

// Skip is a release a rollback passed over, and why.
type Skip struct {
	ReleaseID string `json:"release_id"`
	Reason    string `json:"reason"`
}

// Pick is the release a rollback goes to and the newer ones it skipped.
type Pick struct {
	Release Status `json:"release"`
	// Evidence is how the release's scan evidence was checked.
	Evidence string `json:"evidence"`
	Skipped  []Skip `json:"skipped,omitempty"`
}

// PickTarget chooses the release to roll back to from release from: with to
// set, that release; otherwise the newest release recorded before from that
// is known-good. Either way the target must not be from, its scan must still
// pass (its stored verdict is not block), and its evidence must verify.
// On-call may name a release that never became known-good; the pick says so.
func (s *Store) PickTarget(ctx context.Context, tenant, app, from, to string) (Pick, error) {
	all, err := s.List(ctx, tenant, app)
	if err != nil {
		return Pick{}, err
	}
	if to != "" {
		if to == from {
			return Pick{}, fmt.Errorf("%w: %s is the release being rolled back", ErrNoTarget, to)
		}
		i := slices.IndexFunc(all, func(st Status) bool { return st.ID == to })
		if i < 0 {
			return Pick{}, fmt.Errorf("roll %s back to %s: release %w", app, to, ErrNotFound)
		}
		how, err := s.eligible(ctx, all[i])
		if err != nil {
			return Pick{}, fmt.Errorf("%w: release %s: %w", ErrNoTarget, to, err)
		}
		if all[i].KnownGood == nil {
			how += "; never marked known-good (chosen by name)"
		}
		return Pick{Release: all[i], Evidence: how}, nil
	}
	// Candidates are the releases before from, newest first. An unknown
	// from (a release deployed outside tollgate) leaves all of them.
	end := len(all)
	if i := slices.IndexFunc(all, func(st Status) bool { return st.ID == from }); i >= 0 {
		end = i
	}
	var skipped []Skip
	for i := end - 1; i >= 0; i-- {
		st := all[i]
		if st.KnownGood == nil {
			skipped = append(skipped, Skip{st.ID, "never healthy long enough to be known-good"})
			continue
		}
		how, err := s.eligible(ctx, st)
		if ctx.Err() != nil {
			return Pick{}, ctx.Err()
		}
		if err != nil {
			skipped = append(skipped, Skip{st.ID, err.Error()})
			continue
		}
		return Pick{Release: st, Evidence: how, Skipped: skipped}, nil
	}
	var why []string
	for _, sk := range skipped {
		why = append(why, sk.ReleaseID+": "+sk.Reason)
	}
	if len(why) == 0 {
		why = append(why, "no release was recorded before "+cmp.Or(from, "the current one"))
	}
	return Pick{Skipped: skipped}, fmt.Errorf("roll %s back from %s: %w (%s)", app, from, ErrNoTarget, strings.Join(why, "; "))
}

// eligible checks a release's scan still passes, and so does its newest
// re-match, and that its evidence verifies, and says how the evidence was
// checked.
func (s *Store) eligible(ctx context.Context, st Status) (string, error) {
	verdict, err := s.ScanVerdict(ctx, st.ScanID, st.App)
	if err != nil {
		return "", err
	}
	if verdict == report.VerdictBlock {
		return "", fmt.Errorf("scan %s: %w", st.ScanID, ErrBlocked)
	}
	// A release that passed its scan may have become block since, when its
	// SBOM was matched against a newer vulnerability DB: the newest
	// re-match is what the release stands on now.
	key, rematched, err := s.RematchVerdict(ctx, st.Tenant, st.App, st.ID)
	if err != nil {
		return "", err
	}
	if rematched == report.VerdictBlock {
		return "", fmt.Errorf("re-match %s: %w", key, ErrBlocked)
	}
	if s.Verifier != nil {
		check, err := attest.VerifyScan(ctx, s.Evidence, s.Verifier, st.ScanID)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("scan %s attestation signed by %s, %d objects verified", st.ScanID, check.KeyID, len(check.Objects)-1), nil
	}
	// Unsigned evidence: the verdict (read above) and the report must read
	// back intact.
	if _, _, err := s.Evidence.Get(ctx, path.Join("scans", st.ScanID, "report.json")); err != nil {
		return "", fmt.Errorf("%w: report of scan %s: %w", attest.ErrUnverified, st.ScanID, err)
	}
	return fmt.Sprintf("scan %s unsigned; verdict and report match their stored digests", st.ScanID), nil
}

// RematchPrefix is where a release's re-match records are stored; their
// keys sort by time.
func RematchPrefix(tenant, app, id string) string {
	return path.Join("apps", tenant, app, "releases", id, "rematch") + "/"
}

// RematchVerdict returns the key and verdict of a release's newest re-match
// record, or "" and "" when it was never re-matched. An unreadable newest
// record is an error: eligibility fails closed.
func (s *Store) RematchVerdict(ctx context.Context, tenant, app, id string) (string, report.Verdict, error) {
	keys, err := s.Lister.List(ctx, RematchPrefix(tenant, app, id))
	if err != nil {
		return "", "", fmt.Errorf("list re-matches of release %s of %s: %w", id, app, err)
	}
	keys = slices.DeleteFunc(keys, func(k string) bool { return path.Ext(k) != ".json" })
	if len(keys) == 0 {
		return "", "", nil
	}
	key := keys[len(keys)-1]
	raw, _, err := s.Evidence.Get(ctx, key)
	if err != nil {
		return key, "", fmt.Errorf("read re-match %s: %w", key, err)
	}
	var rec struct {
		Verdict report.Verdict `json:"verdict"`
	}
	if err := json.Unmarshal(raw, &rec); err != nil || rec.Verdict == "" {
		return key, "", fmt.Errorf("decode re-match %s: no verdict: %v", key, err)
	}
	return key, rec.Verdict, nil
}
