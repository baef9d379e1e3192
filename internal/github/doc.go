// Package github connects greenlight to GitHub.
//
// Action wraps the runner's workflow commands and files (masks, outputs, the
// job summary, log groups, annotations and the run's context) so that every
// call returns an error instead of panicking or exiting the process.
//
// StatusSink observes a run's events and mirrors them to the GitHub API as
// commit statuses (one context per stage, greenlight/<environment>/<stage>)
// and a GitHub Deployment with its statuses. It decides nothing: a failing
// API call becomes a warning, never a different outcome, and a slow API
// never delays the pipeline past the bound the caller gives Close.
package github
