// Package report turns a run's event stream into what people read: the
// versioned JSON report, the GitHub job summary in Markdown and a compact
// terminal rendering.
//
// A Recorder is an event.Sink that folds events into a Document in bounded
// memory; Markdown and Text are pure functions over a Document, so a report
// can be rendered again from its JSON at any time. The package never calls
// an API: it only observes.
//
// The Recorder reads these conventions from the stream:
//
//   - run-started carries Run; run-finished carries Result and may carry
//     Run again with what was learned, such as the previous image.
//   - stage-started and stage-finished carry Stage; stage-finished adds the
//     Outcome, a one-line Message and the stage's Findings.
//   - health-checked, smoke-tested and traffic-verified carry their results;
//     a health check or traffic verification with the same mode and target
//     as an earlier one replaces it.
//   - monitor-progress carries the latest Snapshot and, when it has one, the
//     latest chart Series; older ones are dropped. A Series, Verdict or
//     Evidence is taken from whichever event carries it, so the monitor
//     stage's end may carry the final chart.
//   - alert-raised and alert-resolved carry Alert.
//   - rollback-started carries the reason as Message and, when monitoring
//     asked for it, the Verdict and its Evidence samples; rollback-finished
//     carries the Outcome and the rollback's Findings.
//
// The chart's alert threshold comes from WithRules, or else from a
// response-time verdict seen in the stream.
//
// Findings are grouped by Kind when rendered: "pod" (Subject is the pod,
// Reason its state such as ImagePullBackOff, Message the last message),
// "event" (Subject is the involved object, Reason the event's reason),
// "permission" (Subject is the resource and verb that is missing), "fix"
// (Message is a multi-line recipe, shown as a code block); any other kind
// is listed as it is.
package report
