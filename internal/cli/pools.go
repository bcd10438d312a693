package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/tasks"
)

type poolsOptions struct {
	server, token     string
	json, watch       bool
	interval, target  time.Duration
	workerConcurrency int
}

func newPoolsCmd(g *globals) *cobra.Command {
	o := &poolsOptions{}
	cmd := &cobra.Command{
		Use:   "pools [--watch] [--json]",
		Short: "Show each worker pool's queue, throughput, and the workers it needs (role sre; your tenant's share only)",
		Long: `pools reads GET /v1/pools twice, --interval apart, and shows for each pool the
tasks pending (waiting for a worker), in progress and redelivered, the idle pull
requests of its workers, the throughput over the interval, the oldest task's age,
and how many workers would meet --target-wait, with the arithmetic:

  arrivals   λ = throughput + (pending now - pending before) / interval
  service    S = in progress / throughput           (Little's law)
  slots      = S × (λ + pending / target wait)      (keep up, and drain the backlog in time)
  workers    = ⌈slots / --worker-concurrency⌉

--watch repeats every interval; --json prints the numbers instead of a table.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runPools(cmd.Context(), g, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.server, "server", os.Getenv("TOLLGATE_SERVER"), "API base URL ($TOLLGATE_SERVER)")
	f.StringVar(&o.token, "token", os.Getenv("TOLLGATE_TOKEN"), "bearer token ($TOLLGATE_TOKEN)")
	f.BoolVar(&o.json, "json", false, "print JSON")
	f.BoolVar(&o.watch, "watch", false, "refresh every --interval until interrupted")
	f.DurationVar(&o.interval, "interval", 2*time.Second, "time between the two readings (and between refreshes)")
	f.DurationVar(&o.target, "target-wait", 30*time.Second, "the longest a task should wait for a worker")
	f.IntVar(&o.workerConcurrency, "worker-concurrency", 2, "tasks one worker runs at once (TOLLGATE_WORKER_CONCURRENCY of the workers)")
	return cmd
}

// PoolReport is one pool's reading and what it needs.
type PoolReport struct {
	tasks.PoolStatus
	OldestAgeS  float64 `json:"oldest_age_s"`
	Throughput  float64 `json:"throughput"`   // tasks delivered per second over the interval
	Arrivals    float64 `json:"arrivals"`     // tasks arriving per second
	ServiceS    float64 `json:"service_s"`    // mean time a task is in progress
	Slots       float64 `json:"slots"`        // tasks at once needed
	WorkersNeed int     `json:"workers_need"` // workers needed
	Arithmetic  string  `json:"arithmetic"`
}

func runPools(ctx context.Context, g *globals, o *poolsOptions) error {
	if o.interval <= 0 || o.target <= 0 || o.workerConcurrency < 1 {
		return usageErrf("--interval and --target-wait must be positive, --worker-concurrency at least 1")
	}
	c, err := newAPIClient(o.server, o.token, 30*time.Second)
	if err != nil {
		return err
	}
	var before api.PoolsStatus
	if err := c.get(ctx, "/v1/pools", &before); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.interval):
		}
		var now api.PoolsStatus
		if err := c.get(ctx, "/v1/pools", &now); err != nil {
			return err
		}
		reports := poolReports(before, now, o.target, o.workerConcurrency)
		if o.json {
			if err := writeJSONTo(g.stdout, map[string]any{"at": now.At, "target_wait_s": o.target.Seconds(), "pools": reports}); err != nil {
				return err
			}
		} else {
			printPools(g.stdout, now.At, reports, o.target)
		}
		if !o.watch {
			return nil
		}
		before = now
	}
}

// poolReports works out each pool's throughput and needs from two readings.
func poolReports(before, now api.PoolsStatus, target time.Duration, concurrency int) []PoolReport {
	dt := now.At.Sub(before.At).Seconds()
	prev := map[string]tasks.PoolStatus{}
	for _, p := range before.Pools {
		prev[p.Pool] = p
	}
	var out []PoolReport
	for _, p := range now.Pools {
		r := PoolReport{PoolStatus: p}
		if !p.Oldest.IsZero() {
			r.OldestAgeS = now.At.Sub(p.Oldest).Seconds()
		}
		b := prev[p.Pool]
		if dt > 0 && p.Delivered >= b.Delivered {
			r.Throughput = float64(p.Delivered-b.Delivered) / dt
			r.Arrivals = max(r.Throughput+(float64(p.Pending)-float64(b.Pending))/dt, 0)
		}
		switch {
		case r.Throughput > 0:
			r.ServiceS = float64(p.AckPending) / r.Throughput
		case p.AckPending > 0:
			r.ServiceS = dt // nothing finished in the interval: at least that long
		}
		r.Slots = r.ServiceS * (r.Arrivals + float64(p.Pending)/target.Seconds())
		r.WorkersNeed = int(math.Ceil(r.Slots / float64(concurrency)))
		if r.Throughput == 0 && p.Pending > 0 {
			// Nothing finished: no service time to measure, and a backlog.
			r.WorkersNeed = max(r.WorkersNeed, 1)
			r.Arithmetic = fmt.Sprintf("no task finished in %.1fs and %d are pending (oldest %.0fs): no worker is taking them; at least 1 worker", dt, p.Pending, r.OldestAgeS)
			out = append(out, r)
			continue
		}
		r.Arithmetic = fmt.Sprintf("λ = %.2f + (%d - %d) / %.1fs = %.2f/s; S = %d / %.2f = %.2fs; slots = %.2f × (%.2f + %d / %.0fs) = %.2f; workers = ⌈%.2f / %d⌉ = %d",
			r.Throughput, p.Pending, b.Pending, dt, r.Arrivals, p.AckPending, r.Throughput, r.ServiceS,
			r.ServiceS, r.Arrivals, p.Pending, target.Seconds(), r.Slots, r.Slots, concurrency, r.WorkersNeed)
		out = append(out, r)
	}
	return out
}

func printPools(w io.Writer, at time.Time, reports []PoolReport, target time.Duration) {
	fmt.Fprintf(w, "%s (target wait %s)\n", at.Format(time.RFC3339), target)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\tPENDING (CI/BULK)\tIN PROGRESS\tREDELIVERED\tIDLE PULLS\tTHROUGHPUT/s\tOLDEST\tWORKERS NEEDED")
	for _, r := range reports {
		var ci, bulk uint64
		for _, q := range r.Priorities {
			switch q.Priority {
			case tasks.PriorityCI:
				ci = q.Pending
			case tasks.PriorityBulk:
				bulk = q.Pending
			}
		}
		fmt.Fprintf(tw, "%s\t%d (%d/%d)\t%d\t%d\t%d\t%.2f\t%.1fs\t%d\n", r.Pool, r.Pending, ci, bulk, r.AckPending, r.Redelivered, r.Waiting, r.Throughput, r.OldestAgeS, r.WorkersNeed)
	}
	tw.Flush()
	for _, r := range reports {
		fmt.Fprintf(w, "  %s: %s\n", r.Pool, r.Arithmetic)
		for _, q := range r.Priorities {
			fmt.Fprintf(w, "  %s %s: consumer %s, %d pending, %d in progress, %d idle pulls\n", r.Pool, q.Priority, q.Consumer, q.Pending, q.AckPending, q.Waiting)
		}
		if len(r.Tenants) == 0 {
			continue
		}
		// The API shows the caller's own tenant's work only, against the
		// per-tenant cap; of the others, only how many have work.
		var own []string
		for _, t := range r.Tenants {
			own = append(own, fmt.Sprintf("%s %s %d/%d", cmp.Or(t.Tenant, "(local)"), t.Priority, t.Tasks, r.TenantCap))
		}
		fmt.Fprintf(w, "  %s your tenant: %s (of %d tenants with work)\n", r.Pool, strings.Join(own, ", "), max(r.TenantsWithWork, 1))
	}
}
