package loadtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	tclient "go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/tollgate/tollgate/stack"
)

// TestHistoryEventsSampleTheWholeRun: the history sample is spread over the
// run's completed scans, first to last, and failed scans are not in it.
func TestHistoryEventsSampleTheWholeRun(t *testing.T) {
	var outs []outcome
	events := map[string]int{}
	for i := range 100 {
		id := fmt.Sprintf("s%02d", i)
		events[id] = i
		outs = append(outs, outcome{scanID: id})
		if i%10 == 0 {
			outs = append(outs, outcome{scanID: "failed", err: errors.New("lost")})
		}
	}
	var counted []string
	mean, n, err := historyEvents(context.Background(), func(_ context.Context, id string) (int, error) {
		counted = append(counted, id)
		if id == "failed" {
			t.Errorf("counted a failed scan")
		}
		return events[id], nil
	}, outs)
	if err != nil {
		t.Fatal(err)
	}
	if n != historySample || len(counted) != historySample || counted[0] != "s00" || counted[n-1] != "s95" {
		t.Fatalf("sampled %d: %v; want %d from s00 to s95", n, counted, historySample)
	}
	if mean != 47.5 { // 0, 5, ..., 95
		t.Errorf("mean %g events, want 47.5", mean)
	}
	if _, n, err := historyEvents(context.Background(), nil, nil); n != 0 || err != nil {
		t.Errorf("no scans: sample %d, %v", n, err)
	}
}

// TestFleetCountsAScansHistoryEvents reads a real workflow's history by its
// scan id, as the load test does for the runs' scans.
func TestFleetCountsAScansHistoryEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts a Temporal dev server")
	}
	ctx := context.Background()
	d, err := stack.StartTemporalDev(ctx, stack.TemporalDevOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	c, err := tclient.Dial(tclient.Options{HostPort: d.Addr, Namespace: d.Namespace, Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	f := &Fleet{history: c}
	// A workflow nobody polls: started, and its first task scheduled.
	if _, err := c.ExecuteWorkflow(ctx, tclient.StartWorkflowOptions{ID: "scan-s1", TaskQueue: "nobody-polls"}, "ScanWorkflow"); err != nil {
		t.Fatal(err)
	}
	if n, err := f.HistoryEvents(ctx, "s1"); err != nil || n != 2 {
		t.Errorf("history of scan s1: %d events, %v; want 2 (started, task scheduled)", n, err)
	}
	if _, err := f.HistoryEvents(ctx, "no-such-scan"); err == nil {
		t.Error("the history of a scan that does not exist was read")
	}
}

// TestCPUCountsLiveDescendants: a component's CPU holds the processes it
// started that are still running (the workers' warm sandbox children),
// which its own /proc figures leave out until they are reaped.
func TestCPUCountsLiveDescendants(t *testing.T) {
	// The outer shell starts an inner one that spins, says so and then
	// waits on its stdin, alive, until the test ends.
	cmd := exec.Command("sh", "-c", `sh -c 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo spun; read x'; true`)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "spun\n" {
		t.Fatalf("inner shell said %q, %v", line, err)
	}
	procs := readProcs()
	outer := cmd.Process.Pid
	var inner int
	for p, pp := range procs.parent {
		if pp == outer {
			inner = p
		}
	}
	if inner == 0 {
		t.Fatal("the inner shell is not under the outer one in /proc")
	}
	if procs.cpu[inner] <= 0 {
		t.Fatalf("the inner shell spun but shows %g CPU-s", procs.cpu[inner])
	}
	if got, want := procs.treeCPU(outer), procs.cpu[outer]+procs.cpu[inner]; got != want {
		t.Errorf("tree CPU %g, want the outer's %g and the inner's %g", got, procs.cpu[outer], procs.cpu[inner])
	}
}

// TestCPUKeepsAKilledWorkersScanners: a worker killed with its sandboxed
// children (the chaos run) keeps the children's CPU read before the kill;
// the scanners' count never goes back.
func TestCPUKeepsAKilledWorkersScanners(t *testing.T) {
	f := &Fleet{procs: map[string][]*proc{}, gone: map[string]float64{}}
	cmd := exec.Command("sh", "-c", `sh -c 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo spun; read x'; true`)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close() })
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // killed as a group, as a worker's sandbox dies with it
	p, err := f.startCmd("workers", cmd)
	if err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(p.out.String(), "spun") { // the inner shell's output: it has spun
		select {
		case <-p.done:
			t.Fatalf("the shell ended early: %s", p.out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	before := f.CPU()
	if before["scanners"] <= 0 {
		t.Fatalf("CPU %v: the live child's CPU is not under scanners", before)
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	if after := f.CPU(); after["scanners"] < before["scanners"] || after["workers"] < before["workers"] {
		t.Errorf("CPU went back after the kill: before %v, after %v", before, after)
	}
}
