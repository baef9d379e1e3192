package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ebeautything/greenlight/internal/kube"
)

// appEnvValues are one version's payment settings, as the guide names them;
// each value starts with secretMarker so a leak shows in any encoding.
func appEnvValues(version string) (input string, values []string) {
	values = []string{
		secretMarker + "-supabase-role-" + version,
		secretMarker + "_toss_sk_" + version,
	}
	return "SUPABASE_PROD_URL=https://" + version + ".supabase.example\n" +
		"SUPABASE_PROD_SERVICE_ROLE_KEY=" + values[0] + "\n" +
		"TOSS_PAYMENTS_SECRET_KEY=" + values[1] + "\n", values
}

// podinfoSeesEnv waits until 10 answers in a row of podinfo's own /env
// (its process's environment) hold want for name.
func podinfoSeesEnv(t *testing.T, url, name, want string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	inARow, last := 0, ""
	deadline := time.Now().Add(60 * time.Second)
	for inARow < 10 {
		require.True(t, time.Now().Before(deadline), "podinfo's /env never settled on %s (last: %q)", name, last)
		resp, err := client.Get(url + "/env")
		if err != nil {
			inARow, last = 0, err.Error()
			time.Sleep(200 * time.Millisecond)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var environ []string
		got := ""
		if json.Unmarshal(body, &environ) == nil {
			for _, kv := range environ {
				if v, ok := strings.CutPrefix(kv, name+"="); ok {
					got = v
				}
			}
		}
		if got == want {
			inARow++
		} else {
			inARow, last = 0, got
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// envSecrets lists the app-env Secrets of deployment in ns.
func envSecrets(t *testing.T, e *env, deployment string) []string {
	t.Helper()
	list, err := e.client.CoreV1().Secrets(e.ns).List(context.Background(), metav1.ListOptions{LabelSelector: kube.LabelEnvFor + "=" + deployment})
	require.NoError(t, err)
	var names []string
	for _, s := range list.Items {
		names = append(names, s.Name)
	}
	return names
}

// TestPodinfoAppEnvRollsBackWithTheImage: podinfo's own /env shows the
// variables app-env gave each version; an automatic undo, a manual
// rollback and a rollback to an earlier revision each bring back the
// values of the version they return to; no value reaches any output, the
// history, annotations or any other object than its own Secret.
func TestPodinfoAppEnvRollsBackWithTheImage(t *testing.T) {
	t.Parallel()
	apps := publicApps(t)
	e := newEnv(t, "")
	url := e.c.ServiceURL(e.ns, "podinfo")
	var results []result
	var values []string
	deploy := func(image, version string, want string) result {
		t.Helper()
		in := e.podinfoInputs(apps, "staging", image)
		env, vals := appEnvValues(version)
		values = append(values, vals...)
		in["app-env"] = env
		in["monitor-duration"] = "1s"
		in["rollout-timeout"] = "30s"
		res := e.runAction(t, in, "")
		require.Equal(t, want, res.outputs["status"], "deploy %s", version)
		results = append(results, res)
		return res
	}
	toss := "TOSS_PAYMENTS_SECRET_KEY"

	first := deploy(podinfoSHA1, "one", "succeeded")
	assert.Contains(t, first.report, "SUPABASE_PROD_URL, SUPABASE_PROD_SERVICE_ROLE_KEY, TOSS_PAYMENTS_SECRET_KEY", "the report names the variables, never their values")
	assert.Regexp(t, `app-env: Secret podinfo-env-[0-9a-f]{12} created, 3 variables`, first.summary)
	podinfoSeesEnv(t, url, toss, secretMarker+"_toss_sk_one")
	podinfoSeesEnv(t, url, "SUPABASE_PROD_URL", "https://one.supabase.example")
	require.Len(t, envSecrets(t, e, "podinfo"), 1)

	deploy(podinfoSHA2, "two", "succeeded")
	podinfoSeesEnv(t, url, toss, secretMarker+"_toss_sk_two")
	require.Len(t, envSecrets(t, e, "podinfo"), 2, "the first version's Secret stays: its ReplicaSet can be rolled back to")

	args := func(command string, extra ...string) []string {
		return append([]string{command, "--environment=staging", "--namespace=" + e.ns, "--deployment=podinfo",
			"--url=" + url, "--health-paths=/healthz,/readyz", "--timeout=60", "--config=/dev/null"}, extra...)
	}
	code, out, _ := e.runCLI(t, args("rollback", "--reason=payments misconfigured")...)
	require.Equal(t, 0, code, "manual rollback")
	podinfoSeesEnv(t, url, toss, secretMarker+"_toss_sk_one")
	results = append(results, result{stdout: out})

	// An image that never pulls: the rolling update undoes itself, and
	// the pods it returns to read the values they ran with.
	deploy("ghcr.io/acme/podinfo:missing-6.9.3", "three", "rolled-back")
	podinfoSeesEnv(t, url, toss, secretMarker+"_toss_sk_one")

	// Back to the second version by its revision number.
	two := revisionOfImage(t, e, "podinfo", podinfoSHA2)
	code, out, _ = e.runCLI(t, args("rollback", fmt.Sprintf("--to-revision=%d", two))...)
	require.Equal(t, 0, code, "rollback to revision %d", two)
	podinfoSeesEnv(t, url, toss, secretMarker+"_toss_sk_two")
	results = append(results, result{stdout: out})

	history, err := kube.ReadHistory(context.Background(), e.client, e.ns, "podinfo")
	require.NoError(t, err)
	recorded := map[string]bool{}
	for _, rec := range history {
		if rec.EnvSecret != "" {
			recorded[rec.EnvSecret] = true
		}
	}
	assert.Len(t, recorded, 3, "each deploy records its Secret's name")
	for name := range recorded {
		assert.Contains(t, envSecrets(t, e, "podinfo"), name, "a Secret the history names is kept")
	}

	places := clusterObjects(t, e.client, e.ns)
	for i, res := range results {
		var logged []string
		for _, line := range strings.Split(res.stdout, "\n") {
			if !strings.HasPrefix(line, "::add-mask::") {
				logged = append(logged, line)
			}
		}
		outputs, _ := json.Marshal(res.outputs)
		for where, text := range map[string]string{"stdout": strings.Join(logged, "\n"), "stderr": res.stderr, "outputs": string(outputs), "summary": res.summary, "report": res.report} {
			places[fmt.Sprintf("run %d %s", i+1, where)] = text
		}
	}
	for _, leak := range sweep(places, values...) {
		t.Errorf("an app-env value leaked: %s", leak)
	}
	assert.Contains(t, first.stdout, "::add-mask::"+secretMarker+"_toss_sk_one", "each value is masked in the runner's log")
}

// revisionOfImage is the revision number of deployment's ReplicaSet that
// runs image.
func revisionOfImage(t *testing.T, e *env, deployment, image string) int64 {
	t.Helper()
	rss, err := e.client.AppsV1().ReplicaSets(e.ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	for _, rs := range rss.Items {
		if strings.HasPrefix(rs.Name, deployment+"-") && rs.Spec.Template.Spec.Containers[0].Image == image {
			var n int64
			_, err := fmt.Sscan(rs.Annotations["deployment.kubernetes.io/revision"], &n)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatalf("no ReplicaSet of %s runs %s", deployment, image)
	return 0
}
