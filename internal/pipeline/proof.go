package pipeline

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ebeautything/greenlight/internal/config"
	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/health"
	"github.com/ebeautything/greenlight/internal/kube"
)

// ProofPlan is how traffic to a version is proven, and why.
type ProofPlan struct {
	// Proof is health.ProofVersion or health.ProofEndpoints.
	Proof string
	// Want is the version answers must report (version proof only).
	Want string
	// Reason is one sentence on why this proof.
	Reason string
}

// Before is what the version serving before the deploy said of itself.
type Before struct {
	// Served is true when something served before the deploy.
	Served bool
	// Tag is the tag of the image that served; "" for a digest-only image.
	Tag string
	// Reported is the version it reported; "" when none.
	Reported string
	// Path is the health path whose answer reported it, when no
	// version-check names one.
	Path string
}

// PlanProof decides how traffic to the new version is proven. The app's
// answers prove it only when it can: with version-check naming a field or
// header, or (auto) when the version serving before reported its own tag.
// Otherwise the cluster proves it. Pure.
func PlanProof(check config.VersionCheck, expected, newTag string, before Before) ProofPlan {
	want := expected
	if want == "" {
		want = newTag
	}
	endpoints := func(why string) ProofPlan { return ProofPlan{Proof: health.ProofEndpoints, Reason: why} }
	switch check.Mode {
	case config.VersionCheckOff:
		return endpoints("version-check is off")
	case config.VersionCheckJSON, config.VersionCheckHeader:
		if want == "" {
			return endpoints("the image has no tag and expected-version is empty, so there is no version to expect")
		}
		return ProofPlan{Proof: health.ProofVersion, Want: want, Reason: fmt.Sprintf("version-check is %s", check)}
	}
	switch {
	case !before.Served:
		return endpoints("nothing served before this deploy, so it is unknown whether the app reports its version")
	case before.Reported == "":
		return endpoints("the version serving before the deploy reported no version")
	case before.Tag == "":
		return endpoints(fmt.Sprintf("the version serving before the deploy reported %s, and its image has no tag to compare", before.Reported))
	case !health.SameVersion(before.Tag, before.Reported):
		return endpoints(fmt.Sprintf("the version serving before the deploy reported %s, not its image tag %s", before.Reported, before.Tag))
	case want == "":
		return endpoints("the new image has no tag and expected-version is empty")
	}
	return ProofPlan{Proof: health.ProofVersion, Want: want, Reason: fmt.Sprintf("the version serving before the deploy reported its own tag %s", before.Tag)}
}

// VersionAnswer is the version the first answer without the token
// reported, and the health path that answered: the traffic proof asks
// that path again, and its probes carry no token, so the detailed
// endpoint never counts. Both "" when none reported one. Pure.
func VersionAnswer(res health.Result, paths health.Paths) (version, path string) {
	for _, e := range res.Endpoints {
		if e.Version != "" && e.Endpoint != health.EndpointDetailed {
			return e.Version, paths.For(e.Endpoint)
		}
	}
	return "", ""
}

// TellsApart keeps a version proof only when the version traffic moves
// away from answers otherwise: a version both sides report (the same
// image with another pod template, say) cannot show which side answered,
// so the cluster proves it instead. other is what that side reports and
// whose names it for the reason. Pure.
func TellsApart(plan ProofPlan, other, whose string) ProofPlan {
	if plan.Proof != health.ProofVersion || other == "" || !health.SameVersion(other, plan.Want) {
		return plan
	}
	return ProofPlan{Proof: health.ProofEndpoints, Reason: fmt.Sprintf("%s reports %s too, so answers cannot tell the two apart", whose, other)}
}

// versionSource is where version-check reads the served version.
func (r *run) versionSource() health.VersionSource {
	vc := r.cfg.VersionCheck
	switch vc.Mode {
	case config.VersionCheckJSON:
		return health.VersionSource{JSONField: vc.Name, Path: vc.Path}
	case config.VersionCheckHeader:
		return health.VersionSource{Header: vc.Name, Path: vc.Path}
	}
	// By convention, at the path where the version serving before reported one.
	return health.VersionSource{Path: r.before.Path}
}

// proveTraffic proves that the Service's traffic reaches the pods of
// deployment's current ReplicaSet, by plan, and records the proof.
func (r *run) proveTraffic(ctx context.Context, target health.Target, plan ProofPlan, deployment string, mode health.Mode, stage event.Stage) health.TrafficResult {
	opts := r.checkOptions(mode)
	opts.Version = r.versionSource()
	var tr health.TrafficResult
	if plan.Proof == health.ProofVersion {
		tr = health.VerifyTraffic(ctx, target, plan.Want, 10, opts)
	} else {
		tr = r.proveByEndpoints(ctx, target, deployment, opts)
	}
	tr.Proof, tr.ProofReason = plan.Proof, plan.Reason
	r.emit(event.Event{Kind: event.TrafficVerified, Stage: stage, Traffic: &tr})
	return tr
}

// proveByEndpoints waits until the Service's EndpointSlices list only ready
// pods of the deployment's current ReplicaSet, then wants 10 healthy answers
// in a row.
func (r *run) proveByEndpoints(ctx context.Context, target health.Target, deployment string, opts health.CheckOptions) health.TrafficResult {
	fail := func(err error) health.TrafficResult {
		return health.TrafficResult{Mode: opts.Mode, Target: target.Name(), Proof: health.ProofEndpoints, Reason: oneSentence(err) + "."}
	}
	start := time.Now()
	sel, rs, err := kube.CurrentPodSelector(ctx, r.deps.Client, r.cfg.Namespace, deployment)
	if err != nil {
		return fail(err)
	}
	minReady := 1
	st, err := kube.WaitEndpoints(ctx, r.deps.Client, r.cfg.Namespace, r.serviceName(), sel, minReady, r.cfg.Timeout)
	if err != nil {
		return fail(fmt.Errorf("the service's endpoints do not list only pods of replica set %s: %w", rs, err))
	}
	opts.Timeout = max(time.Second, r.cfg.Timeout-time.Since(start))
	tr := health.VerifyHealthyAnswers(ctx, target, 10, opts)
	tr.Endpoints = fmt.Sprintf("service %s lists only ready pods of replica set %s: %s", r.serviceName(), rs, strings.Join(st.Ready, ", "))
	return tr
}
