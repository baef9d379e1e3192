package proof

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/ebeautything/greenlight/internal/config"
	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/pipeline"
	"github.com/ebeautything/greenlight/internal/strategy"
)

const (
	// failAfter keeps the new version healthy through deploy and verify,
	// so it starts failing while monitoring watches it.
	failAfter = 8 * time.Second
	// minInterval and defaultInterval are monitor-interval's minimum and
	// default: the figure is taken at both.
	minInterval     = 100 * time.Millisecond
	defaultInterval = 10 * time.Second
	// pollEvery is the user's view: a client asking the router this often.
	pollEvery = 20 * time.Millisecond
	// safeStreak is how many healthy old-version answers in a row, at the
	// end of the poll, prove the old version serves alone.
	safeStreak = 10
)

// safetyRun is how many trials figure 3 makes at one interval.
type safetyRun struct {
	interval time.Duration
	trials   int
}

// safetyRuns are the trials of figure 3: at the minimum interval several,
// at the default interval (over a minute per trial) one per strategy.
func safetyRuns() []safetyRun {
	if *quick {
		return []safetyRun{{minInterval, 2}, {defaultInterval, 1}}
	}
	return []safetyRun{{minInterval, 5}, {defaultInterval, 1}}
}

// safetyTrial is one failing deploy and its rollback, timed.
type safetyTrial struct {
	// tts runs from the first failed request to the start of the final run
	// of old-version answers.
	tts time.Duration
	// detect runs from the first failed request to the rollback's start.
	detect time.Duration
	// switchTime is the rollback's own work: the selector switch and
	// endpoint confirmation for blue-green, undo and rollout for rolling.
	switchTime time.Duration
	// bound is SafetyBound of the run's inputs.
	bound time.Duration
	// caughtBy says which rule or stage started the rollback.
	caughtBy string
	// partial is how long after the first failure the new version still
	// answered some requests healthily: its pods did not fail at once.
	partial time.Duration
	// probeGap is the longest time between two of the monitor's probes in
	// the evidence of its verdict; the bound assumes one interval.
	probeGap time.Duration
	// interval is the trial's monitor-interval.
	interval time.Duration
}

// eventLog keeps the events of one pipeline run.
type eventLog struct {
	mu     sync.Mutex
	events []event.Event
}

func (l *eventLog) Handle(e event.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) first(kind event.Kind) (event.Event, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.events {
		if e.Kind == kind {
			return e, true
		}
	}
	return event.Event{}, false
}

// safetyTrial deploys sampleapp:v2, which fails failAfter after it
// starts, over a healthy v1 with greenlight's pipeline, while a client
// polls the router, and times how long users saw failures.
func (e *env) safetyTrial(b *testing.B, strategyName string, interval time.Duration) safetyTrial {
	b.Helper()
	ns := e.namespace(b)
	defer e.dropNamespace(ns) // the next trial has the machine to itself
	e.createApp(b, ns, "shop", "sampleapp:v1")
	// The Deployment keeps its default strategy (25 % surge): new pods start
	// the way users' rolling updates start them, not all at once.
	manifest := e.writeManifest(b, ns+".json", "shop", "sampleapp:placeholder",
		withEnv(corev1.EnvVar{Name: "SAMPLEAPP_FAIL_AFTER", Value: failAfter.String()}))
	// Monitoring outlasts the failure and the longest rollback by far.
	monitorFor := failAfter + 10*interval + 30*time.Second
	cfg, err := config.Load(config.MapLookup(map[string]string{
		"environment": "production", "strategy": strategyName, "kubeconfig": string(e.c.Kubeconfig()),
		"namespace": ns, "deployment": "shop", "image": "sampleapp:v2", "manifests": manifest,
		"url": e.c.ServiceURL(ns, "shop"), "monitor-duration": monitorFor.String(), "monitor-interval": interval.String(),
		"timeout": "30", "rollout-timeout": "2m", "deployment-id": "proof-" + ns, "config": os.DevNull,
	}), os.ReadFile, "")
	require.NoError(b, err)
	kc, err := kube.LoadKubeconfig(cfg.Kubeconfig.Reveal(), "")
	require.NoError(b, err)
	applier, err := kube.NewApplier(kc.REST)
	require.NoError(b, err)
	log := &eventLog{}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute+monitorFor)
	defer cancel()
	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	polled := make(chan []Shot, 1)
	go func() {
		// Bounded: polling stops at the latest when the trial's context ends.
		shots, err := Load(pollCtx, LoadOptions{URL: e.c.ServiceURL(ns, "shop") + "/health", Requests: int((3*time.Minute + monitorFor) / pollEvery), Rate: float64(time.Second / pollEvery)})
		if err != nil {
			b.Error(err)
		}
		polled <- shots
	}()
	out := pipeline.Run(ctx, cfg, pipeline.Deps{
		Client: e.client, REST: kc.REST, Applier: applier, Files: kube.OSFiles{}, ReadFile: os.ReadFile, Sink: log,
	})
	time.Sleep(time.Second) // a last second of answers, all from v1 if the rollback held
	stopPoll()
	shots := <-polled
	require.Equal(b, event.StatusRolledBack, out.Result.Status, "%s: %s", strategyName, out.Result.Reason)

	s, err := TimeToSafety(shots, "v2", "v1", safeStreak)
	require.NoError(b, err, strategyName)
	started, ok := log.first(event.RollbackStarted)
	require.True(b, ok, "the rollback was announced")
	t := safetyTrial{tts: s.SafeAt.Sub(s.FailedAt), detect: started.Time.Sub(s.FailedAt), interval: interval}
	for _, sh := range shots {
		if sh.Start.After(s.FailedAt) && sh.Version == "v2" && sh.OK() {
			t.partial = sh.Start.Sub(s.FailedAt)
		}
	}
	switch strategyName {
	case strategy.NameBlueGreen:
		t.switchTime = out.Deployed.SwitchTime
	default:
		for _, step := range out.Deployed.Steps {
			if step.Name == "undo" {
				t.switchTime = step.Duration
			}
		}
	}
	t.bound = SafetyBound(cfg.RollbackConsecutiveFailures, cfg.MonitorInterval)
	t.caughtBy = "stage " + string(failedStage(out))
	if out.Monitor != nil && out.Monitor.Rollback != nil {
		t.caughtBy = "monitor rule " + string(out.Monitor.Rollback.Rule)
		ev := out.Monitor.Evidence
		for i := 1; i < len(ev); i++ {
			t.probeGap = max(t.probeGap, ev[i].Time.Sub(ev[i-1].Time))
		}
	}
	return t
}

