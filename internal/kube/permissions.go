package kube

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
)

// strategyBlueGreen is the Plan.Strategy that needs the extra Deployment and
// Service permissions.
const strategyBlueGreen = "blue-green"

// rbacRoleName names the Role that FormatRBACRule suggests.
const rbacRoleName = "greenlight-deployer"

// Permission is one thing the deploying identity must be allowed to do.
type Permission struct {
	// Group is the API group; empty for the core group.
	Group string
	// Resource is the plural resource, such as "deployments".
	Resource string
	// Verb is the API verb, such as "patch".
	Verb string
	// Namespace is where; empty for a cluster-scoped resource.
	Namespace string
	// Name narrows the permission to one object; empty means any.
	Name string
}

// String reads as "patch deployments.apps in namespace "payments"".
func (p Permission) String() string {
	var b strings.Builder
	b.WriteString(p.Verb)
	b.WriteString(" ")
	b.WriteString(qualifiedResource(p.Group, p.Resource))
	if p.Name != "" {
		fmt.Fprintf(&b, " %q", p.Name)
	}
	if p.Namespace != "" {
		fmt.Fprintf(&b, " in namespace %q", p.Namespace)
	} else {
		b.WriteString(" (cluster-wide)")
	}
	return b.String()
}

// Plan is what a deployment is going to do, as far as access goes.
type Plan struct {
	// Strategy is "rolling" or "blue-green"; anything else is taken as
	// rolling.
	Strategy string
	// Namespace is where the application lives.
	Namespace string
	// ManifestKinds are the kinds the manifests apply with server-side apply.
	ManifestKinds []schema.GroupVersionKind
	// UsesLease is true when a Lease serialises concurrent deployments.
	UsesLease bool
	// ChecksThroughAPIServer is true when health checks reach the app
	// through the API server's service proxy (no public URL).
	ChecksThroughAPIServer bool
	// ChecksPodsBeforeTraffic is true when blue-green's checks before
	// traffic go to each new pod through a port-forward (they carry a
	// token or smoke-test headers).
	ChecksPodsBeforeTraffic bool
	// ReadsPodMetrics is true when monitoring scrapes the new pods'
	// metrics through the API server's pod proxy.
	ReadsPodMetrics bool
	// WritesAppEnv is true when app-env is delivered as a Secret of the
	// deploy; pruning old ones reads the revisions that may refer to them.
	WritesAppEnv bool
}

// RequiredPermissions lists every permission plan needs, each once, in a
// stable order (namespace, group, resource, then get, list, watch, create,
// update, patch, delete).
func RequiredPermissions(plan Plan) []Permission {
	ns := plan.Namespace
	var perms []Permission
	add := func(group, resource, namespace string, verbs ...string) {
		for _, v := range verbs {
			perms = append(perms, Permission{Group: group, Resource: resource, Verb: v, Namespace: namespace})
		}
	}
	// Watching a rollout: the Deployment, its ReplicaSets, their pods and
	// the events that explain failures.
	add("apps", "deployments", ns, "get", "list", "watch", "patch")
	add("apps", "replicasets", ns, "list", "watch")
	add("", "pods", ns, "list", "watch")
	add("", "events", ns, "list")
	// Deployment history records.
	add("", "configmaps", ns, "get", "create", "update")
	if plan.UsesLease {
		add("coordination.k8s.io", "leases", ns, "get", "create", "update")
	}
	// The endpoints proof that traffic reaches the new version reads the
	// Service and its EndpointSlices, whatever the strategy.
	add("", "services", ns, "get")
	add("discovery.k8s.io", "endpointslices", ns, "list", "watch")
	if plan.Strategy == strategyBlueGreen {
		// A second Deployment per colour, the preview Service, and the
		// Service selector switch.
		add("apps", "deployments", ns, "create", "update", "delete")
		add("", "services", ns, "create", "update", "patch")
	}
	if plan.ChecksThroughAPIServer {
		add("", "services/proxy", ns, "get")
	}
	if plan.ChecksPodsBeforeTraffic && plan.Strategy == strategyBlueGreen {
		add("", "pods/portforward", ns, "create")
	}
	if plan.ReadsPodMetrics {
		add("", "pods/proxy", ns, "get")
	}
	if plan.WritesAppEnv {
		add("", "secrets", ns, "get", "list", "create", "delete")
		add("apps", "controllerrevisions", ns, "list")
	}
	deployments := 0
	for _, gvk := range plan.ManifestKinds {
		if gvk.GroupKind().String() == "Deployment.apps" {
			deployments++
		}
	}
	for _, gvk := range plan.ManifestKinds {
		if gvk.Kind == "" || strings.HasSuffix(gvk.Kind, "List") {
			continue
		}
		resource, _ := meta.UnsafeGuessKindToResource(gvk)
		namespace := ns
		if clusterScopedKind(gvk.GroupKind()) {
			namespace = ""
		}
		// Server-side apply is a patch, and also checks create when the
		// object does not exist yet; get reads the current state first.
		add(gvk.Group, resource.Resource, namespace, "get", "create", "patch")
		switch gvk.GroupKind().String() {
		case "Deployment.apps":
			// The application's own Deployment is never deleted by a
			// rolling deploy; a second one (a worker) is, when the deploy
			// that created it is undone.
			if deployments > 1 {
				add(gvk.Group, resource.Resource, namespace, "list", "watch", "delete")
			}
		case "StatefulSet.apps", "DaemonSet.apps", "Job.batch", "CronJob.batch":
			// Each workload is watched until rolled out, and one this
			// deploy created is deleted when the deploy is undone.
			add(gvk.Group, resource.Resource, namespace, "list", "watch", "delete")
		}
		switch gvk.GroupKind().String() {
		case "Job.batch":
			// A failed pre-deploy Job's log tail goes into the summary.
			add("", "pods/log", namespace, "get")
		case "StatefulSet.apps":
			// Undoing a StatefulSet deletes its pods of the failed revision
			// that never became ready, or the controller waits on them.
			add("", "pods", namespace, "delete")
		}
	}
	return sortPermissions(perms)
}

