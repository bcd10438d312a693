package loadtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/stack"
	"github.com/tollgate/tollgate/tasks"
)

// Drill is one failure injected into the production-shaped stack during a
// run, and what it did to the fleet.
type Drill struct {
	Name string `json:"name"`
	// Actions say what was done, in order, with times.
	Actions []string `json:"actions"`
	// StartS is when the failure began and EndS when it was undone (the
	// killed process started again, the drive or the partition healed), in
	// seconds since the measured part of the run began.
	StartS float64 `json:"start_s"`
	EndS   float64 `json:"end_s"`
	// LongestStallS is the longest time in which no scan finished, within
	// the drill's window (its start to the next drill's, or the run's end).
	LongestStallS float64 `json:"longest_stall_s"`
	// RecoveredS is how long after StartS the fleet finished scans at half
	// its steady rate or more again, over 5-second windows, and stayed so
	// (0: it never fell below; -1: not within the window).
	RecoveredS float64 `json:"recovered_s"`
	Err        string  `json:"error,omitempty"`
}

// DrillStep is one failure: Inject causes it, and after Hold, Heal undoes
// it (a kill's Heal starts the process again).
type DrillStep struct {
	Name   string
	Inject func(ctx context.Context) (string, error)
	Hold   time.Duration
	Heal   func(ctx context.Context) (string, error)
}

// DrillPlan is the steps and how long each is held.
type DrillPlan struct {
	// Down is how long a killed NATS node stays down; Drive how long the
	// MinIO drive stays failed; Partition how long the NATS node stays cut
	// off.
	Down, Drive, Partition time.Duration
	// Steady is how long the run goes before the first drill, to measure
	// its steady rate; Settle how long the fleet runs at that rate again
	// before the next drill.
	Steady, Settle time.Duration
	// MaxRecovery bounds the wait for the rate to come back after a drill.
	MaxRecovery time.Duration
}

// FullDrills is the drill plan of `loadtest -drills`; CIDrills the short
// one the tests run.
var (
	FullDrills = DrillPlan{Down: 15 * time.Second, Drive: time.Minute, Partition: 30 * time.Second,
		Steady: 20 * time.Second, Settle: 10 * time.Second, MaxRecovery: 90 * time.Second}
	CIDrills = DrillPlan{Down: 3 * time.Second, Drive: 5 * time.Second, Partition: 5 * time.Second,
		Steady: 5 * time.Second, Settle: 2 * time.Second, MaxRecovery: 60 * time.Second}
)

// DrillSteps are the drills of issue 15 on the fleet's production stack:
// the JetStream meta leader and then the tasks stream's leader SIGKILLed
// and brought back, one MinIO drive failed and healed, the Temporal server
// restarted, PostgreSQL restarted, a deep worker and the orchestrator
// SIGKILLed, and (when a NATS node was isolated) that node partitioned
// from the other two and healed.
func (f *Fleet) DrillSteps(plan DrillPlan) ([]DrillStep, error) {
	p := f.prod
	if p == nil {
		return nil, errors.New("drills: the fleet runs on the development servers, not the production-shaped stack")
	}
	stream := tasks.StreamConfig{}.Name()
	steps := []DrillStep{
		f.natsLeaderKill("JetStream meta leader", plan.Down, func(ctx context.Context) (string, error) {
			n, err := p.NATS.MetaLeader(ctx)
			if err != nil {
				return "", err
			}
			return n.Name, nil
		}),
		f.natsLeaderKill("stream leader ("+stream+")", plan.Down, func(ctx context.Context) (string, error) {
			n, err := p.NATS.StreamLeader(ctx, stream)
			if err != nil {
				return "", err
			}
			return n.Name, nil
		}),
		{Name: "MinIO drive failure", Hold: plan.Drive,
			Inject: func(context.Context) (string, error) {
				return fmt.Sprintf("drive 2 (%s) made unusable: a file in its folder's place", p.MinIO.Drive(2)), p.MinIO.FailDrive(2)
			},
			Heal: func(context.Context) (string, error) { return "drive 2 healed", p.MinIO.HealDrive(2) },
		},
		restart("Temporal server", p.Temporal),
		restart("PostgreSQL", p.Postgres),
		{Name: "deep worker and orchestrator SIGKILL",
			Inject: func(context.Context) (string, error) {
				w, err := f.KillWorker("deep")
				if err != nil {
					return "", err
				}
				o, err := f.killAndReplace("orchestrator", func(*proc) bool { return true })
				return w + "; " + o, err
			},
		},
	}
	if len(f.opts.NATSIsolated) > 0 {
		name := f.opts.NATSIsolated[0]
		n := p.NATS.Node(name)
		if n == nil {
			return nil, fmt.Errorf("drills: no NATS node %q to partition", name)
		}
		steps = append(steps, DrillStep{Name: "NATS partition", Hold: plan.Partition,
			Inject: func(ctx context.Context) (string, error) {
				return "NATS node " + name + " cut off from the other two and its clients (the veth in its network namespace down)", n.Partition(ctx)
			},
			Heal: func(ctx context.Context) (string, error) { return "NATS node " + name + " reconnected", n.Heal(ctx) },
		})
	}
	return steps, nil
}

