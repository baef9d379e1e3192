// Package credential produces the bearer tokens greenlight presents to an
// API server when the kubeconfig holds no static credential: the job's
// GitHub OIDC ID token, and the tokens the managed clusters' exec plugins
// (aws eks get-token, aws-iam-authenticator, gke-gcloud-auth-plugin,
// kubelogin) would print — made in process with each cloud's own SDK,
// because greenlight's container has none of those programs.
//
// Every source is wrapped in a Refresher, which fetches a new token once
// most of the current one's lifetime has passed, so a 30-minute monitor
// outlives 15-minute EKS tokens and short ID tokens alike.
//
// The package reads no process environment itself: callers pass an Env.
package credential
