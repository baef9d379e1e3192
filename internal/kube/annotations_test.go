package kube

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestChangeAnnotations(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 3, 14, 15, 9, 26, 500, time.FixedZone("CET", 3600))
	tests := []struct {
		name string
		in   ChangeAnnotations
		want map[string]string
	}{
		{
			name: "everything",
			in: ChangeAnnotations{
				DeploymentID: "3f2a1c9",
				Image:        "ghcr.io/acme/shop:v2",
				RunURL:       "https://github.com/acme/shop/actions/runs/42",
				Actor:        "octocat",
				Time:         at,
			},
			want: map[string]string{
				"greenlight.dev/deployment-id": "3f2a1c9",
				"greenlight.dev/image":         "ghcr.io/acme/shop:v2",
				"greenlight.dev/run-url":       "https://github.com/acme/shop/actions/runs/42",
				"greenlight.dev/actor":         "octocat",
				"greenlight.dev/deployed-at":   "2025-03-14T14:09:26Z",
				"kubernetes.io/change-cause":   "greenlight deploy ghcr.io/acme/shop:v2 (3f2a1c9)",
			},
		},
		{
			name: "no id",
			in:   ChangeAnnotations{Image: "shop:v2"},
			want: map[string]string{
				"greenlight.dev/image":       "shop:v2",
				"kubernetes.io/change-cause": "greenlight deploy shop:v2",
			},
		},
		{
			name: "blank values left out",
			in:   ChangeAnnotations{DeploymentID: " abc ", Image: "shop:v3", Actor: "  "},
			want: map[string]string{
				"greenlight.dev/deployment-id": "abc",
				"greenlight.dev/image":         "shop:v3",
				"kubernetes.io/change-cause":   "greenlight deploy shop:v3 (abc)",
			},
		},
		{
			name: "credentials and query dropped from the run URL",
			in:   ChangeAnnotations{Image: "shop:v2", RunURL: "https://x-access-token:ghs_secret123@github.com/acme/shop/actions/runs/7?token=ghs_secret456#frag"},
			want: map[string]string{
				"greenlight.dev/image":       "shop:v2",
				"greenlight.dev/run-url":     "https://github.com/acme/shop/actions/runs/7",
				"kubernetes.io/change-cause": "greenlight deploy shop:v2",
			},
		},
		{
			name: "unparsable run URL dropped",
			in:   ChangeAnnotations{Image: "shop:v2", RunURL: "https://user:pa%zz@host/"},
			want: map[string]string{
				"greenlight.dev/image":       "shop:v2",
				"kubernetes.io/change-cause": "greenlight deploy shop:v2",
			},
		},
		{
			name: "nothing known",
			in:   ChangeAnnotations{},
			want: map[string]string{"kubernetes.io/change-cause": "greenlight deploy"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, tt.in.Map())
		})
	}
}
