package config_test

import (
	"errors"
	"fmt"

	"github.com/ebeautything/greenlight/internal/config"
)

func ExampleLoad() {
	inputs := map[string]string{
		"INPUT_ENVIRONMENT":      "production",
		"INPUT_KUBECONFIG":       "apiVersion: v1\nkind: Config",
		"INPUT_DEPLOYMENT":       "payment-api",
		"INPUT_IMAGE":            "ghcr.io/acme/payment-api:1.4.2",
		"INPUT_ALERT-ERROR-RATE": "5%",
		"INPUT_SKIP-TESTS":       "yes",
	}
	getenv := func(name string) string { return inputs[name] }

	cfg, err := config.Load(config.ActionLookup(getenv), nil, "0123abc")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Strategy, cfg.MonitorDuration, cfg.AlertErrorRate, cfg.SkipTests, cfg.Service, cfg.DeploymentID)
	fmt.Println(cfg.Kubeconfig)
	// Output:
	// blue-green 30m0s 0.05 true payment-api 0123abc
	// ***
}

func ExampleInputError() {
	lookup := config.MapLookup(map[string]string{
		"environment":      "staging",
		"kubeconfig":       "apiVersion: v1",
		"deployment":       "api",
		"image":            "ghcr.io/acme/api:2",
		"monitor-duration": "-5m",
		"strategy":         "canary",
	})
	_, err := config.Load(lookup, nil, "")
	var ie *config.InputError
	if errors.As(err, &ie) {
		fmt.Println("bad input, exit code 2")
	}
	for _, e := range config.InputErrors(err) {
		fmt.Println(e)
	}
	// Output:
	// bad input, exit code 2
	// input "strategy": "canary" is not a known strategy; accepted: rolling or blue-green
	// input "monitor-duration": "-5m" is negative; accepted: a Go duration such as 90s or 5m, or whole seconds such as 300
}
