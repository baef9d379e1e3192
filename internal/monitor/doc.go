// Package monitor watches a newly deployed version for a while and decides
// whether it is healthy enough to keep.
//
// The package is split so that every decision is a pure function over values:
// Stats folds probe samples into constant-size statistics, Evaluate turns a
// Snapshot of them into alert or rollback verdicts, and Tracker turns the
// verdicts of successive evaluations into alert episodes. Run is the thin
// loop around them: it calls an injected Prober on a schedule, feeds the
// results through those pieces and reports what happened as events. The
// package never performs HTTP itself and never talks to the cluster.
package monitor