// clusterScopedKind recognises the common cluster-scoped kinds a manifest
// set may carry; others are assumed namespaced.
func clusterScopedKind(gk schema.GroupKind) bool {
	switch gk {
	case schema.GroupKind{Kind: "Namespace"},
		schema.GroupKind{Kind: "Node"},
		schema.GroupKind{Kind: "PersistentVolume"},
		schema.GroupKind{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"},
		schema.GroupKind{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"},
		schema.GroupKind{Group: "storage.k8s.io", Kind: "StorageClass"},
		schema.GroupKind{Group: "scheduling.k8s.io", Kind: "PriorityClass"},
		schema.GroupKind{Group: "networking.k8s.io", Kind: "IngressClass"},
		schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"},
		schema.GroupKind{Group: "admissionregistration.k8s.io", Kind: "ValidatingWebhookConfiguration"},
		schema.GroupKind{Group: "admissionregistration.k8s.io", Kind: "MutatingWebhookConfiguration"},
		schema.GroupKind{Group: "apiregistration.k8s.io", Kind: "APIService"}:
		return true
	default:
		return false
	}
}

// verbRank orders verbs from reading to writing, as RBAC rules usually
// list them; unknown verbs sort last, alphabetically.
func verbRank(verb string) int {
	switch verb {
	case "get":
		return 0
	case "list":
		return 1
	case "watch":
		return 2
	case "create":
		return 3
	case "update":
		return 4
	case "patch":
		return 5
	case "delete":
		return 6
	default:
		return 7
	}
}

func compareVerbs(a, b string) int {
	return cmp.Or(cmp.Compare(verbRank(a), verbRank(b)), strings.Compare(a, b))
}

func sortPermissions(perms []Permission) []Permission {
	out := slices.Clone(perms)
	slices.SortFunc(out, func(a, b Permission) int {
		return cmp.Or(
			cmp.Compare(a.Namespace, b.Namespace),
			cmp.Compare(a.Group, b.Group),
			cmp.Compare(a.Resource, b.Resource),
			cmp.Compare(a.Name, b.Name),
			compareVerbs(a.Verb, b.Verb),
		)
	})
	return slices.Compact(out)
}

// CheckPermissions asks the API server, with one SelfSubjectAccessReview per
// permission, which of perms the client's identity lacks. An error means the
// question could not be asked (see ClassifyAPIError), not that access is
// missing.
func CheckPermissions(ctx context.Context, client kubernetes.Interface, perms []Permission) (missing []Permission, err error) {
	granted := grantedByRules(ctx, client, perms)
	reviews := client.AuthorizationV1().SelfSubjectAccessReviews()
	for i, p := range perms {
		if granted[i] {
			continue
		}
		review := &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: p.Namespace,
					Verb:      p.Verb,
					Group:     p.Group,
					Resource:  p.Resource,
					Name:      p.Name,
				},
			},
		}
		got, err := reviews.Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("check permission to %s: %w", p, ClassifyAPIError(err))
		}
		if !got.Status.Allowed {
			missing = append(missing, p)
		}
	}
	return missing, nil
}

