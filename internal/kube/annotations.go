package kube

import (
	"net/url"
	"strings"
	"time"
)

// Annotation keys greenlight writes on the objects it deploys and on its
// lock, so `kubectl describe` tells which run changed what.
const (
	// AnnotationDeploymentID holds the deployment's id, such as the commit SHA.
	AnnotationDeploymentID = "greenlight.dev/deployment-id"
	// AnnotationImage holds the image the deployment rolled out.
	AnnotationImage = "greenlight.dev/image"
	// AnnotationRunURL links to the workflow run that made the change.
	AnnotationRunURL = "greenlight.dev/run-url"
	// AnnotationActor names who started that run.
	AnnotationActor = "greenlight.dev/actor"
	// AnnotationDeployedAt is when the change was made, in RFC 3339 UTC.
	AnnotationDeployedAt = "greenlight.dev/deployed-at"
	// AnnotationChangeCause is the key `kubectl rollout history` shows in its
	// CHANGE-CAUSE column.
	AnnotationChangeCause = "kubernetes.io/change-cause"
)

// ChangeAnnotations describe one deployment for the annotations put on the
// Deployment and its pod template.
type ChangeAnnotations struct {
	// DeploymentID identifies the deployment, such as the commit SHA.
	DeploymentID string
	// Image is the image being rolled out.
	Image string
	// RunURL links to the workflow run; credentials and query are dropped.
	RunURL string
	// Actor is who started the run.
	Actor string
	// Time is when the change is made; zero leaves the annotation out.
	Time time.Time
}

// Map returns the annotations, leaving out those whose value is empty, with
// a change cause such as "greenlight deploy registry/app:v2 (3f2a1c9)" so
// `kubectl rollout history` shows what each revision was.
func (c ChangeAnnotations) Map() map[string]string {
	out := map[string]string{}
	set := func(key, value string) {
		if value = strings.TrimSpace(value); value != "" {
			out[key] = value
		}
	}
	set(AnnotationDeploymentID, c.DeploymentID)
	set(AnnotationImage, c.Image)
	set(AnnotationRunURL, publicURL(c.RunURL))
	set(AnnotationActor, c.Actor)
	if !c.Time.IsZero() {
		out[AnnotationDeployedAt] = c.Time.UTC().Format(time.RFC3339)
	}
	set(AnnotationChangeCause, changeCause(strings.TrimSpace(c.Image), strings.TrimSpace(c.DeploymentID)))
	return out
}

// changeCause reads "greenlight deploy <image> (<id>)", leaving out what is
// unknown.
func changeCause(image, id string) string {
	cause := "greenlight deploy"
	if image != "" {
		cause += " " + image
	}
	if id != "" {
		cause += " (" + id + ")"
	}
	return cause
}

// publicURL drops user information, query and fragment (where tokens hide)
// from a URL before it is written where anyone who can read the cluster sees
// it; a value that does not parse is dropped whole, since what it hides
// cannot be told.
func publicURL(raw string) string {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}
