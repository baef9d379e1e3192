package kube

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"
)

// updateGolden rewrites the package's golden files: go test ./internal/kube -update
var updateGolden = flag.Bool("update", false, "rewrite golden files under testdata/")

func assertGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./internal/kube -update to create %s", path)
	assert.Equal(t, string(want), got)
}

func TestRequiredPermissionsRolling(t *testing.T) {
	t.Parallel()
	got := RequiredPermissions(Plan{Strategy: "rolling", Namespace: "payments"})
	p := func(group, resource, verb string) Permission {
		return Permission{Group: group, Resource: resource, Verb: verb, Namespace: "payments"}
	}
	assert.Equal(t, []Permission{
		p("", "configmaps", "get"), p("", "configmaps", "create"), p("", "configmaps", "update"),
		p("", "events", "list"),
		p("", "pods", "list"), p("", "pods", "watch"),
		p("", "services", "get"),
		p("apps", "deployments", "get"), p("apps", "deployments", "list"), p("apps", "deployments", "watch"), p("apps", "deployments", "patch"),
		p("apps", "replicasets", "list"), p("apps", "replicasets", "watch"),
		p("discovery.k8s.io", "endpointslices", "list"), p("discovery.k8s.io", "endpointslices", "watch"),
	}, got)
}

// TestRequiredPermissionsWithoutManifests: an image-only blue-green deploy
// still creates its preview Service, and checks without a public URL go
// through the service proxy.
func TestRequiredPermissionsWithoutManifests(t *testing.T) {
	t.Parallel()
	got := RequiredPermissions(Plan{Strategy: "blue-green", Namespace: "payments", ChecksThroughAPIServer: true})
	assert.Contains(t, got, Permission{Resource: "services", Verb: "create", Namespace: "payments"})
	assert.Contains(t, got, Permission{Resource: "services/proxy", Verb: "get", Namespace: "payments"})
	withURL := RequiredPermissions(Plan{Strategy: "rolling", Namespace: "payments"})
	assert.NotContains(t, withURL, Permission{Resource: "services/proxy", Verb: "get", Namespace: "payments"})
	assert.NotContains(t, withURL, Permission{Resource: "pods/proxy", Verb: "get", Namespace: "payments"})
	metrics := RequiredPermissions(Plan{Strategy: "rolling", Namespace: "payments", ReadsPodMetrics: true})
	assert.Contains(t, metrics, Permission{Resource: "pods/proxy", Verb: "get", Namespace: "payments"}, "scraping the pods' metrics needs the pod proxy")
	assert.NotContains(t, metrics, Permission{Resource: "secrets", Verb: "get", Namespace: "payments"}, "no Secret is read without app-env")
	env := RequiredPermissions(Plan{Strategy: "rolling", Namespace: "payments", WritesAppEnv: true})
	for _, verb := range []string{"get", "list", "create", "delete"} {
		assert.Contains(t, env, Permission{Resource: "secrets", Verb: verb, Namespace: "payments"}, "app-env Secrets")
	}
	assert.Contains(t, env, Permission{Group: "apps", Resource: "controllerrevisions", Verb: "list", Namespace: "payments"}, "pruning reads StatefulSet and DaemonSet revisions")
}