// grantedByRules asks one SelfSubjectRulesReview per namespace and marks
// the permissions its rules grant, so a credential that may do everything
// costs one request instead of one per verb. The rules are advisory (an
// authorizer may not list its rules), so anything they do not grant is
// still asked one by one, and a failed rules review only costs its request.
func grantedByRules(ctx context.Context, client kubernetes.Interface, perms []Permission) []bool {
	granted := make([]bool, len(perms))
	rules := map[string][]authorizationv1.ResourceRule{}
	for i, p := range perms {
		if p.Namespace == "" {
			continue // rules reviews are per namespace
		}
		rs, ok := rules[p.Namespace]
		if !ok {
			review, err := client.AuthorizationV1().SelfSubjectRulesReviews().Create(ctx, &authorizationv1.SelfSubjectRulesReview{
				Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: p.Namespace},
			}, metav1.CreateOptions{})
			if err == nil {
				rs = review.Status.ResourceRules
			}
			rules[p.Namespace] = rs
		}
		granted[i] = RulesAllow(rs, p)
	}
	return granted
}

// RulesAllow tells whether RBAC-style rules grant a permission, with "*"
// matching any verb, group or resource.
func RulesAllow(rules []authorizationv1.ResourceRule, p Permission) bool {
	for _, r := range rules {
		if matches(r.Verbs, p.Verb) && matches(r.APIGroups, p.Group) && matches(r.Resources, p.Resource) &&
			(len(r.ResourceNames) == 0 || (p.Name != "" && slices.Contains(r.ResourceNames, p.Name))) {
			return true
		}
	}
	return false
}

func matches(list []string, v string) bool {
	return slices.Contains(list, "*") || slices.Contains(list, v)
}

// rbacRule is one RBAC rule: verbs over resources of one API group.
type rbacRule struct {
	group     string
	resources []string
	names     []string
	verbs     []string
}

