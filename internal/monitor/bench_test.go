package monitor

import (
	"runtime"
	"testing"
	"time"
	"unsafe"
)

// benchSamples are prepared up front so the benchmarks measure Stats alone.
func benchSamples() []Sample {
	out := make([]Sample, 1024)
	for i := range out {
		lat := time.Duration(1+(i*7919)%2000) * time.Millisecond
		if i%13 == 0 {
			out[i] = failSample(0, lat)
		} else {
			out[i] = okSample(0, lat)
		}
	}
	return out
}

// feed adds samples from..to-1, one second apart, so the series keeps
// coarsening as a long run would.
func feed(s *Stats, pool []Sample, from, to int) {
	for i := from; i < to; i++ {
		sm := pool[i%len(pool)]
		sm.Time = t0.Add(time.Duration(i) * time.Second)
		s.Add(sm)
	}
}

// heapInUse returns live heap bytes after a full collection.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// BenchmarkStatsMemory shows that a Stats holds the same memory after a
// million samples as after a thousand.
func BenchmarkStatsMemory(b *testing.B) {
	pool := benchSamples()
	var after1k, after1M int64
	// Passing the Stats through a channel keeps it on the heap, where a real
	// run's Stats lives, instead of on this benchmark's stack.
	held := make(chan *Stats, 1)
	for b.Loop() {
		base := heapInUse()
		held <- NewStats(DefaultWindow, time.Second)
		s := <-held
		feed(s, pool, 0, 1_000)
		after1k = heapInUse() - base
		feed(s, pool, 1_000, 1_000_000)
		after1M = heapInUse() - base
		runtime.KeepAlive(s)
	}
	footprint := unsafe.Sizeof(Stats{}) + DefaultWindow*(unsafe.Sizeof(Sample{})+unsafe.Sizeof(time.Duration(0)))
	b.ReportMetric(float64(after1k), "heap-B-after-1k")
	b.ReportMetric(float64(after1M), "heap-B-after-1M")
	b.ReportMetric(float64(footprint), "stats-B")
}

// BenchmarkStatsAdd measures the per-sample cost.
func BenchmarkStatsAdd(b *testing.B) {
	pool := benchSamples()
	s := NewStats(DefaultWindow, time.Second)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		sm := pool[i%len(pool)]
		sm.Time = t0.Add(time.Duration(i) * time.Second)
		s.Add(sm)
		i++
	}
}

// BenchmarkSnapshotEvaluate measures one evaluation, done per sample in Run.
func BenchmarkSnapshotEvaluate(b *testing.B) {
	s := NewStats(DefaultWindow, time.Second)
	feed(s, benchSamples(), 0, 100_000)
	rules := DefaultRules()
	b.ReportAllocs()
	for b.Loop() {
		_ = Evaluate(s.Snapshot(), rules)
	}
}
