package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ebeautything/greenlight/internal/config"
	"github.com/ebeautything/greenlight/internal/credential"
	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/github"
	"github.com/ebeautything/greenlight/internal/redact"
	"github.com/ebeautything/greenlight/internal/report"
)

// sinkCloseBound is how long the GitHub and notification sinks may take to
// deliver what is queued once the run is over.
const sinkCloseBound = 15 * time.Second

// runAction runs as a GitHub Action step: inputs from INPUT_*, outputs,
// job summary, commit statuses, a Deployment and notifications.
func runAction(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) int {
	act := github.NewAction(getenv, stdout)
	// Mask every secret before anything could print one, even a bad input.
	lookup := config.ActionLookup(getenv)
	for _, in := range config.Names() {
		if in.Kind == config.KindSecret {
			if v, ok := lookup(in.Name); ok {
				_ = act.Mask(v)
			}
		}
	}
	// The runner's ID-token request token lets anyone mint this job's ID
	// tokens while it runs.
	if v := getenv(credential.EnvIDTokenRequestToken); v != "" {
		_ = act.Mask(v)
	}
	ghctx, err := act.Context()
	if err != nil {
		_ = act.Warning("read the GitHub context: " + err.Error())
	}
	cfg, err := config.Load(lookup, os.ReadFile, ghctx.SHA)
	if err != nil {
		for _, e := range config.InputErrors(err) {
			_ = act.Error(e.Error())
		}
		if len(config.InputErrors(err)) == 0 {
			_ = act.Error(err.Error())
		}
		_ = act.SetOutputs(map[string]string{"status": string(event.StatusFailed)})
		return exitBadInput
	}
	// app-env was masked by its lines, NAME=VALUE; a value printed alone
	// needs its own mask.
	for _, v := range cfg.AppEnv {
		if len(v.Value) >= redact.MinSecret {
			_ = act.Mask(v.Value.Reveal())
		}
	}
	a := &app{cfg: cfg, getenv: getenv, stdout: stdout, stderr: stderr, extras: map[string]string{}}
	a.mask = func(values ...string) { _ = act.Mask(values...) }
	if cfg.Command == config.CommandUnlock {
		// A workflow step that says command: unlock asks for it explicitly.
		a.extras["force"] = "true"
	}
	a.run = event.Run{Repository: ghctx.Repository, SHA: ghctx.SHA, ServerURL: ghctx.ServerURL, RunURL: ghctx.RunURL, Actor: ghctx.Actor}
	secrets := cfg.Secrets()

	var closers []func(context.Context) []string
	if cfg.Command == config.CommandDeploy || cfg.Command == config.CommandPromote {
		if token := cfg.GitHubToken.Reveal(); token != "" {
			s := github.NewStatusSink(github.StatusOptions{Token: token, APIURL: ghctx.APIURL, Secrets: secrets, SkipDeployment: !a.cfg.GitHubDeployment})
			a.sinks = append(a.sinks, s)
			closers = append(closers, s.Close)
		} else {
			_ = act.Warning("no github-token: commit statuses and the GitHub Deployment are skipped")
		}
	}
	closers = append(closers, a.notifiers()...)

	code := a.execute(ctx)

	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sinkCloseBound)
	defer cancel()
	for _, c := range closers {
		for _, w := range c(cctx) {
			_ = act.Warning(w)
		}
	}
	outputs := map[string]string{"deployment-id": cfg.DeploymentID, "image": cfg.Image, "environment-url": cfg.URL}
	if code == exitOK {
		outputs["status"] = string(event.StatusSucceeded)
	} else {
		outputs["status"] = string(event.StatusFailed)
	}
	if o := a.outcome; o != nil {
		outputs["status"] = string(o.Result.Status)
		outputs["previous-image"] = o.Run.PreviousImage
		outputs["revision"] = o.Result.Revision
		outputs["rolled-back"] = fmt.Sprint(o.Result.RolledBack)
		outputs["traffic-proof"] = o.Result.TrafficProof
		outputs["report-path"] = a.reportPath
		if m := o.Result.Monitor; m != nil && m.Count > 0 {
			outputs["p95-ms"] = fmt.Sprint(m.Latency.P95.Milliseconds())
			outputs["error-rate"] = fmt.Sprintf("%.4f", m.ErrorRate)
			outputs["availability"] = fmt.Sprintf("%.4f", m.Availability)
			if t := m.Traffic; t != nil && t.Windows > 0 {
				outputs["throughput-rps"] = fmt.Sprintf("%.2f", t.Throughput)
				if t.Requests > 0 {
					outputs["requests-error-rate"] = fmt.Sprintf("%.4f", t.ErrorRate)
				}
				if t.HasLatency {
					outputs["requests-p95-ms"] = fmt.Sprint(t.P95.Milliseconds())
				}
			}
		}
		if err := act.AppendSummary(report.Markdown(a.recorder.Document())); err != nil {
			_ = act.Warning("write the job summary: " + err.Error())
		}
		if o.ExitCode() != exitOK {
			_ = act.Error(strings.TrimSpace(string(o.Result.Status) + ": " + o.Result.Reason))
		}
		if o.Run.Image != "" {
			outputs["image"] = o.Run.Image // promote and reject: the image that waited
		}
	}
	if o := a.rolledBack; o != nil {
		outputs["status"] = string(o.Result.Status)
		outputs["image"] = o.To
		outputs["previous-image"] = o.From
		outputs["rolled-back"] = fmt.Sprint(o.Result.RolledBack)
		outputs["revision"] = o.Result.Revision
		if o.Result.Status != event.StatusRolledBack {
			_ = act.Error(strings.TrimSpace(string(o.Result.Status) + ": " + o.Result.Reason))
		}
	}
	if err := act.SetOutputs(outputs); err != nil {
		fmt.Fprintf(stderr, "greenlight: set outputs: %v\n", err)
	}
	return code
}