func TestRequiredPermissionsBlueGreen(t *testing.T) {
	t.Parallel()
	got := RequiredPermissions(Plan{
		Strategy:  "blue-green",
		Namespace: "payments",
		UsesLease: true,
		ManifestKinds: []schema.GroupVersionKind{
			{Group: "apps", Version: "v1", Kind: "Deployment"},
			{Version: "v1", Kind: "Service"},
			{Group: "networking.k8s.io", Version: "v1", Kind: "Ingress"},
			{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"},
			{Version: "v1", Kind: "Namespace"},
			{Version: "v1", Kind: "List"},
		},
	})
	has := func(group, resource, verb, ns string) bool {
		return assert.Contains(t, got, Permission{Group: group, Resource: resource, Verb: verb, Namespace: ns}, "%s %s.%s in %q", verb, resource, group, ns)
	}
	for _, v := range []string{"create", "update", "delete", "get", "list", "watch", "patch"} {
		has("apps", "deployments", v, "payments")
	}
	for _, v := range []string{"get", "update", "patch", "create"} {
		has("", "services", v, "payments")
	}
	has("discovery.k8s.io", "endpointslices", "list", "payments")
	has("discovery.k8s.io", "endpointslices", "watch", "payments")
	for _, v := range []string{"get", "create", "update"} {
		has("coordination.k8s.io", "leases", v, "payments")
	}
	has("networking.k8s.io", "ingresses", "patch", "payments")
	has("networking.k8s.io", "networkpolicies", "create", "payments")
	has("", "namespaces", "patch", "")
	for _, p := range got {
		assert.NotEqual(t, "lists", p.Resource)
	}
	assert.Equal(t, sortPermissions(got), got, "sorted")
	seen := map[Permission]bool{}
	for _, p := range got {
		assert.False(t, seen[p], "duplicate %v", p)
		seen[p] = true
	}
	assert.Equal(t, Permission{Resource: "namespaces", Verb: "get"}, got[0], "cluster-wide permissions sort first")
}

func TestPermissionString(t *testing.T) {
	t.Parallel()
	assert.Equal(t, `patch deployments.apps in namespace "payments"`,
		Permission{Group: "apps", Resource: "deployments", Verb: "patch", Namespace: "payments"}.String())
	assert.Equal(t, `get configmaps "history" in namespace "payments"`,
		Permission{Resource: "configmaps", Verb: "get", Namespace: "payments", Name: "history"}.String())
	assert.Equal(t, `create namespaces (cluster-wide)`, Permission{Resource: "namespaces", Verb: "create"}.String())
}

// reviewClient answers SelfSubjectAccessReviews from an allow list, and
// records every review it was asked.
func reviewClient(allowed func(authorizationv1.ResourceAttributes) bool, asked *[]authorizationv1.ResourceAttributes) *fake.Clientset {
	client := fake.NewClientset()
	client.PrependReactor("create", "selfsubjectaccessreviews", func(action k8stesting.Action) (bool, runtime.Object, error) {
		review := action.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		attrs := *review.Spec.ResourceAttributes
		*asked = append(*asked, attrs)
		out := review.DeepCopy()
		out.Status.Allowed = allowed(attrs)
		return true, out, nil
	})
	return client
}

func TestCheckPermissions(t *testing.T) {
	t.Parallel()
	perms := RequiredPermissions(Plan{Strategy: "rolling", Namespace: "payments", UsesLease: true})
	denied := map[string]bool{"patch deployments": true, "create configmaps": true, "update leases": true}
	var asked []authorizationv1.ResourceAttributes
	client := reviewClient(func(a authorizationv1.ResourceAttributes) bool {
		return !denied[a.Verb+" "+a.Resource]
	}, &asked)

	missing, err := CheckPermissions(context.Background(), client, perms)
	require.NoError(t, err)
	assert.Equal(t, []Permission{
		{Resource: "configmaps", Verb: "create", Namespace: "payments"},
		{Group: "apps", Resource: "deployments", Verb: "patch", Namespace: "payments"},
		{Group: "coordination.k8s.io", Resource: "leases", Verb: "update", Namespace: "payments"},
	}, missing)

	require.Len(t, asked, len(perms), "one review per permission")
	for i, p := range perms {
		assert.Equal(t, authorizationv1.ResourceAttributes{
			Namespace: p.Namespace, Verb: p.Verb, Group: p.Group, Resource: p.Resource, Name: p.Name,
		}, asked[i])
	}
}

func TestCheckPermissionsAllAllowed(t *testing.T) {
	t.Parallel()
	var asked []authorizationv1.ResourceAttributes
	client := reviewClient(func(authorizationv1.ResourceAttributes) bool { return true }, &asked)
	missing, err := CheckPermissions(context.Background(), client, RequiredPermissions(Plan{Namespace: "payments"}))
	require.NoError(t, err)
	assert.Empty(t, missing)
}

func TestCheckPermissionsError(t *testing.T) {
	t.Parallel()
	client := fake.NewClientset()
	client.PrependReactor("create", "selfsubjectaccessreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewUnauthorized("token expired")
	})
	_, err := CheckPermissions(context.Background(), client, []Permission{{Group: "apps", Resource: "deployments", Verb: "get", Namespace: "payments"}})
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrUnauthorized)
	assert.Equal(t, `check permission to get deployments.apps in namespace "payments": the credential was rejected or has expired (401 Unauthorized)`, err.Error())
}

