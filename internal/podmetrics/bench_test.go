package podmetrics

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// bigExpositions returns n successive expositions of one pod whose
// histogram and counter make about 2 000 series (35 paths × 4 statuses ×
// 14 histogram series, 4 counters, some runtime gauges), each with more
// requests than the one before; series counts the sample lines.
func bigExpositions(n int) (texts []string, series int) { return expositions(35, n) }

// expositions is bigExpositions over paths paths.
func expositions(paths, n int) (texts []string, series int) {
	a := newApp(paths)
	for i := range n {
		a.serve(350+i, "200", 15*time.Millisecond)
		a.serve(35, "404", 2*time.Millisecond)
		a.serve(35+i, "500", 400*time.Millisecond)
		a.serve(35, "503", 3*time.Second)
		var sb strings.Builder
		sb.WriteString(a.exposition())
		sb.WriteString("# TYPE go_memstats_alloc_bytes gauge\n")
		for g := range 30 {
			fmt.Fprintf(&sb, "go_memstats_gauge_%d 12345\n", g)
		}
		texts = append(texts, sb.String())
	}
	for _, line := range strings.Split(texts[0], "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			series++
		}
	}
	return texts, series
}

// BenchmarkMetricsScrapeAndDiff is one round for one pod: parse a 2 000
// series exposition and diff it against the pod's previous reading. The
// fetch through the API server is left out: it is the network's cost.
func BenchmarkMetricsScrapeAndDiff(b *testing.B) {
	texts, series := bigExpositions(8)
	b.ReportMetric(float64(series), "series")
	var tr Tracker
	var r Reading
	names := DefaultNames()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := Parse(strings.NewReader(texts[i%len(texts)]), names, &r); err != nil {
			b.Fatal(err)
		}
		tr.Observe(t0.Add(time.Duration(i)*time.Second), []PodScrape{{Pod: "podinfo-0", UID: "u", Reading: &r}})
		i++
	}
}

// TestMetricsLiveHeapConstantOver10000Scrapes runs 10 000 rounds of two
// pods' podinfo-sized expositions (3 paths, about 200 series), with counter
// resets (the texts cycle) and one pod replaced every 50 rounds, and
// compares the live heap after 100 rounds with the one after 10 000: the
// source must not grow.
func TestMetricsLiveHeapConstantOver10000Scrapes(t *testing.T) {
	if testing.Short() {
		t.Skip("10 000 parses of a large exposition; skipped with -short")
	}
	texts, series := expositions(3, 8)
	var tr Tracker
	const pods = 2
	readings := make([]Reading, pods)
	names := DefaultNames()
	round := func(i int) {
		scrapes := make([]PodScrape, pods)
		for p := range scrapes {
			r := &readings[p]
			if err := Parse(strings.NewReader(texts[(i+p)%len(texts)]), names, r); err != nil {
				t.Fatal(err)
			}
			gen := i / 50
			if p != 0 {
				gen = 0
			}
			scrapes[p] = PodScrape{Pod: fmt.Sprintf("podinfo-%d-%d", p, gen), UID: fmt.Sprint(gen), Reading: r}
		}
		w := tr.Observe(t0.Add(time.Duration(i)*time.Second), scrapes)
		if i > 0 && w.Pods == 0 && i%50 != 0 {
			t.Fatalf("round %d counted no pod: %+v", i, w)
		}
	}
	live := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	start := time.Now()
	for i := range 100 {
		round(i)
	}
	after100 := live()
	for i := 100; i < 10_000; i++ {
		round(i)
	}
	after10000 := live()
	// The inputs stay live for both measurements, or their freeing reads
	// as a shrinking source.
	runtime.KeepAlive(texts)
	runtime.KeepAlive(readings)
	diff := int64(after10000) - int64(after100)
	t.Logf("%d-series expositions, %d pods: live heap %d B after 100 rounds, %d B after 10 000 (%+d B); %d parses in %s",
		series, pods, after100, after10000, diff, pods*10_000, time.Since(start).Round(time.Millisecond))
	if diff > 64<<10 || diff < -64<<10 {
		t.Errorf("live heap changed by %d B between 100 and 10 000 rounds, more than 64 KiB", diff)
	}
	if tr.Pods() != pods {
		t.Errorf("tracker holds %d pods, want %d", tr.Pods(), pods)
	}
}
