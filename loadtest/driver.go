package loadtest

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/apiclient"
)

// Job is one app to submit: its name, packed source and expected verdict.
type Job struct {
	App      string
	Archive  []byte
	Expected string
}

// DriverOptions configure one measured run.
type DriverOptions struct {
	Name       string
	URL, Token string
	Jobs       []Job // submitted round robin
	// Clients > 0 runs closed-loop: each client submits, waits for the
	// verdict, and submits again. Rate > 0 runs open-loop: submissions
	// arrive at Rate per second (Poisson), each waited on by its own client.
	Clients int
	Rate    float64
	// Scans are measured after Warmup scans (not counted) have finished.
	Scans, Warmup int
	// Timeout bounds one scan, submit to verdict (default 10 minutes).
	Timeout time.Duration
	// Pools samples the queues once a second; CPU reads the fleet's CPU
	// counters (both optional).
	// With CPU set, the run also reports this process's own CPU (Driver).
	Pools func(ctx context.Context) map[string]PoolStats
	CPU   func() map[string]float64
	// S3Requests reads the evidence store's request counter, and
	// HistoryEvents counts one scan's workflow history events (optional):
	// the run reports both per scan, the events over a sample of its scans.
	S3Requests    func(ctx context.Context) (float64, error)
	HistoryEvents func(ctx context.Context, scanID string) (int, error)
	// Chaos, when set, is called once a third of the way into the measured
	// scans and returns what it did.
	Chaos func(ctx context.Context) []string
	// Drills, when set, starts with the measured scans and runs beside
	// them; the clients keep submitting past Scans until it returns.
	// completed counts the measured scans finished so far, since is when
	// the measured part began.
	Drills func(ctx context.Context, since time.Time, completed func() int) []Drill
	// Seq makes commits unique across runs on one fleet.
	Seq *int64
}

// outcome is one scan as the client saw it.
type outcome struct {
	app, expected, verdict, stage string
	scanID                        string
	submitted, done               time.Time
	fast                          time.Duration
	fastDerived                   bool // fast comes from the workflow's timings
	err                           error
	accepted                      bool
}

