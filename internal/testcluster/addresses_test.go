package testcluster

import (
	"net/netip"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	require.NoError(t, err)
	return a
}

func TestAddressBook(t *testing.T) {
	t.Parallel()
	b := newAddressBook()
	first, err := b.allocate()
	require.NoError(t, err)
	second, err := b.allocate()
	require.NoError(t, err)
	assert.Equal(t, "198.51.100.65", first.String())
	assert.Equal(t, "198.51.100.66", second.String())

	b.route(first, 8080, "127.0.0.1:1111")
	b.route(first, 0, "127.0.0.1:1111")
	got, err := b.resolve("198.51.100.65:8080")
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:1111", got)
	got, err = b.resolve("198.51.100.65:9999")
	require.NoError(t, err, "an undeclared port reaches the first container")
	assert.Equal(t, "127.0.0.1:1111", got)

	for _, refused := range []string{"198.51.100.66:80", "198.51.100.1:80", "10.0.0.1:80", "8.8.8.8:53", "localhost:80", "garbage"} {
		_, err := b.resolve(refused)
		assert.Error(t, err, refused)
	}

	b.release(first)
	_, err = b.resolve("198.51.100.65:8080")
	assert.Error(t, err, "a released address has no routes")
	again, err := b.allocate()
	require.NoError(t, err)
	assert.Equal(t, first, again, "addresses of deleted pods are reused")

	// The range has room for 62 pods; the 63rd waits for an address.
	for range 60 {
		_, err := b.allocate()
		require.NoError(t, err)
	}
	_, err = b.allocate()
	require.ErrorIs(t, err, errNoFreeAddress)
	b.release(second)
	again, err = b.allocate()
	require.NoError(t, err)
	assert.Equal(t, second, again)
}

func TestImageTag(t *testing.T) {
	t.Parallel()
	for image, want := range map[string]string{
		"sampleapp":                          "latest",
		"sampleapp:v2":                       "v2",
		"ghcr.io/acme/sampleapp:missing-3":   "missing-3",
		"localhost:5000/sampleapp":           "latest",
		"localhost:5000/sampleapp:v1@sha256": "v1",
	} {
		assert.Equal(t, want, imageTag(image), image)
	}
}

func TestAddressPlanRanges(t *testing.T) {
	t.Parallel()
	ranges := []netip.Prefix{realNodePods, realNodeServices, standInNamespaces, podNetwork}
	for i, a := range ranges {
		assert.True(t, planNetwork.Contains(a.Addr()) && a.Bits() > planNetwork.Bits(), "%s inside %s", a, planNetwork)
		for _, b := range ranges[i+1:] {
			assert.False(t, a.Overlaps(b), "%s and %s overlap", a, b)
		}
	}
}

// TestAddressPlanKeepsPacketsLocal installs the plan's unreachable route and
// fails if the kernel would send any address of 198.51.100.0/24 through a
// gateway.
func TestAddressPlanKeepsPacketsLocal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("installing the route unreachable 198.51.100.0/24 needs root")
	}
	require.NoError(t, installUnreachablePlan())
	require.NoError(t, installUnreachablePlan(), "installing twice is a no-op")
	leaving, err := routesLeavingMachine()
	require.NoError(t, err)
	assert.Empty(t, leaving, "addresses of the plan routed through a gateway")
}
