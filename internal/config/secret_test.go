package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

func TestSecretNeverPrinted(t *testing.T) {
	t.Parallel()
	cfg, err := Load(MapLookup(validInputs()), nil, testSHA)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{kubeSecret, hcSecret, ghSecret, slackSecret, alertSecret, signSecret}, cfg.Secrets())

	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s"} {
		outputs = append(outputs,
			fmt.Sprintf(verb, cfg),
			fmt.Sprintf(verb, &cfg),
			fmt.Sprintf(verb, cfg.GitHubToken),
			fmt.Sprintf(verb, []Secret{cfg.Kubeconfig}),
			fmt.Sprintf(verb, map[string]Secret{"k": cfg.SlackWebhookURL}),
		)
	}
	outputs = append(outputs, fmt.Sprint(cfg), fmt.Sprintln(cfg.HealthCheckToken), cfg.AlertWebhookURL.String(), cfg.AlertWebhookSecret.GoString())

	j, err := json.Marshal(cfg)
	require.NoError(t, err)
	outputs = append(outputs, string(j))
	j2, err := json.Marshal(map[string]any{"token": cfg.GitHubToken, "list": []Secret{cfg.Kubeconfig}})
	require.NoError(t, err)
	outputs = append(outputs, string(j2))
	y, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	outputs = append(outputs, string(y))

	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("loaded", "config", cfg, "token", cfg.GitHubToken)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("loaded", "token", cfg.GitHubToken)
	outputs = append(outputs, logs.String())

	for _, out := range outputs {
		for _, s := range append(allSecrets, "canary") {
			require.NotContains(t, out, s)
		}
	}
	assert.Contains(t, fmt.Sprintf("%+v", cfg), "GitHubToken:***")
	assert.Contains(t, string(j), `"***"`)
	assert.Contains(t, logs.String(), `"token":"***"`)
	assert.Equal(t, `"***"`, fmt.Sprintf("%q", cfg.GitHubToken))
}

func TestSecretEmpty(t *testing.T) {
	t.Parallel()
	var s Secret
	assert.False(t, s.IsSet())
	assert.Equal(t, "", s.String())
	assert.Equal(t, "", fmt.Sprintf("%v", s))
	j, err := json.Marshal(s)
	require.NoError(t, err)
	assert.Equal(t, `""`, string(j))
	assert.Empty(t, Config{}.Secrets())
}

func TestSecretReveal(t *testing.T) {
	t.Parallel()
	s := Secret("value")
	assert.True(t, s.IsSet())
	assert.Equal(t, "value", s.Reveal())
	txt, err := s.MarshalText()
	require.NoError(t, err)
	assert.Equal(t, "***", string(txt))
}

// TestSecretsCoverEverySecretInput keeps Config.Secrets in step with Names:
// a secret input added later must be masked too.
func TestSecretsCoverEverySecretInput(t *testing.T) {
	t.Parallel()
	in := validInputs()
	var want []string
	for _, i := range Names() {
		if i.Kind == KindSecret {
			v := "https://example.com/secret-for-" + i.Name
			in[i.Name] = v
			if i.Name == "app-env" {
				in[i.Name] = "SECRET_FOR_APP_ENV=" + v
				in["manifests"] = "k8s/"
			}
			want = append(want, v)
		}
	}
	cfg, err := Load(MapLookup(in), nil, testSHA)
	require.NoError(t, err)
	assert.Equal(t, want, cfg.Secrets())
}
