package main

import (
	"context"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// grantReadOnly gives user read rights in the env's namespace: enough to
// look at the app, not to change it. SelfSubjectAccessReviews need no grant,
// as every authenticated user may create them (system:basic-user).
func (e *env) grantReadOnly(t *testing.T, user string) {
	t.Helper()
	ctx := context.Background()
	read := []string{"get", "list", "watch"}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "read-only"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"apps"}, Resources: []string{"deployments", "replicasets"}, Verbs: read},
			{APIGroups: []string{""}, Resources: []string{"services", "pods", "events"}, Verbs: read},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: read},
		},
	}
	_, err := e.client.RbacV1().Roles(e.ns).Create(ctx, role, metav1.CreateOptions{})
	require.NoError(t, err)
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "read-only"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	_, err = e.client.RbacV1().RoleBindings(e.ns).Create(ctx, binding, metav1.CreateOptions{})
	require.NoError(t, err)
}

func TestActionMissingPermissionsChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	// The namespace name is unique in the cluster, so the user is too.
	user := "deployer-" + e.ns
	kubeconfig, err := e.c.AddUser(user)
	require.NoError(t, err)
	e.grantReadOnly(t, user)

	in := e.inputs("staging", "sampleapp:v2")
	in["kubeconfig"] = base64.StdEncoding.EncodeToString(kubeconfig)
	before := e.snapshot(t)
	res := e.runAction(t, in, "")

	assert.Equal(t, 1, res.code, "a permission failure is a failed deploy, not bad input")
	assert.Equal(t, "failed", res.outputs["status"])
	assert.Contains(t, res.stdout, `patch deployments.apps in namespace "`+e.ns+`"`, "the missing permission is named")
	assert.Contains(t, res.stdout, "kubectl create role", "the fix is given")
	assert.NotContains(t, res.stdout, "get deployments.apps in namespace", "granted permissions are not reported missing")
	assert.Equal(t, before, e.snapshot(t), "nothing in the namespace changed")
	assert.JSONEq(t, `{"v1": 20}`, mustJSON(e.serving(t, 20)))
	assert.False(t, e.lockHeld(t))
	e.assertNoSecrets(t, res, in)
	// The user's own credential, too, appears only in the commands that
	// mask it.
	var logged []string
	for _, line := range strings.Split(res.stdout, "\n") {
		if !strings.HasPrefix(line, "::add-mask::") {
			logged = append(logged, line)
		}
	}
	shown := strings.Join(logged, "\n") + res.stderr + res.summary + res.report
	for _, line := range strings.Split(string(kubeconfig), "\n") {
		if _, secret, ok := strings.Cut(line, "-data: "); ok && secret != "" {
			assert.NotContains(t, shown, secret, "the user's credential leaked")
		}
	}
}

func TestActionConcurrentDeploysOneWaitsOrFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	images := []string{"sampleapp:v2", "sampleapp:v3"}
	results := make([]result, len(images))
	var (
		mu       sync.Mutex
		finished []int // run indexes in the order they ended
	)
	// Goroutines, not parallel subtests: -parallel may run subtests one
	// after the other, and the point is that both runs overlap.
	var wg sync.WaitGroup
	for i, image := range images {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := e.inputs("production", image)
			in["monitor-duration"] = "3s"
			if i > 0 {
				in["lock-timeout"] = "1s"
			}
			res := e.runAction(t, in, "")
			mu.Lock()
			results[i] = res
			finished = append(finished, i)
			mu.Unlock()
		}()
		time.Sleep(300 * time.Millisecond) // the first run starts first
	}
	wg.Wait()
	require.Len(t, finished, len(images), "both runs ended")

	var succeeded []int
	for i, res := range results {
		if res.code == 0 {
			assert.Equal(t, "succeeded", res.outputs["status"])
			succeeded = append(succeeded, i)
			continue
		}
		assert.Equal(t, 1, res.code, "run %s", images[i])
		assert.Equal(t, "failed", res.outputs["status"], "run %s", images[i])
		assert.Contains(t, res.stdout, "is held by", "run %s names the lock holder", images[i])
	}
	require.NotEmpty(t, succeeded, "one run deploys")
	if len(succeeded) == 1 {
		assert.Equal(t, 1, results[1].code, "only the run with the short lock-timeout may give up")
	}
	// The last successful run to end decides what serves.
	last := -1
	for _, i := range finished {
		if results[i].code == 0 {
			last = i
		}
	}
	want := strings.TrimPrefix(images[last], "sampleapp:")
	assert.JSONEq(t, `{"`+want+`": 20}`, mustJSON(e.serving(t, 20)), "one consistent version serves")
	assert.False(t, e.lockHeld(t), "no lock is left held")
}
