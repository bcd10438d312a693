package loadtest

import (
	"fmt"
	"slices"
	"time"
)

// summarize turns the outcomes of the measured scans into a Run.
func summarize(o DriverOptions, outs []outcome, measured, end time.Time, timeline []Sample, chaos []string, cpu map[string]float64) Run {
	r := Run{Name: o.Name, Clients: o.Clients, RatePerSecond: o.Rate, Chaos: o.Chaos != nil, Submitted: len(outs), ChaosEvents: chaos}
	fast, full := newLatencyHist(), newLatencyHist()
	perSecond := map[int][]time.Duration{}
	for _, out := range outs {
		switch {
		case out.err != nil && out.accepted:
			r.Lost++
			r.Errors++
		case out.err != nil:
			r.Errors++
		default:
			r.Completed++
			r.ScanIDs = append(r.ScanIDs, out.scanID)
			full.Record(out.done.Sub(out.submitted))
			fast.Record(out.fast)
			if out.fastDerived {
				r.FastDerived++
			}
			sec := int(out.done.Sub(measured).Seconds())
			perSecond[sec] = append(perSecond[sec], out.done.Sub(out.submitted))
			if out.verdict != out.expected {
				r.Wrong++
				r.WrongApps = append(r.WrongApps, fmt.Sprintf("%s: %s in %s, expected %s", out.app, out.verdict, out.stage, out.expected))
			}
		}
		if out.err != nil && len(r.ErrorExamples) < 10 {
			r.ErrorExamples = append(r.ErrorExamples, out.err.Error())
		}
	}
	r.DurationS = end.Sub(measured).Seconds()
	if r.DurationS > 0 {
		r.Throughput = float64(r.Completed) / r.DurationS
	}
	r.Fast, r.Full = fast.Summary(), full.Summary()
	for i := range timeline {
		s := &timeline[i]
		lat := perSecond[int(s.Elapsed)-1]
		s.Completed = len(lat)
		if len(lat) > 0 {
			slices.Sort(lat)
			s.P50 = lat[len(lat)/2].Seconds()
			s.P99 = lat[min(len(lat)-1, len(lat)*99/100)].Seconds()
		}
	}
	r.Timeline = timeline
	if cpu != nil {
		r.CPUSeconds, r.CPUPerScan = map[string]float64{}, map[string]float64{}
		var total float64
		for _, c := range Components {
			// A component the stack has not (postgres on the dev servers)
			// is left out, not shown as 0.
			if v, ok := cpu[c]; ok {
				r.CPUSeconds[c] = v
				total += v
			}
		}
		r.CPUSeconds["total"] = total
		if v, ok := cpu[Driver]; ok {
			r.CPUSeconds[Driver] = v
		}
		if r.Completed > 0 {
			for c, v := range r.CPUSeconds {
				r.CPUPerScan[c] = v / float64(r.Completed)
			}
		}
	}
	return r
}
