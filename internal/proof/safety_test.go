package proof

import (
	"cmp"
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
	// safetyTrials is how many failing deploys figure 3 times per strategy.
	safetyTrials = 3
	// failAfter keeps the new version healthy through deploy and verify,
	// so it starts failing while monitoring watches it.
	failAfter = 8 * time.Second
	// monitorInterval is the probe interval of the monitored deploys.
	monitorInterval = 100 * time.Millisecond
	// pollEvery is the user's view: a client asking the router this often.
	pollEvery = 20 * time.Millisecond
	// rollbackStreak is the failed probes in a row that roll back with the
	// default rollback-consecutive-failures of 5: one more than it.
	rollbackStreak = 6
	// safeStreak is how many healthy old-version answers in a row, at the
	// end of the poll, prove the old version serves alone.
	safeStreak = 10
)

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
	// bound is (threshold + 1) × interval + switchTime.
	bound time.Duration
	// caughtBy says which rule or stage started the rollback.
	caughtBy string
	// partial is how long after the first failure the new version still
	// answered some requests healthily: its pods did not fail at once.
	partial time.Duration
	// probeGap is the longest time between two of the monitor's probes in
	// the evidence of its verdict; the bound assumes one interval.
	probeGap time.Duration
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
func (e *env) safetyTrial(b *testing.B, strategyName string) safetyTrial {
	b.Helper()
	ns := e.namespace(b)
	defer e.dropNamespace(ns) // the next trial has the machine to itself
	e.createApp(b, ns, "shop", "sampleapp:v1")
	manifest := e.writeManifest(b, ns+".json", "shop", "sampleapp:placeholder", surgeAll,
		withEnv(corev1.EnvVar{Name: "SAMPLEAPP_FAIL_AFTER", Value: failAfter.String()}))
	cfg, err := config.Load(config.MapLookup(map[string]string{
		"environment": "production", "strategy": strategyName, "kubeconfig": string(e.c.Kubeconfig()),
		"namespace": ns, "deployment": "shop", "image": "sampleapp:v2", "manifests": manifest,
		"url": e.c.ServiceURL(ns, "shop"), "monitor-duration": "60s", "monitor-interval": monitorInterval.String(),
		"timeout": "30", "rollout-timeout": "2m", "deployment-id": "proof-" + ns, "config": os.DevNull,
	}), os.ReadFile, "")
	require.NoError(b, err)
	kc, err := kube.LoadKubeconfig(cfg.Kubeconfig.Reveal(), "")
	require.NoError(b, err)
	applier, err := kube.NewApplier(kc.REST)
	require.NoError(b, err)
	log := &eventLog{}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	polled := make(chan []Shot, 1)
	go func() {
		// Bounded: at most 150 s of polling, far beyond a trial's length.
		shots, err := Load(pollCtx, LoadOptions{URL: e.c.ServiceURL(ns, "shop") + "/health", Requests: int(150 * time.Second / pollEvery), Rate: float64(time.Second / pollEvery)})
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
	t := safetyTrial{tts: s.SafeAt.Sub(s.FailedAt), detect: started.Time.Sub(s.FailedAt)}
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
	t.bound = time.Duration(cfg.RollbackConsecutiveFailures+1)*cfg.MonitorInterval + t.switchTime
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
// blue-green and rolling deploys that start failing while monitored every
// 100 ms, against the bound (consecutive-failure threshold + 1) × monitor
// interval + switch time.
func BenchmarkTimeToSafety(b *testing.B) {
	e := newEnv(b)
	trials := map[string][]safetyTrial{}
	names := []string{strategy.NameBlueGreen, strategy.NameRolling}
	for range b.N {
		for _, name := range names {
			trials[name] = nil
			for range safetyTrials {
				trials[name] = append(trials[name], e.safetyTrial(b, name))
			}
		}
	}
	b.StopTimer()
	for i, name := range names {
		caught := map[string]int{}
		for _, t := range trials[name] {
			caught[t.caughtBy]++
			b.Logf("%s: time to safety %s (detect %s, switch %s, bound %s) caught by %s; longest probe gap %s; the new version still answered some requests healthily for %s after the first failure", name,
				t.tts.Round(time.Millisecond), t.detect.Round(time.Millisecond), t.switchTime.Round(time.Millisecond), t.bound.Round(time.Millisecond), t.caughtBy, t.probeGap.Round(time.Millisecond), t.partial.Round(time.Millisecond))
		}
		// Each trial has its own bound (its own switch time): the figure is
		// the trial in the middle by time to safety over bound.
		t := medianTrial(trials[name])
		b.ReportMetric(ms(t.tts), name+"-tts-ms")
		why := fmt.Sprintf("detection (first failed request → rollback start) took %s against %s for six failed probes 100 ms apart, and the switch %s, the bound's own figure (over the %d trials: %s)",
			msText(ms(t.detect)), msText(ms(time.Duration(rollbackStreak)*monitorInterval)), msText(ms(t.switchTime)), len(trials[name]), caughtText(caught))
		if t.partial > 0 {
			why += fmt.Sprintf("; the new version still answered some requests healthily for %s after its first failure, as its pods did not fail at once, so the failure streak and error rate built up more slowly", msText(ms(t.partial)))
		}
		if t.probeGap > monitorInterval*3/2 {
			why += fmt.Sprintf("; the monitor's probes ran up to %s apart on the busy machine, not every 100 ms", msText(ms(t.probeGap)))
		}
		why += "; what would close it: probing faster once the alert opens (at 3 failures), so the failures the rollback rule still needs arrive sooner"
		book.add(Figure{Order: 31 + i, Name: fmt.Sprintf("time to safety, %s: first failed request → only the old version answers (the middle of %d trials by ratio to its bound)", name, len(trials[name])),
			Unit: "ms", Ours: ms(t.tts), Peer: "bound (5 + 1) × 100 ms + switch", PeerValue: ms(t.bound), Judgement: AgainstBound, Why: why})
	}
}

// medianTrial is the trial in the middle when ordered by time to safety
// over its bound.
func medianTrial(trials []safetyTrial) safetyTrial {
	sorted := slices.Clone(trials)
	slices.SortFunc(sorted, func(a, b safetyTrial) int {
		return cmp.Compare(float64(a.tts)/float64(a.bound), float64(b.tts)/float64(b.bound))
	})
	return sorted[(len(sorted)-1)/2]
}

func msText(v float64) string { return formatValue(v, "ms") }

func caughtText(caught map[string]int) string {
	var parts []string
	for _, by := range slices.Sorted(maps.Keys(caught)) {
		parts = append(parts, fmt.Sprintf("%d× %s", caught[by], by))
	}
	return "caught by " + strings.Join(parts, ", ")
}