// restart is the drill that stops a server and starts it again.
func restart(name string, s interface {
	Pid() int
	Restart(context.Context) error
}) DrillStep {
	return DrillStep{Name: name + " restart",
		Inject: func(ctx context.Context) (string, error) {
			old := s.Pid()
			if err := s.Restart(ctx); err != nil {
				return "", err
			}
			return fmt.Sprintf("%s (pid %d) stopped and started again (pid %d)", name, old, s.Pid()), nil
		},
	}
}

// natsLeaderKill SIGKILLs the node that leader names and starts it again
// after down.
func (f *Fleet) natsLeaderKill(what string, down time.Duration, leader func(context.Context) (string, error)) DrillStep {
	var killed string
	return DrillStep{Name: "NATS " + what + " SIGKILL", Hold: down,
		Inject: func(ctx context.Context) (string, error) {
			name, err := awaitLeader(ctx, leader)
			if err != nil {
				return "", err
			}
			n := f.prod.NATS.Node(name)
			pid := n.Pid()
			n.Kill()
			killed = name
			return fmt.Sprintf("SIGKILL NATS node %s (pid %d), the %s", name, pid, what), nil
		},
		Heal: func(ctx context.Context) (string, error) {
			if killed == "" {
				return "", nil
			}
			n := f.prod.NATS.Node(killed)
			if err := n.Start(ctx); err != nil {
				return "", err
			}
			return fmt.Sprintf("NATS node %s started again (pid %d) and caught up", killed, n.Pid()), nil
		},
	}
}

// awaitLeader asks for a group's leader, again every half second for up
// to 15 s while an election is under way (stack.ErrNoLeader).
func awaitLeader(ctx context.Context, leader func(context.Context) (string, error)) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		name, err := leader(ctx)
		if err == nil || !errors.Is(err, stack.ErrNoLeader) {
			return name, err
		}
		select {
		case <-ctx.Done():
			return "", err
		case <-tick.C:
		}
	}
}

// RunDrills runs steps one after the other beside a run's clients:
// before the first it measures the fleet's steady rate for plan.Steady;
// after each it waits until the fleet finishes scans at half that rate
// again (at most plan.MaxRecovery) and then plan.Settle. completed counts
// the run's finished scans so far; since is the start of the measured run.
//
// before, when set, runs before each drill: the fleet's CPU reading, so
// that a process the drill kills or restarts keeps the CPU it used.
func RunDrills(ctx context.Context, logger *slog.Logger, plan DrillPlan, steps []DrillStep, since time.Time, completed func() int, before func()) []Drill {
	at := func() float64 { return time.Since(since).Seconds() }
	stamp := func(s string) string { return fmt.Sprintf("%.1f s: %s", at(), s) }
	n0 := completed()
	wait(ctx, plan.Steady)
	steady := float64(completed()-n0) / plan.Steady.Seconds()
	var out []Drill
	for _, s := range steps {
		if ctx.Err() != nil {
			break
		}
		if before != nil {
			before() // what the processes about to die have used
		}
		d := Drill{Name: s.Name, StartS: at()}
		logger.Info("drill", "name", s.Name)
		act, err := s.Inject(ctx)
		if act != "" {
			d.Actions = append(d.Actions, stamp(act))
		}
		if err == nil && s.Heal != nil {
			wait(ctx, s.Hold)
			act, err = s.Heal(ctx)
			if act != "" {
				d.Actions = append(d.Actions, stamp(act))
			}
		}
		d.EndS = at()
		if err != nil {
			d.Err = err.Error()
			d.Actions = append(d.Actions, stamp("failed: "+err.Error()))
		}
		awaitRate(ctx, completed, steady/2, plan.MaxRecovery)
		wait(ctx, plan.Settle)
		out = append(out, d)
	}
	return out
}