// Drive runs one load test run against the API and measures it.
func Drive(ctx context.Context, o DriverOptions) (Run, error) {
	if len(o.Jobs) == 0 || o.Scans <= 0 || (o.Clients <= 0 && o.Rate <= 0) {
		return Run{}, fmt.Errorf("load run %q: needs jobs, scans, and clients or a rate", o.Name)
	}
	o.Timeout = cmp.Or(o.Timeout, 10*time.Minute)
	if o.Seq == nil {
		o.Seq = new(int64)
	}
	ac, err := apiclient.New(o.URL, o.Token, &http.Client{Timeout: 90 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1024}})
	if err != nil {
		return Run{}, fmt.Errorf("load run %q: %w", o.Name, err)
	}
	c := &client{api: ac}
	// The warm-up is a phase of its own: it ends before the measured scans
	// begin, so that neither overlaps the other.
	if o.Warmup > 0 {
		phase(ctx, o, c, o.Warmup, nil, nil)
	}
	measured := time.Now()
	var cpuStart map[string]float64
	var selfStart float64
	if o.CPU != nil {
		cpuStart, selfStart = o.CPU(), selfCPU()
	}
	var measureErrs []error
	var s3Start float64
	if o.S3Requests != nil {
		var err error
		if s3Start, err = o.S3Requests(ctx); err != nil {
			measureErrs = append(measureErrs, err)
		}
	}
	var (
		mu       sync.Mutex
		outcomes = make([]outcome, 0, o.Scans)
	)
	// Samples and chaos run beside the clients.
	sctx, stopSampling := context.WithCancel(ctx)
	var timeline []Sample
	var chaosEvents []string
	var drills []Drill
	var drillsEnd time.Time
	var drilling chan struct{} // open while the drills run
	var bg sync.WaitGroup
	if o.Drills != nil {
		drilling = make(chan struct{})
		completed := func() int {
			mu.Lock()
			defer mu.Unlock()
			return len(outcomes)
		}
		bg.Add(1)
		go func() {
			defer bg.Done()
			defer close(drilling)
			drills = o.Drills(ctx, measured, completed)
			drillsEnd = time.Now()
		}()
	}
	bg.Add(1)
	go func() {
		defer bg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		chaosAt := max(o.Scans/3, 1)
		for {
			select {
			case <-sctx.Done():
				return
			case now := <-tick.C:
				s := Sample{At: now, Elapsed: now.Sub(measured).Seconds()}
				if o.Pools != nil {
					s.Pools = o.Pools(sctx)
				}
				mu.Lock()
				done := len(outcomes)
				mu.Unlock()
				timeline = append(timeline, s)
				if o.Chaos != nil && chaosAt > 0 && done >= chaosAt {
					chaosAt = 0
					bg.Add(1)
					go func() {
						defer bg.Done()
						ev := o.Chaos(sctx)
						mu.Lock()
						chaosEvents = append(chaosEvents, ev...)
						mu.Unlock()
					}()
				}
			}
		}
	}()
	phase(ctx, o, c, o.Scans, drilling, func(out outcome) {
		mu.Lock()
		outcomes = append(outcomes, out)
		mu.Unlock()
	})
	end := time.Now()
	stopSampling()
	bg.Wait()
	var cpu map[string]float64
	if o.CPU != nil {
		cpu = o.CPU()
		for k, v := range cpuStart {
			cpu[k] -= v
		}
		cpu[Driver] = selfCPU() - selfStart
	}
	r := summarize(o, outcomes, measured, end, timeline, chaosEvents, cpu)
	if drills != nil {
		var done []float64
		for _, out := range outcomes {
			if out.err == nil {
				done = append(done, out.done.Sub(measured).Seconds())
			}
		}
		// The last drill's window ends with the drills (the fleet had
		// recovered and settled), not with the slowest scan's verdict.
		assessDrills(drills, done, drillsEnd.Sub(measured).Seconds())
		r.Drills = drills
	}
	if o.S3Requests != nil && len(measureErrs) == 0 && r.Completed > 0 {
		if s3End, err := o.S3Requests(ctx); err != nil {
			measureErrs = append(measureErrs, err)
		} else {
			r.S3Requests = (s3End - s3Start) / float64(r.Completed)
		}
	}
	if o.HistoryEvents != nil {
		var err error
		if r.HistoryEvents, r.HistorySample, err = historyEvents(ctx, o.HistoryEvents, outcomes); err != nil {
			measureErrs = append(measureErrs, err)
		}
	}
	for _, err := range measureErrs {
		r.ErrorExamples = append(r.ErrorExamples, "measure: "+err.Error())
	}
	return r, nil
}

// historySample is how many of a run's scans have their history counted.
const historySample = 20

// historyEvents is the mean history length of up to historySample completed
// scans, taken evenly over the run, and how many it counted.
func historyEvents(ctx context.Context, count func(context.Context, string) (int, error), outs []outcome) (float64, int, error) {
	var done []string
	for _, out := range outs {
		if out.err == nil && out.scanID != "" {
			done = append(done, out.scanID)
		}
	}
	n := min(historySample, len(done))
	total := 0
	for i := range n {
		events, err := count(ctx, done[i*len(done)/n])
		if err != nil {
			return 0, 0, err
		}
		total += events
	}
	if n == 0 {
		return 0, 0, nil
	}
	return float64(total) / float64(n), n, nil
}

