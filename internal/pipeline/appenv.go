package pipeline

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ebeautything/greenlight/internal/config"
	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/kube"
)

// appEnv is the deploy's application variables on their way to the pods:
// validate names their Secret (reading the key, changing nothing) and
// points the manifests' containers at it; the deploy stage creates it.
type appEnv struct {
	env  kube.AppEnv
	vars []kube.EnvVar
	key  []byte
	subs []kube.Substitution
	name string
	// created is set when this run created the Secret.
	created bool
}

// usesAppEnv tells whether this run delivers app-env: only a deploy does;
// promote and reject act on what a deploy left.
func (r *run) usesAppEnv() bool {
	return r.op == config.CommandDeploy && len(r.cfg.AppEnv) > 0 && len(r.objs) > 0
}

// prepareAppEnv names the Secret of cfg.AppEnv and attaches it to the
// containers whose image this deploy sets (without an image, to the target
// Deployment's containers), so the dry run sees the pods as they will be.
func (r *run) prepareAppEnv(ctx context.Context, subs []kube.Substitution) error {
	a := &appEnv{env: kube.AppEnv{Client: r.deps.Client, Namespace: r.cfg.Namespace, Deployment: r.cfg.Deployment}, subs: subs}
	for _, v := range r.cfg.AppEnv {
		a.vars = append(a.vars, kube.EnvVar{Name: v.Name, Value: v.Value.Reveal()})
	}
	key, _, err := a.env.Key(ctx)
	if err != nil {
		return err
	}
	a.key = key
	a.name = kube.EnvSecretName(r.cfg.Deployment, key, a.vars)
	if _, err := kube.AttachEnvSecret(r.objs, subs, r.cfg.Deployment, a.name); err != nil {
		return &config.InputError{Input: "app-env", Problem: "has no container to go to: " + err.Error(), Accepted: "with manifests holding the Deployment named by deployment, or an image that a container of the manifests runs"}
	}
	r.appEnv = a
	return nil
}

// storeAppEnv creates the Secret validate named. When another run stored a
// key meanwhile, the name follows that key and the manifests are pointed
// at it again.
func (r *run) storeAppEnv(ctx context.Context) error {
	a := r.appEnv
	name, created, err := a.env.Ensure(ctx, a.key, a.vars)
	if err != nil {
		return err
	}
	if name != a.name {
		if _, err := kube.AttachEnvSecret(r.objs, a.subs, r.cfg.Deployment, name); err != nil {
			return err
		}
		a.name = name
	}
	r.out.EnvSecret = name
	a.created = created
	r.emit(event.Event{Kind: event.StepFinished, Stage: event.Deploy, Message: a.summary() + ", read by the new pods through envFrom"})
	return nil
}

// summary names the Secret and its variables, never a value.
func (a *appEnv) summary() string {
	names := make([]string, len(a.vars))
	for i, v := range a.vars {
		names[i] = v.Name
	}
	verb := "created"
	if !a.created {
		verb = "unchanged, reused"
	}
	return fmt.Sprintf("app-env: Secret %s %s, %d variables (%s)", a.name, verb, len(names), strings.Join(names, ", "))
}

// pruneAppEnv deletes the Deployment's app-env Secrets that no revision and
// no history record refers to any more. It runs while the lock is held, so
// no other deploy is between creating its Secret and its ReplicaSet.
func (r *run) pruneAppEnv(ctx context.Context) {
	if r.appEnv == nil || !r.deployStarted {
		return
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	keep := []string{r.appEnv.name}
	records, err := kube.ReadHistory(pctx, r.deps.Client, r.cfg.Namespace, r.cfg.Deployment)
	if err != nil {
		r.warn("app-env: old Secrets kept: read the history: %v", err)
		return
	}
	for _, rec := range records {
		if rec.EnvSecret != "" {
			keep = append(keep, rec.EnvSecret)
		}
	}
	deleted, err := r.appEnv.env.Prune(pctx, keep)
	if err != nil {
		r.warn("app-env: prune old Secrets: %v", err)
	}
	if len(deleted) > 0 {
		r.emit(event.Event{Kind: event.StepFinished, Stage: event.Deploy, Message: fmt.Sprintf("app-env: %d Secret(s) no revision or history record refers to removed: %s", len(deleted), strings.Join(deleted, ", "))})
	}
}
