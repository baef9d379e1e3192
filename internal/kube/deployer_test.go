package kube

import (
	"testing"

	"github.com/stretchr/testify/assert"
	authorizationv1 "k8s.io/api/authorization/v1"
)

func TestDeployerRulesGrantWhatThePermissionCheckAsks(t *testing.T) {
	t.Parallel()
	var rules []authorizationv1.ResourceRule
	for _, r := range DeployerRules("shop") {
		rules = append(rules, authorizationv1.ResourceRule{Verbs: r.Verbs, APIGroups: r.APIGroups, Resources: r.Resources})
	}
	for _, strategy := range []string{"blue-green", "rolling"} {
		for _, p := range RequiredPermissions(Plan{Strategy: strategy, Namespace: "shop", UsesLease: true, ChecksThroughAPIServer: true}) {
			assert.True(t, RulesAllow(rules, p), "%s: %s", strategy, p)
		}
	}
	assert.False(t, RulesAllow(rules, Permission{Verb: "delete", Resource: "namespaces"}), "nothing more")
	assert.False(t, RulesAllow(rules, Permission{Verb: "get", Resource: "secrets", Namespace: "shop"}), "no secrets")
}
