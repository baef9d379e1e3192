package testcluster

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
)

// podNetwork is the documentation range pods get addresses from. Nothing
// dials these addresses: the egress proxy and the router translate them to
// the loopback ports where the pods' apps listen.
var podNetwork = netip.MustParsePrefix("198.51.100.0/24")

// addressBook hands out pod IPs and maps pod IP and port to the loopback
// address of the app serving there.
type addressBook struct {
	mu     sync.Mutex
	inUse  map[netip.Addr]bool
	routes map[netip.Addr]podRoutes
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
	for ip := podNetwork.Addr().Next(); podNetwork.Contains(ip); ip = ip.Next() {
		if ip.As4()[3] == 255 {
			break
		}
		if !b.inUse[ip] {
			b.inUse[ip] = true
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no free pod address in %s", podNetwork)
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

// resolve translates a pod address "198.51.100.7:8080" to the loopback
// address serving it. Anything that is not a routed pod address is refused,
// so nothing in the cluster ever dials outside this machine.
func (b *addressBook) resolve(hostport string) (string, error) {
	host, portText, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", hostport, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !podNetwork.Contains(ip) {
		return "", fmt.Errorf("address %q is not a pod address in %s", hostport, podNetwork)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return "", fmt.Errorf("address %q: bad port", hostport)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
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