// wait returns after d or when ctx ends.
func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// awaitRate returns once the last 5 seconds finished at least rate scans a
// second, or after max.
func awaitRate(ctx context.Context, completed func() int, rate float64, max time.Duration) {
	const window = 5
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	deadline := time.After(max)
	var counts []int
	for {
		select {
		case <-ctx.Done():
			return
		case <-deadline:
			return
		case <-tick.C:
			counts = append(counts, completed())
			if len(counts) > window && float64(counts[len(counts)-1]-counts[len(counts)-1-window])/window >= rate {
				return
			}
		}
	}
}

// assessDrills fills in each drill's longest stall and recovery from the
// times the run's scans finished (seconds since the measured start, in
// any order), given the run's end and its steady rate.
func assessDrills(drills []Drill, done []float64, end float64) {
	done = slices.Sorted(slices.Values(done))
	if len(drills) == 0 {
		return
	}
	// The steady rate: scans a second before the first drill.
	steady := 0.0
	if first := drills[0].StartS; first > 0 {
		n := 0
		for _, t := range done {
			if t < first {
				n++
			}
		}
		steady = float64(n) / first
	}
	for i := range drills {
		d := &drills[i]
		from, to := d.StartS, end
		if i+1 < len(drills) {
			to = drills[i+1].StartS
		}
		// Longest gap between finishes, the window's edges included.
		prev := from
		for _, t := range done {
			if t < from || t > to {
				continue
			}
			d.LongestStallS = max(d.LongestStallS, t-prev)
			prev = t
		}
		d.LongestStallS = max(d.LongestStallS, min(to, end)-prev)
		// The end of the last 5-second window (stepping by a second) below
		// half the steady rate.
		const window = 5.0
		lastLow := -1.0
		for w := from; w+window <= to; w++ {
			n := 0
			for _, t := range done {
				if t >= w && t < w+window {
					n++
				}
			}
			if float64(n)/window < steady/2 {
				lastLow = w + window
			}
		}
		switch {
		case lastLow < 0:
			d.RecoveredS = 0
		case lastLow >= to-0.5:
			d.RecoveredS = -1 // still low when the window ended
		default:
			d.RecoveredS = lastLow - from
		}
	}
}

// DrillSummary is the drills' verdict in one line per check.
func DrillSummary(run Run) []string {
	var b []string
	b = append(b, fmt.Sprintf("%d scans submitted, %d completed, %d lost, %d wrong verdicts, %d errors.", run.Submitted, run.Completed, run.Lost, run.Wrong, run.Errors))
	if run.Evidence != nil {
		e := run.Evidence
		b = append(b, fmt.Sprintf("Evidence: %d of %d scans verified with `tollgate verify`; %d objects in %d scans' folders, %d of them with more than one version.",
			e.Verified, e.Scans, e.Objects, e.Scans, len(e.Duplicated)))
		if len(e.NotVerified) > 0 {
			b = append(b, "Not verified: "+strings.Join(e.NotVerified, ", "))
		}
		if len(e.Duplicated) > 0 {
			b = append(b, "More than one version: "+strings.Join(e.Duplicated, ", "))
		}
	}
	return b
}
