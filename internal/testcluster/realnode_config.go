package testcluster

import (
	"fmt"
	"strings"
)

// realNodeName is the Node object the kubelet registers.
const realNodeName = "greenlight-node"

// realNodeBridge is the bridge the node's pods and Services are routed to;
// one per machine, like the node itself.
const realNodeBridge = "glrn0"

// cniNetworkName names the node's CNI network (and its cached results).
const cniNetworkName = "greenlight"

// realNodeLayout is where one run of the real node keeps its files.
type realNodeLayout struct {
	dir        string // the run's directory
	cgroupRoot string // cgroup (under every v1 controller) the kubelet puts pods in
}

func (l realNodeLayout) path(parts ...string) string {
	return strings.Join(append([]string{l.dir}, parts...), "/")
}
func (l realNodeLayout) containerdSocket() string { return l.path("containerd", "containerd.sock") }
func (l realNodeLayout) containerdRoot() string   { return l.path("containerd", "root") }
func (l realNodeLayout) containerdState() string  { return l.path("containerd", "state") }
func (l realNodeLayout) runcRoot() string         { return l.path("containerd", "runc") }
func (l realNodeLayout) registryHosts() string    { return l.path("containerd", "certs.d") }
func (l realNodeLayout) cniConfDir() string       { return l.path("cni", "net.d") }
func (l realNodeLayout) cniDataDir() string       { return l.path("cni", "ipam") }
func (l realNodeLayout) kubeletRoot() string      { return l.path("kubelet") }

// nodeIP is the bridge's gateway address, which is also the node's IP.
func nodeIP() string { return realNodePods.Addr().Next().String() }

// containerdConfig is containerd's configuration (version 2, as containerd
// 1.6 and 1.7 read it) with its own root, state and socket.
func containerdConfig(l realNodeLayout) string {
	return fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.internal.v1.tracing"]

[grpc]
  address = %q

[ttrpc]
  address = "%s.ttrpc"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  # No CAP_SYS_RESOURCE on these machines: without this every sandbox fails
  # with "can't get final child's PID from pipe".
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = %q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = %q
`, l.containerdRoot(), l.containerdState(), l.containerdSocket(), l.containerdSocket(), l.path("containerd", "opt"),
		pauseImage, l.runcRoot(), l.cniConfDir(), l.registryHosts())
}

// registryHostNames are the registries whose pulls go to the loopback
// registry; "_default" covers the rest where containerd supports it.
var registryHostNames = []string{"docker.io", "ghcr.io", "quay.io", "registry.k8s.io", "gcr.io", "public.ecr.aws", "registry.example", "_default"}

// registryHostsTOML points one registry host at the loopback registry.
func registryHostsTOML(registryAddr string) string {
	return fmt.Sprintf(`server = "http://%[1]s"

[host."http://%[1]s"]
  capabilities = ["pull", "resolve"]
`, registryAddr)
}

// cniConfList is the node's pod network: the bridge plugin (gateway, no
// masquerade: nothing leaves), portmap, and firewall so pod traffic passes a
// FORWARD policy of DROP.
func cniConfList(l realNodeLayout) string {
	first := realNodePods.Addr().Next().Next()
	last := realNodePods.Addr()
	for i := 0; i < (1<<(32-realNodePods.Bits()))-2; i++ {
		last = last.Next()
	}
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %q,
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": %q,
        "ranges": [[{"subnet": %q, "rangeStart": %q, "rangeEnd": %q, "gateway": %q}]]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "firewall"}
  ]
}
`, cniNetworkName, realNodeBridge, l.cniDataDir(), realNodePods, first, last, nodeIP())
}

// kubeletConfig is the KubeletConfiguration of the test node: anonymous
// AlwaysAllow (test only), cgroupfs on cgroup v1, no eviction or image GC
// pressure, every file under the run's directory.
func kubeletConfig(l realNodeLayout) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %s
port: 10250
readOnlyPort: 0
healthzPort: 0
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
cgroupDriver: cgroupfs
cgroupRoot: %s
failCgroupV1: false
failSwapOn: false
oomScoreAdj: 0
podCIDR: %s
resolvConf: ""
containerRuntimeEndpoint: unix://%s
podLogsDir: %s
volumePluginDir: %s
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "0%%"
  nodefs.inodesFree: "0%%"
  imagefs.available: "0%%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
localStorageCapacityIsolation: false
syncFrequency: 10s
fileCheckFrequency: 10s
nodeStatusUpdateFrequency: 2s
maxPods: 100
`, nodeIP(), l.cgroupRoot, realNodePods, l.containerdSocket(), l.path("pod-logs"), l.path("volume-plugins"))
}

// kubeProxyConfig is kube-proxy in iptables mode, changing no sysctls.
func kubeProxyConfig(kubeconfig string) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %s
mode: iptables
hostnameOverride: %s
clusterCIDR: %s
bindAddress: %s
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["%s/32"]
oomScoreAdj: 0
iptables:
  syncPeriod: 30s
  minSyncPeriod: 0s
  localhostNodePorts: false
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`, kubeconfig, realNodeName, realNodePods, nodeIP(), nodeIP())
}
