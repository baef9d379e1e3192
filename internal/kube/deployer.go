package kube

import (
	rbacv1 "k8s.io/api/rbac/v1"
)

// DeployerRules are RBAC rules granting, in namespace, every permission
// greenlight's permission check asks for with either strategy, checks
// through the API server, checks of new pods before traffic and the
// deploy lock — and nothing more. They make
// the Role a sandbox or a test binds a deploying identity to.
func DeployerRules(namespace string) []rbacv1.PolicyRule {
	var perms []Permission
	for _, strategy := range []string{strategyBlueGreen, "rolling"} {
		perms = append(perms, RequiredPermissions(Plan{Strategy: strategy, Namespace: namespace, UsesLease: true, ChecksThroughAPIServer: true, ChecksPodsBeforeTraffic: true, ReadsPodMetrics: true})...)
	}
	perms = sortPermissions(perms)
	rules := make([]rbacv1.PolicyRule, 0, len(perms))
	for _, p := range perms {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{p.Group}, Resources: []string{p.Resource}, Verbs: []string{p.Verb}})
	}
	return rules
}
