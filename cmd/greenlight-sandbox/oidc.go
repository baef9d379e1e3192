package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/testcluster"
)

// oidcTokenLifetime is how long the sandbox's ID tokens live, as long as
// GitHub's; greenlight fetches a new one before it expires.
const oidcTokenLifetime = 10 * time.Minute

// oidcRoleName is the Role the sandbox binds the job's subject to.
const oidcRoleName = "greenlight-deployer"

// repositoryPattern is GitHub's owner/name.
var repositoryPattern = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$`)

// oidcFlags are the job the sandbox's ID-token endpoint speaks for.
type oidcFlags struct {
	repository, environment, ref, namespace string
}

// check names the first flag whose value cannot be used.
func (f oidcFlags) check() error {
	if !repositoryPattern.MatchString(f.repository) {
		return fmt.Errorf("--oidc-repository: %q is not a repository; accepted: owner/name, such as %s/shop", f.repository, testcluster.OIDCOwner)
	}
	if len(f.environment) > 255 || strings.ContainsAny(f.environment, ":\r\n") {
		return fmt.Errorf("--oidc-environment: %q is not a GitHub environment name; accepted: up to 255 characters without ':' or line breaks, or empty for a job without environment", f.environment)
	}
	if !strings.HasPrefix(f.ref, "refs/") || strings.ContainsAny(f.ref, ": \r\n") {
		return fmt.Errorf("--oidc-ref: %q is not a Git ref; accepted: refs/heads/<branch> or refs/tags/<tag>", f.ref)
	}
	if errs := validation.IsDNS1123Label(f.namespace); len(errs) > 0 {
		return fmt.Errorf("--oidc-namespace: %q is not a namespace name; accepted: a DNS label (%s)", f.namespace, strings.Join(errs, "; "))
	}
	return nil
}

func (f oidcFlags) claims() testcluster.GitHubClaims {
	return testcluster.GitHubClaims{Repository: f.repository, Environment: f.environment, Ref: f.ref}
}

// setUpOIDC serves the ID-token endpoint for the job, binds its subject to
// the Role greenlight's permission check needs in the namespace, and prints
// what a runner gives the job and the inputs its step would use.
func setUpOIDC(ctx context.Context, c *testcluster.Cluster, f oidcFlags, stdout io.Writer) error {
	requestURL, requestToken, err := c.OIDC().IDTokenEndpoint(f.claims(), oidcTokenLifetime)
	if err != nil {
		return err
	}
	user := testcluster.OIDCUsernamePrefix + f.claims().Subject()
	if err := bindDeployer(ctx, c, f.namespace, user); err != nil {
		return err
	}
	fmt.Fprintf(stdout, `GitHub OIDC: the API server trusts the issuer %s for jobs of %s/* (audience %s).
The runner would give the job (permissions: id-token: write):
  ACTIONS_ID_TOKEN_REQUEST_URL=%s
  ACTIONS_ID_TOKEN_REQUEST_TOKEN=%s
Its tokens say repository %q, environment %q, ref %q: the API server maps them to
user %q, bound to Role %s in namespace %s.
A step's inputs:
  auth: github-oidc
  server: %s
  certificate-authority-data: %s
  audience: %s

`, c.OIDC().URL(), testcluster.OIDCOwner, c.OIDCAudience(), requestURL, requestToken,
		f.repository, f.environment, f.ref, user, oidcRoleName, f.namespace,
		c.OIDCAudience(), base64.StdEncoding.EncodeToString(c.Config().CAData), c.OIDCAudience())
	return nil
}

// bindDeployer creates the namespace if need be, a Role with what
// greenlight's permission check asks for, and binds user to it.
func bindDeployer(ctx context.Context, c *testcluster.Cluster, namespace, user string) error {
	client := c.Client()
	_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", namespace, err)
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: oidcRoleName, Namespace: namespace}, Rules: kube.DeployerRules(namespace)}
	if _, err := client.RbacV1().Roles(namespace).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create Role %s/%s: %w", namespace, oidcRoleName, err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: oidcRoleName, Namespace: namespace},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: oidcRoleName},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	if _, err := client.RbacV1().RoleBindings(namespace).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("bind user %q to Role %s/%s: %w", user, namespace, oidcRoleName, err)
	}
	return nil
}

// errOIDCFlagWithoutOIDC names an --oidc-* flag given without --oidc.
var errOIDCFlagWithoutOIDC = errors.New("needs --oidc")