// phase submits n scans, closed-loop (o.Clients clients) or open-loop
// (o.Rate arrivals per second), and more while until is open (when not
// nil), waits for all of them and hands each outcome to done (when not
// nil).
func phase(ctx context.Context, o DriverOptions, c *client, n int, until <-chan struct{}, done func(outcome)) {
	var mu sync.Mutex
	next := 0
	// take hands out the next submission's commit number, unique on this
	// fleet so that no two submissions are deduplicated into one scan.
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if (next >= n && !open(until)) || ctx.Err() != nil {
			return 0, false
		}
		next++
		*o.Seq++
		return int(*o.Seq), true
	}
	one := func(seq int) {
		job := o.Jobs[seq%len(o.Jobs)]
		sctx, cancel := context.WithTimeout(ctx, o.Timeout)
		out := c.scan(sctx, job, seq)
		cancel()
		if done != nil {
			done(out)
		}
	}
	var wg sync.WaitGroup
	if o.Clients > 0 {
		for range min(o.Clients, n) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					seq, ok := take()
					if !ok {
						return
					}
					one(seq)
				}
			}()
		}
		wg.Wait()
		return
	}
	// Open loop: Poisson arrivals, each with its own client; the schedule
	// does not wait for verdicts.
	rng := rand.New(rand.NewPCG(uint64(n), uint64(len(o.Jobs))))
	at := time.Now()
	for {
		seq, ok := take()
		if !ok {
			break
		}
		wg.Add(1)
		go func() { defer wg.Done(); one(seq) }()
		at = at.Add(time.Duration(rng.ExpFloat64() / o.Rate * float64(time.Second)))
		if d := time.Until(at); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
	}
	wg.Wait()
}

// open says whether ch is a channel not yet closed.
func open(ch <-chan struct{}) bool {
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return false
	default:
		return true
	}
}

// client talks to the API the way CI does.
type client struct{ api *apiclient.Client }

// scan submits a job and waits for its verdict. Submissions are retried with
// the same Idempotency-Key, so a retry never makes a second scan.
func (c *client) scan(ctx context.Context, job Job, seq int) outcome {
	out := outcome{app: job.App, expected: job.Expected, submitted: time.Now()}
	sub := apiclient.Submission{
		Metadata:       api.Metadata{App: job.App, Commit: fmt.Sprintf("%012x", seq)},
		Archive:        job.Archive,
		IdempotencyKey: "load-" + strconv.Itoa(seq),
	}
	var st api.ScanStatus
	var err error
	for attempt := range 8 {
		if st, err = c.api.Submit(ctx, sub); err == nil {
			break
		}
		if ctx.Err() != nil {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 250 * time.Millisecond)
	}
	if err != nil {
		out.err = fmt.Errorf("submit %s: %w", job.App, err)
		return out
	}
	out.accepted, out.scanID = true, st.ScanID
	for st.Status == "running" || st.Status == "" {
		if ctx.Err() != nil {
			out.err = fmt.Errorf("scan %s of %s: no verdict: %w", st.ScanID, job.App, ctx.Err())
			return out
		}
		// The longest wait the API allows: a closed loop's latency (about
		// 37 s at 300 in flight) fits in one wait, not two plus a query.
		next, err := c.api.Status(ctx, st.ScanID, api.MaxWait)
		if err != nil {
			time.Sleep(250 * time.Millisecond) // the API or Temporal restarting
			continue
		}
		st = next
	}
	out.done = time.Now()
	if st.Status != "completed" {
		out.err = fmt.Errorf("scan %s of %s: %s: %s", st.ScanID, job.App, st.Status, st.Error)
		return out
	}
	out.verdict, out.stage = string(st.Verdict), st.Stage
	out.fast = out.done.Sub(out.submitted)
	// A scan that ran the deep stage (also one whose verdict the fast
	// stage decided, under TOLLGATE_SCAN_FULL) had its fast verdict before
	// the client saw the final one.
	_, deep := st.Timings["deep"]
	if f, ok := st.Timings["fast"]; ok && deep && !st.StartedAt.IsZero() {
		out.fast = st.StartedAt.Add(time.Duration(f * float64(time.Second))).Sub(out.submitted)
		out.fastDerived = true
	}
	return out
}