func failedStage(out *pipeline.Outcome) event.Stage {
	for _, s := range out.Stages {
		if s.Outcome == event.Failed {
			return s.Stage
		}
	}
	return ""
}

// BenchmarkTimeToSafety is figure 3: from the first request that failed on
// the new version to the moment only the old version answered, for
// blue-green and rolling deploys that start failing while monitored at the
// minimum and at the default interval, against SafetyBound of the inputs.
// Every trial is reported; the benchmark fails when one breaks its bound.
func BenchmarkTimeToSafety(b *testing.B) {
	e := newEnv(b)
	names := []string{strategy.NameBlueGreen, strategy.NameRolling}
	type key struct {
		name     string
		interval time.Duration
	}
	trials := map[key][]safetyTrial{}
	for range b.N {
		for _, run := range safetyRuns() {
			for _, name := range names {
				k := key{name, run.interval}
				trials[k] = nil
				for range run.trials {
					trials[k] = append(trials[k], e.safetyTrial(b, name, run.interval))
				}
			}
		}
	}
	b.StopTimer()
	order := 31
	for _, run := range safetyRuns() {
		for _, name := range names {
			ts := trials[key{name, run.interval}]
			if len(ts) == 0 {
				continue
			}
			caught := map[string]int{}
			var tts, detect []float64
			var times []time.Duration
			for i, t := range ts {
				caught[t.caughtBy]++
				tts = append(tts, ms(t.tts))
				detect = append(detect, ms(t.detect))
				times = append(times, t.tts)
				b.Logf("%s at %s, trial %d: time to safety %s (detect %s, switch %s, bound %s) caught by %s; longest probe gap %s; the new version still answered some requests healthily for %s after the first failure", name, run.interval, i+1,
					t.tts.Round(time.Millisecond), t.detect.Round(time.Millisecond), t.switchTime.Round(time.Millisecond), t.bound.Round(time.Millisecond), t.caughtBy, t.probeGap.Round(time.Millisecond), t.partial.Round(time.Millisecond))
			}
			bound := ts[0].bound
			if err := CheckBound(times, bound); err != nil {
				b.Errorf("%s at monitor-interval %s: %v", name, run.interval, err)
			}
			worst := slices.Max(tts)
			b.ReportMetric(median(tts), fmt.Sprintf("%s-%s-tts-p50-ms", name, run.interval))
			why := fmt.Sprintf("detection (first failed request → rollback start) took a median %s; over the %d trials: %s", msText(median(detect)), len(ts), caughtText(caught))
			var partial, gap time.Duration
			for _, t := range ts {
				partial, gap = max(partial, t.partial), max(gap, t.probeGap)
			}
			if partial > 0 {
				why += fmt.Sprintf("; the new version still answered some requests healthily up to %s after its first failure, as its pods started (and so failed) one after another, so the failure streak built up more slowly", msText(ms(partial)))
			}
			if gap > run.interval*3/2 {
				why += fmt.Sprintf("; the monitor's probes ran up to %s apart on the busy machine, not every %s", msText(ms(gap)), run.interval)
			}
			peer := fmt.Sprintf("bound (%d + 1) × %s + 1 s", ts[0].threshold(), run.interval)
			book.add(
				Figure{Order: order, Name: fmt.Sprintf("time to safety, %s, monitor-interval %s: first failed request → only the old version answers, median of %d trials", name, run.interval, len(ts)),
					Unit: "ms", Ours: median(tts), Peer: peer, PeerValue: ms(bound), Judgement: AgainstBound, Why: why},
				Figure{Order: order + 1, Name: fmt.Sprintf("time to safety, %s, monitor-interval %s, worst of %d trials", name, run.interval, len(ts)),
					Unit: "ms", Ours: worst, Peer: peer, PeerValue: ms(bound), Judgement: AgainstBound, Why: why},
			)
			order += 2
		}
	}
}

// threshold is the rollback-consecutive-failures the trial's bound holds.
func (t safetyTrial) threshold() int {
	return int((t.bound-boundSlack)/t.interval) - 1
}

func msText(v float64) string { return formatValue(v, "ms") }

func caughtText(caught map[string]int) string {
	var parts []string
	for _, by := range slices.Sorted(maps.Keys(caught)) {
		parts = append(parts, fmt.Sprintf("%d× %s", caught[by], by))
	}
	return "caught by " + strings.Join(parts, ", ")
}
