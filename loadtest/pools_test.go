package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/apiclient"
)

// poolsRow is one pool in the output of `tollgate pools --json`.
type poolsRow struct {
	Pool        string  `json:"pool"`
	Pending     uint64  `json:"pending"`
	AckPending  int     `json:"ack_pending"`
	Throughput  float64 `json:"throughput"`
	OldestAgeS  float64 `json:"oldest_age_s"`
	WorkersNeed int     `json:"workers_need"`
	Arithmetic  string  `json:"arithmetic"`
}

type poolsJSON struct {
	Pools []poolsRow `json:"pools"`
}

// pools runs `tollgate pools --json` against the fleet.
func pools(ctx context.Context, t *testing.T, bin string, f *Fleet) poolsJSON {
	t.Helper()
	out, err := exec.CommandContext(ctx, bin, "pools", "--server", f.URL, "--token", f.Token, "--json", "--interval", "300ms").Output()
	if err != nil {
		t.Fatalf("tollgate pools: %v", err)
	}
	var p poolsJSON
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("tollgate pools printed %q: %v", out, err)
	}
	return p
}

// With the workers stopped, `tollgate pools --json` shows the submitted
// scans' tasks pending and asks for workers; once workers start, the queue
// drains.
func TestPoolsReportsPendingWork(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	fleet, bin := startTestFleet(ctx, t)
	fleet.StopWorkers()
	jobs := smokeJobs(t)
	c, err := apiclient.New(fleet.URL, fleet.Token, http.DefaultClient)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 6 {
		st, err := c.Submit(ctx, apiclient.Submission{
			Metadata:       api.Metadata{App: jobs[i%len(jobs)].App, Commit: fmt.Sprintf("%012x", i+1)},
			Archive:        jobs[i%len(jobs)].Archive,
			IdempotencyKey: fmt.Sprintf("pools-%d", i),
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, st.ScanID)
	}
	// Each scan's fast task is dispatched and waits: pending rises to 6.
	var fast poolsRow
	for deadline := time.Now().Add(time.Minute); ; {
		fast = row(pools(ctx, t, bin, fleet), "fast")
		if fast.Pending == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fast pool %+v, want 6 pending with no workers", fast)
		}
	}
	if fast.WorkersNeed < 1 || fast.OldestAgeS <= 0 || fast.Arithmetic == "" {
		t.Errorf("with a backlog and no workers: %+v", fast)
	}
	t.Logf("stopped: %+v", fast)

	if err := fleet.StartWorkers(1); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		for {
			st, err := c.Status(ctx, id, 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if st.Status != "running" {
				break
			}
		}
	}
	// The consumers count acks asynchronously: wait for both pools to show
	// the drain.
	for deadline := time.Now().Add(time.Minute); ; {
		p := pools(ctx, t, bin, fleet)
		fast, deep := row(p, "fast"), row(p, "deep")
		if fast.Pending+deep.Pending == 0 && fast.AckPending+deep.AckPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the workers started: fast %+v, deep %+v, want drained", fast, deep)
		}
	}
}

func row(p poolsJSON, pool string) poolsRow {
	for _, r := range p.Pools {
		if r.Pool == pool {
			return r
		}
	}
	return poolsRow{}
}
