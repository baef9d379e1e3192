// Package notify tells people and systems outside GitHub what a run did.
//
// Slack posts Block Kit messages to a Slack incoming webhook: when a run
// starts, when it ends (succeeded, failed, rolled back or rollback failed,
// with p95 latency, error rate, availability, duration and the image
// change) and when an alert is raised. Webhook posts a signed JSON body of
// a stable schema (see WebhookEvent) to any URL for raised and resolved
// alerts, rollbacks and the end of a run.
//
// Both are sinks that only observe: Handle renders the message and queues
// it without blocking, one worker per sink sends the queue with a timeout
// per POST and at most two tries, and Close waits for the queue within the
// caller's deadline, cancelling whatever is still in flight. Failures come
// back from Close as warnings.
//
// Webhook URLs are credentials (a Slack webhook URL is enough to post to
// its channel). No warning contains one: the errors net/http returns quote
// the URL, so they are rewritten to name the receiver instead ("the Slack
// webhook").
package notify