func TestCheckPermissionsAgainstServer(t *testing.T) {
	t.Parallel()
	srv := statusServer(t, apierrors.NewUnauthorized("Unauthorized"), nil)
	client := clientFor(t, srv.URL, serverCAPEM(srv))
	_, err := CheckPermissions(context.Background(), client, RequiredPermissions(Plan{Namespace: "payments"}))
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrUnauthorized))
	assertNoSecrets(t, err.Error())
}

func TestFormatRBACRule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		golden  string
		missing []Permission
	}{
		{
			golden: "rbac/one-resource.golden",
			missing: []Permission{
				{Group: "apps", Resource: "deployments", Verb: "patch", Namespace: "payments"},
				{Group: "apps", Resource: "deployments", Verb: "get", Namespace: "payments"},
			},
		},
		{
			golden:  "rbac/rolling-all.golden",
			missing: RequiredPermissions(Plan{Strategy: "rolling", Namespace: "payments", UsesLease: true}),
		},
		{
			golden: "rbac/blue-green-manifests.golden",
			missing: RequiredPermissions(Plan{
				Strategy: "blue-green", Namespace: "payments",
				ManifestKinds: []schema.GroupVersionKind{
					{Group: "apps", Version: "v1", Kind: "Deployment"},
					{Version: "v1", Kind: "Service"},
					{Group: "networking.k8s.io", Version: "v1", Kind: "Ingress"},
				},
			}),
		},
		{
			golden: "rbac/namespaces-and-cluster.golden",
			missing: []Permission{
				{Resource: "namespaces", Verb: "create"},
				{Resource: "namespaces", Verb: "patch"},
				{Resource: "namespaces", Verb: "get"},
				{Resource: "pods", Verb: "list", Namespace: "staging"},
				{Resource: "configmaps", Verb: "update", Namespace: "payments", Name: "greenlight-history"},
				{Resource: "configmaps", Verb: "get", Namespace: "payments"},
				{Resource: "pods", Verb: "list", Namespace: "payments"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			t.Parallel()
			assertGolden(t, tt.golden, FormatRBACRule(tt.missing))
		})
	}
	assert.Empty(t, FormatRBACRule(nil))
}

// TestFormatRBACRuleGrantsEverything reads the advice back, as kubectl and
// the API server would, and checks that it grants every missing permission.
func TestFormatRBACRuleGrantsEverything(t *testing.T) {
	t.Parallel()
	missing := RequiredPermissions(Plan{
		Strategy: "blue-green", Namespace: "payments", UsesLease: true,
		ManifestKinds: []schema.GroupVersionKind{{Group: "networking.k8s.io", Version: "v1", Kind: "Ingress"}},
	})
	missing = append(missing, Permission{Resource: "configmaps", Verb: "delete", Namespace: "payments", Name: "greenlight-history"})
	out := FormatRBACRule(missing)

	// The YAML is a valid Role.
	yamlStart := strings.Index(out, "apiVersion:")
	require.GreaterOrEqual(t, yamlStart, 0)
	var role rbacv1.Role
	require.NoError(t, yaml.UnmarshalStrict([]byte(out[yamlStart:]), &role))
	assert.Equal(t, "Role", role.Kind)
	assert.Equal(t, "payments", role.Namespace)

	// The kubectl commands, read flag by flag.
	var commandRules []rbacv1.PolicyRule
	for line := range strings.SplitSeq(out, "\n") {
		if !strings.HasPrefix(line, "kubectl create role ") {
			continue
		}
		var rule rbacv1.PolicyRule
		for field := range strings.FieldsSeq(line) {
			flagName, value, _ := strings.Cut(field, "=")
			switch flagName {
			case "--verb":
				rule.Verbs = strings.Split(value, ",")
			case "--resource":
				for r := range strings.SplitSeq(value, ",") {
					gr := schema.ParseGroupResource(r)
					rule.Resources = append(rule.Resources, gr.Resource)
					rule.APIGroups = append(rule.APIGroups, gr.Group)
				}
			case "--resource-name":
				rule.ResourceNames = append(rule.ResourceNames, value)
			case "--namespace":
				assert.Equal(t, "payments", value)
			}
		}
		commandRules = append(commandRules, rule)
	}

	for name, rules := range map[string][]rbacv1.PolicyRule{"YAML": role.Rules, "kubectl": commandRules} {
		for _, p := range missing {
			assert.True(t, slices.ContainsFunc(rules, func(r rbacv1.PolicyRule) bool {
				return slices.Contains(r.APIGroups, p.Group) && slices.Contains(r.Resources, p.Resource) &&
					slices.Contains(r.Verbs, p.Verb) && (len(r.ResourceNames) == 0 || slices.Contains(r.ResourceNames, p.Name))
			}), "%s does not grant %s", name, p)
		}
	}
	// No rule grants a resource-name-limited permission more widely.
	for _, r := range role.Rules {
		if slices.Contains(r.Verbs, "delete") && slices.Contains(r.Resources, "configmaps") {
			assert.Equal(t, []string{"greenlight-history"}, r.ResourceNames)
		}
	}
}

