// Package proof measures greenlight against kubectl on the real test
// cluster, side by side in one run, and prints the figures as one table.
//
// Run the whole suite with one command; -proof.readme rewrites the
// README's table with the run's figures, date and machine:
//
//	go test -run '^$' -bench . -benchtime=1x -timeout 60m ./internal/proof/ -args -proof.readme=$PWD/README.md
//
// CI runs the same benchmarks with -proof.quick (fewer repeats, the same
// checks). Each benchmark adds its rows; when the run ends the table is
// printed with greenlight's figure, the figure it is compared with, and
// their ratio (greenlight ÷ peer: below 1 is better for every row). Under
// the table, one line explains each row where greenlight is slower or
// heavier than kubectl, above its own bound, or above its target.
//
// Both tools are built alike (CGO_ENABLED=0 -trimpath -ldflags='-s -w',
// kubectl from the test cluster's Kubernetes module), and every kubectl
// figure uses that build. The figures:
//
//  1. Rollout detection (BenchmarkRolloutDetection). 3 runs of 7 rollouts
//     of a two-replica Deployment, each made by a `greenlight deploy`
//     process; `kubectl rollout status` is started as soon as greenlight
//     prints that the change is applied. A third watch, the referee, notes
//     when the Deployment's status first becomes complete by kubectl's
//     rule. Each tool's lag runs from that moment to the arrival, at one
//     reader in this process, of the line it prints when its wait ends
//     (greenlight's rollout step line; kubectl's "successfully rolled
//     out"), so process start and exit are outside it. Median and p95 over
//     all rollouts, and the spread of the runs' medians.
//  2. API load (BenchmarkAPILoad). Every client is pointed at APIProxy, a
//     reverse proxy on loopback in front of the API server, which counts
//     the requests it forwards. A rolling deploy is `kubectl apply -f` +
//     `kubectl rollout status` (cold discovery caches) against the whole
//     `greenlight deploy` (with a url, monitoring off), the same without
//     url (checks through the service proxy), the rolling strategy alone,
//     and blue-green (no kubectl peer); monitoring's own requests are a row
//     per minute. The median of three deploys each, and peak memory.
//  3. Time to safety (BenchmarkTimeToSafety). A new version that starts
//     failing 8 s after its pods start is deployed with pipeline.Run while
//     a client polls the router every 20 ms; the Deployment keeps its own
//     strategy (25 % surge), so pods start one after another. The figure
//     runs from the first failed request to the start of the final run of
//     healthy old-version answers, against SafetyBound: (threshold + 1) ×
//     interval + 1 s from the inputs alone. Trials at the minimum (100 ms)
//     and default (10 s) monitor interval; median and worst of each; the
//     benchmark fails when a trial breaks its bound.
//  4. Zero-downtime switch (BenchmarkZeroDowntimeSwitch). Requests at
//     200/s (at most 12 000, loopback only) through the strict router —
//     one endpoint per request, no retries, endpoint changes applied 1 s
//     late like kube-proxy's minSyncPeriod — while a blue-green deploy
//     switches to a new color and rolls back; the load must start before
//     the deploy and end after the rollback. Failed requests by cause, and
//     latency percentiles in each switch window against before the deploy.
//  5. Footprint (BenchmarkFootprint). Binary size; process start to the
//     first request at the API proxy (`greenlight health-check` against
//     `kubectl get deployment`); and the heap the monitor loop holds
//     (runtime.MemStats after a collection, minus the heap before it)
//     after 1 000 and 1 000 000 probes, in a child process of its own on
//     a clock that ticks as soon as a probe ends.
//
// The package's own API is what the benchmarks need and can be tested
// without a cluster: APIProxy and the request kinds it reports, the bounded
// load generator Load with Summarize and TimeToSafety, and Table, which
// renders the figures.
package proof
