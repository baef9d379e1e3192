// Package proof measures greenlight against kubectl on the real test
// cluster, side by side in one run, and prints the figures as one table.
//
// Run the whole suite with one command (about 5 minutes on 2 cores once the
// Kubernetes binaries are built):
//
//	go test -run '^$' -bench . -benchtime=1x -timeout 30m ./internal/proof/
//
// Each benchmark adds its rows; when the run ends the table is printed with
// greenlight's figure, the figure it is compared with, and their ratio
// (greenlight ÷ peer: below 1 is better for every row). Under the table, one
// line explains each row where greenlight is slower or heavier than kubectl,
// above its own bound, or above its target. The headline numbers are also
// reported as benchmark metrics.
//
// The figures:
//
//  1. Rollout detection latency (BenchmarkRolloutDetection). 20 rollouts of
//     a two-replica Deployment. On each, kube.WaitRollout and a
//     `kubectl rollout status` process (built from the same Kubernetes
//     module as the cluster) wait at once, and a third watch, a referee,
//     notes when the Deployment's status first becomes complete by
//     kubectl's rule. Each waiter's lag is from that moment to its return
//     (kubectl: its process exit). Median and p95 of both.
//  2. API load (BenchmarkAPILoad). Every client is pointed at APIProxy, a
//     reverse proxy on loopback in front of the API server, which counts
//     the requests it forwards: one ruler for a kubectl process and for
//     greenlight. A rolling deploy is `kubectl apply -f` +
//     `kubectl rollout status` (each with a cold discovery cache, as in a
//     fresh CI job) against the `greenlight deploy` binary (validate, lock,
//     deploy, verify, history; monitoring off) and against the rolling
//     strategy's apply-and-wait alone. A blue-green deploy has no kubectl
//     peer. The median of three deploys each, and the peak memory (max RSS)
//     of the deploying processes.
//  3. Time to safety (BenchmarkTimeToSafety). A new version that starts
//     failing 8 s after its pods start (the sample app's
//     SAMPLEAPP_FAIL_AFTER; the rolling Deployment surges all new pods at
//     once so they fail together, as the bound assumes) is deployed with
//     pipeline.Run, monitored every 100 ms, while a client polls the router
//     every 20 ms. The figure runs from the first request that failed to
//     the start of the final run of answers that all came, healthy, from
//     the old version. The bound is (rollback-consecutive-failures + 1) ×
//     monitor interval + the rollback's own switch time as the run
//     recorded it (the selector switch and endpoint confirmation for
//     blue-green, the undo and its rollout for rolling). Three deploys of
//     each, every one in a namespace of its own that is gone before the
//     next starts; the table shows the middle one by ratio to its bound.
//  4. Zero-downtime switch (BenchmarkZeroDowntimeSwitch). Requests at
//     200/s through the router (at most 6000, loopback only; sending stops
//     2 s after the last switch) while a blue-green deploy switches to a
//     new color and then rolls back: failed requests (target zero) and the
//     latency percentiles in each switch window (from the selector write to
//     a second after the switch's last step, for draining pods) against
//     those of the 3 s before the deploy began.
//  5. Footprint (BenchmarkFootprint). Binary size with the Dockerfile's
//     flags against kubectl stripped alike; process start to the first
//     request at the API proxy (`greenlight health-check`, whose first
//     request is its service-proxy check, against `kubectl get
//     deployment`); and the peak memory of greenlight's monitor loop over
//     20 000 probes at 100 ms — a 30-minute production monitor, compressed
//     in time by a clock that ticks as soon as a probe ends — against the
//     same loop over 1 000 probes, each in a process of its own.
//
// The package's own API is what the benchmarks need and can be tested
// without a cluster: APIProxy and the request kinds it reports, the bounded
// load generator Load with Summarize and TimeToSafety, and Table, which
// renders the figures.
package proof
