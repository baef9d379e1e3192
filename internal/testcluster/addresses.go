package testcluster

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"sync"
)

// The address plan of everything in testcluster. The whole documentation
// range is made local (unreachable) before any packet is sent, and only the
// planned sub-ranges are routed, each to a bridge on this machine, so no
// packet to these addresses can leave through the default gateway.
var (
	// planNetwork gets an `unreachable` route first.
	planNetwork = netip.MustParsePrefix("198.51.100.0/24")
	// realNodePods are the real node's pods, on its bridge; .1 is the
	// bridge's gateway address and the node's IP.
	realNodePods = netip.MustParsePrefix("198.51.100.0/26")
	// realNodeServices are the real node's ClusterIPs, routed to its bridge
	// so a request sent before kube-proxy's rules exist stays local.
	realNodeServices = netip.MustParsePrefix("198.51.100.128/26")
	// standInNamespaces are the stand-in's per-pod network namespaces,
	// shared by every cluster on the machine through per-address locks.
	standInNamespaces = netip.MustParsePrefix("198.51.100.192/26")
	// podNetwork is the stand-in's never-dialled pod IPs: the egress proxy
	// and the router translate them to the loopback ports where the pods'
	// apps listen. Each cluster has the whole range: the kernel never sees
	// these addresses.
	podNetwork = netip.MustParsePrefix("198.51.100.64/26")
	// nodeAddress is the stand-in node's InternalIP: the first address of
	// podNetwork, never given to a pod and never dialled; the egress proxy
	// translates only its kubelet port.
	nodeAddress = podNetwork.Addr()
)

// errNoFreeAddress is a used-up pod range: the pod waits for an address.
var errNoFreeAddress = errors.New("no free pod address")

// installUnreachablePlan installs the `unreachable 198.51.100.0/24` route;
// replacing it makes a second install a no-op. It needs root.
func installUnreachablePlan() error {
	out, err := exec.Command("ip", "route", "replace", "unreachable", planNetwork.String()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("install the route unreachable %s: %w: %s", planNetwork, err, bytes.TrimSpace(out))
	}
	return nil
}

// routesLeavingMachine asks the kernel how it would route every address of
// the plan and returns those that would go through a gateway, i.e. leave
// this machine.
func routesLeavingMachine() ([]string, error) {
	var batch strings.Builder
	var addrs []string
	for ip := planNetwork.Addr(); planNetwork.Contains(ip); ip = ip.Next() {
		addrs = append(addrs, ip.String())
		fmt.Fprintf(&batch, "route get %s\n", ip)
	}
	cmd := exec.Command("ip", "-o", "-force", "-batch", "-")
	cmd.Stdin = strings.NewReader(batch.String())
	out, _ := cmd.CombinedOutput() // unreachable addresses make `ip` report errors: that is the point
	var leaving []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[1] == "via" {
			leaving = append(leaving, strings.TrimSpace(line))
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("no addresses in %s", planNetwork)
	}
	return leaving, nil
}

// addressBook hands out pod IPs and maps pod IP and port to the loopback
// address of the app serving there.
type addressBook struct {
	mu     sync.Mutex
	inUse  map[netip.Addr]bool
	routes map[netip.Addr]podRoutes

	kubeletPort   int    // the node's kubelet port on nodeAddress
	kubeletTarget string // the loopback address serving it
}

// podRoutes maps a pod's container ports to loopback addresses; port 0 is
// the pod's first container, used for ports nobody declared.
type podRoutes map[int]string

func newAddressBook() *addressBook {
	return &addressBook{inUse: map[netip.Addr]bool{}, routes: map[netip.Addr]podRoutes{}}
}

// allocate returns the lowest free pod IP, so addresses of deleted pods are
// reused as a node's IPAM would.
func (b *addressBook) allocate() (netip.Addr, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Neither the range's first nor its last address, as on a real subnet.
	for ip := podNetwork.Addr().Next(); podNetwork.Contains(ip.Next()); ip = ip.Next() {
		if !b.inUse[ip] {
			b.inUse[ip] = true
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%w in %s", errNoFreeAddress, podNetwork)
}

// release frees a pod IP and forgets its routes.
func (b *addressBook) release(ip netip.Addr) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.inUse, ip)
	delete(b.routes, ip)
}

// route makes ip:port reach the loopback address target.
func (b *addressBook) route(ip netip.Addr, port int, target string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.routes[ip] == nil {
		b.routes[ip] = podRoutes{}
	}
	b.routes[ip][port] = target
}

// unroute stops all traffic to ip, as when a pod's containers stop.
func (b *addressBook) unroute(ip netip.Addr) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.routes, ip)
}

// serveKubelet makes nodeAddress:port, and nothing else of the node's
// address, reach the loopback address target.
func (b *addressBook) serveKubelet(port int, target string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.kubeletPort, b.kubeletTarget = port, target
}

// resolve translates a pod address "198.51.100.7:8080", or the node's
// kubelet port, to the loopback address serving it. Anything else is refused,
// so nothing in the cluster ever dials outside this machine.
func (b *addressBook) resolve(hostport string) (string, error) {
	host, portText, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", hostport, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !(podNetwork.Contains(ip) || standInNamespaces.Contains(ip)) {
		return "", fmt.Errorf("address %q is not a pod address in %s or %s", hostport, podNetwork, standInNamespaces)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return "", fmt.Errorf("address %q: bad port", hostport)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if ip == nodeAddress {
		if b.kubeletTarget == "" || port != b.kubeletPort {
			return "", fmt.Errorf("nothing listens on %s: the node serves only its kubelet port", hostport)
		}
		return b.kubeletTarget, nil
	}
	routes, ok := b.routes[ip]
	if !ok {
		return "", fmt.Errorf("no running pod at %s", hostport)
	}
	if target, ok := routes[port]; ok {
		return target, nil
	}
	if target, ok := routes[0]; ok {
		return target, nil
	}
	return "", fmt.Errorf("nothing listens on %s", hostport)
}

// forwardTarget is where a port-forward to port of the pod at ip connects.
// Unlike resolve it has no fallback to the first container: a pod in its
// own network namespace is dialled at the port asked for, and an in-process
// app only at a port it serves, so a port nothing listens on is refused.
func (b *addressBook) forwardTarget(ip netip.Addr, port int) (string, error) {
	if standInNamespaces.Contains(ip) {
		return portName(ip, port), nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if target, ok := b.routes[ip][port]; ok {
		return target, nil
	}
	// What dialling a port of a network namespace with no listener gives.
	return "", fmt.Errorf("dial tcp %s: connect: connection refused", portName(ip, port))
}
