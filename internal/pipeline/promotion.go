package pipeline

import (
	"context"
	"fmt"
	"strings"

	"github.com/ebeautything/greenlight/internal/config"
	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/strategy"
)

// Promote moves traffic to the blue-green color that a deploy with
// promotion manual left verified, then verifies, monitors and finishes as
// a deploy does after its checks before traffic, rolling back on failure.
// Everything it needs is read from the cluster; it takes the environment's
// lock like every writer. A color that changed since it was verified, or
// that is no longer healthy, is refused and traffic stays where it is.
func Promote(ctx context.Context, cfg config.Config, deps Deps) *Outcome {
	return operate(ctx, cfg, deps, config.CommandPromote)
}

// Reject removes the blue-green color that a deploy with promotion manual
// left waiting; the version serving keeps serving. It takes the
// environment's lock like every writer.
func Reject(ctx context.Context, cfg config.Config, deps Deps) *Outcome {
	return operate(ctx, cfg, deps, config.CommandReject)
}

// promote is the deploy stage of a promote: the switch.
func (r *run) promote(ctx context.Context) (string, error) {
	bg, ok := r.strategy.(*strategy.BlueGreen)
	if !ok {
		return "", &config.InputError{Input: "strategy", Problem: "is " + string(r.cfg.Strategy) + "; promote acts on a blue-green color", Accepted: "blue-green"}
	}
	// The checks before the switch must expect the image that waits, so
	// it is read before them.
	if p, _, err := strategy.FindPending(ctx, r.deps.Client, r.cfg.Namespace, r.cfg.Deployment); err == nil && p != nil {
		r.adopt(p.Image)
	}
	// The target keeps the image input, if any, which Promote compares.
	d, p, err := bg.Promote(ctx, r.target)
	r.deployed(d)
	if p.Image != "" {
		r.adopt(p.Image)
		r.target.Image = p.Image
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s promoted by %s: traffic moved to %s (verified before traffic at %s by deploy %s, checked again now)",
		p.Image, orDefault(r.out.Run.Actor, "an operator"), d.Deployment, p.VerifiedAt.UTC().Format("15:04:05 UTC"), orDefault(p.DeploymentID, "?")), nil
}

// reject is the deploy stage of a reject: the waiting color goes.
func (r *run) reject(ctx context.Context) (string, error) {
	bg, ok := r.strategy.(*strategy.BlueGreen)
	if !ok {
		return "", &config.InputError{Input: "strategy", Problem: "is " + string(r.cfg.Strategy) + "; reject acts on a blue-green color", Accepted: "blue-green"}
	}
	d, p, err := bg.Reject(ctx, r.target)
	r.out.Deployed = d
	r.emitObjects(event.Deploy)
	if p.Image != "" {
		r.adopt(p.Image)
		r.target.Image = p.Image
	}
	r.out.Run.PreviousImage = d.PreviousImage
	r.out.Result.ActiveColor = d.PreviousColor
	r.out.Result.Revision = d.PreviousColor
	if err != nil {
		return "", err
	}
	r.out.Result.Status = event.StatusRejected
	r.out.Result.Reason = fmt.Sprintf("%s rejected by %s: %s was removed without ever getting traffic; %s keeps serving",
		p.Image, orDefault(r.out.Run.Actor, "an operator"), d.Deployment, orDefault(d.PreviousDeployment, "what served"))
	return fmt.Sprintf("%s (%s) removed; it never got traffic", d.Deployment, p.Image), nil
}

// adopt makes image the run's image: promote and reject act on the image
// a deploy left, not on an input.
func (r *run) adopt(image string) {
	r.cfg.Image = image
	r.out.Run.Image = image
	r.version = VersionOf(image)
}

// awaitPromotion ends a deploy whose verified color waits for a person.
func (r *run) awaitPromotion() {
	d := r.out.Deployed
	r.out.Result.Status = event.StatusAwaitingPromotion
	r.out.Result.ActiveColor = d.PreviousColor
	r.out.Result.Promotion = r.promotion(d)
	r.out.Result.Reason = fmt.Sprintf("%s (%s) is ready and passed its checks without traffic; %s keeps serving until a later job runs command promote or reject",
		d.Deployment, r.cfg.Image, orDefault(d.PreviousDeployment, "nothing"))
}

// promotion says how to look at the waiting color and how to decide.
// Pure over the run's configuration and what the strategy left.
func (r *run) promotion(d strategy.Deployed) *event.Promotion {
	ns, env := r.cfg.Namespace, r.cfg.Environment
	port := d.PreviewPort
	if port == "" {
		port = "80"
	}
	path := r.paths().Basic
	p := &event.Promotion{
		Color: d.Color, Deployment: d.Deployment, Image: r.cfg.Image, Serving: d.PreviousDeployment, VerifiedAt: r.deps.Now().UTC(),
		PortForward:  fmt.Sprintf("kubectl -n %s port-forward service/%s 8080:%s   # then: curl http://127.0.0.1:8080%s", ns, d.PreviewService, port, path),
		ServiceProxy: fmt.Sprintf("kubectl get --raw /api/v1/namespaces/%s/services/%s:%s/proxy%s", ns, d.PreviewService, port, path),
		PromoteCLI:   decideCLI("promote", r.cfg),
		RejectCLI:    decideCLI("reject", r.cfg),
	}
	p.PromoteStep = decideStep("promote", env, r.cfg)
	p.RejectStep = decideStep("reject", env, r.cfg)
	return p
}

// decideCLI is the command line that promotes or rejects.
func decideCLI(command string, cfg config.Config) string {
	args := []string{"greenlight", command, "--environment=" + cfg.Environment, "--namespace=" + cfg.Namespace, "--deployment=" + cfg.Deployment}
	if cfg.Service != "" && cfg.Service != cfg.Deployment {
		args = append(args, "--service="+cfg.Service)
	}
	return strings.Join(args, " ")
}

// decideStep is the workflow step that promotes or rejects: the same
// environment inputs as the deploy, and the command.
func decideStep(command, env string, cfg config.Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "- uses: ebeautything/greenlight@v1\n  with:\n    command: %s\n    environment: %s\n", command, env)
	b.WriteString("    kubeconfig: ${{ secrets.KUBECONFIG }}   # the deploy's own cluster inputs\n")
	fmt.Fprintf(&b, "    namespace: %s\n    deployment: %s\n", cfg.Namespace, cfg.Deployment)
	if cfg.Service != "" && cfg.Service != cfg.Deployment {
		fmt.Fprintf(&b, "    service: %s\n", cfg.Service)
	}
	if cfg.URL != "" {
		fmt.Fprintf(&b, "    url: %s\n", cfg.URL)
	}
	return strings.TrimRight(b.String(), "\n")
}
