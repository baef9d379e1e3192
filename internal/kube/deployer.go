package kube

import (
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// workloadKinds are the kinds of workload a deploy waits on and undoes,
// which a deploying identity may ship in its manifests.
var workloadKinds = []schema.GroupVersionKind{
	{Group: "apps", Version: "v1", Kind: "Deployment"},
	{Group: "apps", Version: "v1", Kind: "StatefulSet"},
	{Group: "apps", Version: "v1", Kind: "DaemonSet"},
	{Group: "batch", Version: "v1", Kind: "Job"},
	{Group: "batch", Version: "v1", Kind: "CronJob"},
}

// DeployerRules are RBAC rules granting, in namespace, every permission
// greenlight's permission check asks for with either strategy, checks
// through the API server, checks of new pods before traffic and the
// deploy lock — and nothing more. They make
// the Role a sandbox or a test binds a deploying identity to. They include
// the workloads of the manifests (Deployments, StatefulSets, DaemonSets,
// Jobs, CronJobs) and the pods' logs a failed pre-deploy Job is read from.
func DeployerRules(namespace string) []rbacv1.PolicyRule {
	var perms []Permission
	for _, strategy := range []string{strategyBlueGreen, "rolling"} {
		perms = append(perms, RequiredPermissions(Plan{Strategy: strategy, Namespace: namespace, UsesLease: true, ChecksThroughAPIServer: true, ChecksPodsBeforeTraffic: true, ReadsPodMetrics: true, ManifestKinds: workloadKinds})...)
	}
	perms = sortPermissions(perms)
	rules := make([]rbacv1.PolicyRule, 0, len(perms))
	for _, p := range perms {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{p.Group}, Resources: []string{p.Resource}, Verbs: []string{p.Verb}})
	}
	return rules
}