// FormatRBACRule explains how to grant missing permissions: for each
// namespace (and once for cluster-scoped ones) the kubectl commands that
// create a Role with them, grouping resources that need the same verbs, and
// the same Role as YAML to apply or merge into an existing Role. It returns
// "" when nothing is missing.
func FormatRBACRule(missing []Permission) string {
	if len(missing) == 0 {
		return ""
	}
	perms := sortPermissions(missing)
	var scopes []string
	byScope := map[string][]Permission{}
	for _, p := range perms {
		if _, ok := byScope[p.Namespace]; !ok {
			scopes = append(scopes, p.Namespace)
		}
		byScope[p.Namespace] = append(byScope[p.Namespace], p)
	}
	// Namespaced scopes first, cluster-wide last.
	slices.SortStableFunc(scopes, func(a, b string) int {
		return cmp.Or(cmp.Compare(boolRank(a == ""), boolRank(b == "")), cmp.Compare(a, b))
	})

	var b strings.Builder
	for i, ns := range scopes {
		if i > 0 {
			b.WriteString("\n")
		}
		writeRBACScope(&b, ns, byScope[ns])
	}
	return b.String()
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

func writeRBACScope(b *strings.Builder, ns string, perms []Permission) {
	kind, createCmd, nsFlag, where := "Role", "role", " --namespace="+ns, fmt.Sprintf("in namespace %q", ns)
	if ns == "" {
		kind, createCmd, nsFlag, where = "ClusterRole", "clusterrole", "", "cluster-wide"
	}

	// Resources needing the same verbs go in one kubectl command, since
	// kubectl create role applies every --verb to every --resource.
	type target struct{ group, resource, name string }
	verbsOf := map[target][]string{}
	var targets []target
	for _, p := range perms {
		t := target{p.Group, p.Resource, p.Name}
		if _, ok := verbsOf[t]; !ok {
			targets = append(targets, t)
		}
		verbsOf[t] = append(verbsOf[t], p.Verb)
	}
	type command struct {
		verbs     []string
		resources []string
		names     []string
	}
	var commands []*command
	byVerbs := map[string]*command{}
	for _, t := range targets {
		key := strings.Join(verbsOf[t], ",") + "\x00" + t.name
		c, ok := byVerbs[key]
		if !ok {
			c = &command{verbs: verbsOf[t]}
			byVerbs[key] = c
			commands = append(commands, c)
		}
		if r := qualifiedResource(t.group, t.resource); !slices.Contains(c.resources, r) {
			c.resources = append(c.resources, r)
		}
		if t.name != "" && !slices.Contains(c.names, t.name) {
			c.names = append(c.names, t.name)
		}
	}

	fmt.Fprintf(b, "# Missing Kubernetes permissions %s:\n", where)
	for _, t := range targets {
		fmt.Fprintf(b, "#   %s: %s\n", qualifiedResourceName(t.group, t.resource, t.name), strings.Join(verbsOf[t], ", "))
	}
	b.WriteString("# Grant them with kubectl:\n")
	names := roleNames(len(commands), func(i int) string {
		resource, _, _ := strings.Cut(commands[i].resources[0], ".")
		return resource
	})
	for i, c := range commands {
		fmt.Fprintf(b, "kubectl create %s %s%s --verb=%s --resource=%s", createCmd, names[i], nsFlag,
			strings.Join(c.verbs, ","), strings.Join(c.resources, ","))
		for _, n := range c.names {
			fmt.Fprintf(b, " --resource-name=%s", n)
		}
		b.WriteString("\n")
	}
	bindCmd, bindFlag := "rolebinding", "--role"
	subjectNS := ns
	if ns == "" {
		bindCmd, bindFlag, subjectNS = "clusterrolebinding", "--clusterrole", "<namespace>"
	}
	b.WriteString("# and bind each to the identity in the kubeconfig, for a service account:\n")
	for _, n := range names {
		fmt.Fprintf(b, "#   kubectl create %s %s%s %s=%s --serviceaccount=%s:<service-account>\n",
			bindCmd, n, nsFlag, bindFlag, n, subjectNS)
	}

	// The YAML holds one rule per API group and verb set, so no rule grants
	// a resource in a group it does not belong to.
	var rules []*rbacRule
	byRule := map[string]*rbacRule{}
	for _, t := range targets {
		key := t.group + "\x00" + strings.Join(verbsOf[t], ",") + "\x00" + t.name
		r, ok := byRule[key]
		if !ok {
			r = &rbacRule{group: t.group, verbs: verbsOf[t]}
			byRule[key] = r
			rules = append(rules, r)
		}
		if !slices.Contains(r.resources, t.resource) {
			r.resources = append(r.resources, t.resource)
		}
		if t.name != "" && !slices.Contains(r.names, t.name) {
			r.names = append(r.names, t.name)
		}
	}
	fmt.Fprintf(b, "# Or apply this %s (or add its rules to the one in use):\n", kind)
	b.WriteString("apiVersion: rbac.authorization.k8s.io/v1\n")
	fmt.Fprintf(b, "kind: %s\n", kind)
	b.WriteString("metadata:\n")
	fmt.Fprintf(b, "  name: %s\n", rbacRoleName)
	if ns != "" {
		fmt.Fprintf(b, "  namespace: %s\n", ns)
	}
	b.WriteString("rules:\n")
	for _, r := range rules {
		fmt.Fprintf(b, "  - apiGroups: [%s]\n", quoteYAMLList([]string{r.group}))
		fmt.Fprintf(b, "    resources: [%s]\n", quoteYAMLList(r.resources))
		if len(r.names) > 0 {
			fmt.Fprintf(b, "    resourceNames: [%s]\n", quoteYAMLList(r.names))
		}
		fmt.Fprintf(b, "    verbs: [%s]\n", quoteYAMLList(r.verbs))
	}
}

// roleNames gives one Role name per kubectl command: the plain name when one
// suffices, otherwise the name suffixed with each command's first resource.
func roleNames(n int, firstResource func(int) string) []string {
	if n == 1 {
		return []string{rbacRoleName}
	}
	names := make([]string, n)
	used := map[string]bool{}
	for i := range n {
		base := rbacRoleName + "-" + firstResource(i)
		name := base
		for k := 2; used[name]; k++ {
			name = fmt.Sprintf("%s-%d", base, k)
		}
		used[name] = true
		names[i] = name
	}
	return names
}

func qualifiedResource(group, resource string) string {
	if group == "" {
		return resource
	}
	return resource + "." + group
}

func qualifiedResourceName(group, resource, name string) string {
	if name == "" {
		return qualifiedResource(group, resource)
	}
	return qualifiedResource(group, resource) + "/" + name
}

func quoteYAMLList(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(quoted, ", ")
}
