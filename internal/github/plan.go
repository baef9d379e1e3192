package github

import (
	"fmt"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/redact"
)

// StatusContext returns the commit status context of a stage:
// greenlight/<environment>/<stage>, or greenlight/<stage> without an
// environment.
func StatusContext(environment string, stage event.Stage) string {
	if environment == "" {
		return "greenlight/" + string(stage)
	}
	return "greenlight/" + environment + "/" + string(stage)
}

// commitState maps a stage outcome to a commit status state. A skipped stage
// only needs a status when a pending one was set for it; a stage cancelled
// part-way is an error, not a failure of the change under review.
func commitState(o event.Outcome, wasPending bool) (string, bool) {
	switch o {
	case event.Succeeded:
		return "success", true
	case event.Failed:
		return "failure", true
	case event.Cancelled:
		return "error", true
	case event.Skipped:
		return "success", wasPending
	}
	return "", false
}

// stageDescription is the event's own message, or a plain one.
func stageDescription(e event.Event) string {
	if strings.TrimSpace(e.Message) != "" {
		return e.Message
	}
	title := strings.ToUpper(string(e.Stage[:min(1, len(e.Stage))])) + string(e.Stage[min(1, len(e.Stage)):])
	if e.Kind == event.StageStarted {
		return title + " started"
	}
	return title + " " + string(e.Outcome)
}

// commitStatus builds the request body of one stage's commit status.
func commitStatus(run event.Run, stage event.Stage, state, desc string, secrets []string) *gh.RepoStatus {
	st := &gh.RepoStatus{
		State:       gh.String(state),
		Context:     gh.String(StatusContext(run.Environment, stage)),
		Description: gh.String(description(desc, secrets)),
	}
	if u := redact.PublicURL(run.RunURL); u != "" {
		st.TargetURL = gh.String(u)
	}
	return st
}

// deploymentRequest builds the GitHub Deployment for a run. No status checks
// are required and nothing is merged: greenlight deploys the commit it was
// given, and the checks it would wait for are its own.
//
// GitHub API docs: https://docs.github.com/rest/deployments/deployments#create-a-deployment
func deploymentRequest(run event.Run, secrets []string) *gh.DeploymentRequest {
	return &gh.DeploymentRequest{
		Ref:                   gh.String(run.SHA),
		Task:                  gh.String("deploy"),
		AutoMerge:             gh.Bool(false),
		RequiredContexts:      &[]string{},
		Environment:           gh.String(run.Environment),
		Description:           gh.String(description("Deploy "+run.Image+" with greenlight", secrets)),
		TransientEnvironment:  gh.Bool(false),
		ProductionEnvironment: gh.Bool(run.Production),
		Payload: map[string]string{
			"image":         redact.Secrets(run.Image, secrets),
			"deployment_id": redact.Secrets(run.DeploymentID, secrets),
			runKeyField:     runKey(run, secrets),
		},
	}
}

// runKeyField is the payload field that tells this run's Deployment from
// the others of the same commit and environment (re-runs, other workflows).
const runKeyField = "greenlight_run"

// runKey identifies one greenlight run: its workflow run, deployment id and
// start time, so a retried create can find the Deployment it already made.
func runKey(run event.Run, secrets []string) string {
	return redact.Secrets(redact.PublicURL(run.RunURL)+" "+run.DeploymentID+" "+run.StartedAt.UTC().Format(time.RFC3339Nano), secrets)
}

// deploymentStatus builds a deployment status request. Only a success marks
// the earlier deployments of the environment inactive: after a failure or a
// rollback the previous version is the one serving, and its deployment
// should stay active.
func deploymentStatus(run event.Run, state, desc string, secrets []string) *gh.DeploymentStatusRequest {
	req := &gh.DeploymentStatusRequest{
		State:        gh.String(state),
		Description:  gh.String(description(desc, secrets)),
		Environment:  gh.String(run.Environment),
		AutoInactive: gh.Bool(state == "success"),
	}
	if u := redact.PublicURL(run.RunURL); u != "" {
		req.LogURL = gh.String(u)
	}
	if u := redact.PublicURL(run.EnvironmentURL); u != "" {
		req.EnvironmentURL = gh.String(u)
	}
	return req
}

// finalDeployment maps how a run ended to its deployment's last status.
func finalDeployment(run event.Run, res event.Result) (state, desc string) {
	reason := ""
	if r := strings.TrimSpace(res.Reason); r != "" {
		reason = ": " + r
	}
	switch res.Status {
	case event.StatusSucceeded:
		return "success", "Deployed " + run.Image
	case event.StatusRolledBack:
		to := "the previous version"
		if run.PreviousImage != "" {
			to = run.PreviousImage
		}
		return "failure", fmt.Sprintf("Rolled back to %s%s", to, reason)
	case event.StatusRollbackFailed:
		return "failure", "Rollback failed, needs attention" + reason
	case event.StatusFailed:
		return "failure", "Failed" + reason
	case event.StatusAwaitingPromotion:
		// Nothing new serves: the promote job reports its own deployment.
		return "inactive", "Verified without traffic, awaiting promotion of " + run.Image
	case event.StatusRejected:
		return "inactive", "Rejected " + run.Image + reason
	}
	return "error", fmt.Sprintf("Ended with status %q%s", res.Status, reason)
}