func TestRulesAllow(t *testing.T) {
	t.Parallel()
	deploy := Permission{Group: "apps", Resource: "deployments", Verb: "patch", Namespace: "shop"}
	named := Permission{Resource: "configmaps", Verb: "get", Namespace: "shop", Name: "history"}
	tests := []struct {
		name  string
		rules []authorizationv1.ResourceRule
		perm  Permission
		want  bool
	}{
		{"no rules", nil, deploy, false},
		{"everything", []authorizationv1.ResourceRule{{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}}}, deploy, true},
		{"exact", []authorizationv1.ResourceRule{{Verbs: []string{"get", "patch"}, APIGroups: []string{"apps"}, Resources: []string{"deployments"}}}, deploy, true},
		{"other verb", []authorizationv1.ResourceRule{{Verbs: []string{"get"}, APIGroups: []string{"apps"}, Resources: []string{"deployments"}}}, deploy, false},
		{"other group", []authorizationv1.ResourceRule{{Verbs: []string{"patch"}, APIGroups: []string{""}, Resources: []string{"deployments"}}}, deploy, false},
		{"named rule, unnamed permission", []authorizationv1.ResourceRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"history"}}}, Permission{Resource: "configmaps", Verb: "get", Namespace: "shop"}, false},
		{"named rule, that name", []authorizationv1.ResourceRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"history"}}}, named, true},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, RulesAllow(tt.rules, tt.perm), tt.name)
	}
}

// With rules that grant everything but two verbs, only those two are asked
// one by one.
func TestCheckPermissionsAsksOnlyWhatRulesDoNotGrant(t *testing.T) {
	t.Parallel()
	perms := RequiredPermissions(Plan{Strategy: "rolling", Namespace: "payments", UsesLease: true})
	var asked []authorizationv1.ResourceAttributes
	client := reviewClient(func(a authorizationv1.ResourceAttributes) bool { return a.Verb != "patch" }, &asked)
	client.PrependReactor("create", "selfsubjectrulesreviews", func(action k8stesting.Action) (bool, runtime.Object, error) {
		review := action.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectRulesReview).DeepCopy()
		review.Status.ResourceRules = []authorizationv1.ResourceRule{
			{Verbs: []string{"get", "list", "watch", "create", "update"}, APIGroups: []string{"*"}, Resources: []string{"*"}},
		}
		return true, review, nil
	})
	missing, err := CheckPermissions(context.Background(), client, perms)
	require.NoError(t, err)
	assert.Equal(t, []Permission{{Group: "apps", Resource: "deployments", Verb: "patch", Namespace: "payments"}}, missing)
	for _, a := range asked {
		assert.Contains(t, []string{"patch"}, a.Verb, "only what the rules do not grant is reviewed")
	}
	assert.NotEmpty(t, asked)
}
