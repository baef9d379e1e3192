package testcluster

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// TestLateSlicesApplyChangesLate proves the strict router's view of the
// EndpointSlices trails the watch by its delay, in the watch's order.
func TestLateSlicesApplyChangesLate(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const delay = 300 * time.Millisecond
	late := newLateSlices(ctx, delay)
	slice := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop-x", Labels: map[string]string{discoveryv1.LabelServiceName: "shop"}}}
	selector := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: "shop"})
	count := func() int {
		got, err := late.list("shop", selector)
		require.NoError(t, err)
		return len(got)
	}

	added := time.Now()
	late.observe(slice, false)
	late.observe(slice, true)
	late.observe(slice, false)
	assert.Zero(t, count(), "an added slice is not routed before the delay")
	require.Eventually(t, func() bool { return count() == 1 }, 5*time.Second, 10*time.Millisecond)
	assert.GreaterOrEqual(t, time.Since(added), delay, "the change was applied no earlier than its delay")

	late.observe(slice, true)
	assert.Equal(t, 1, count(), "a deleted slice is still routed until the delay has passed")
	require.Eventually(t, func() bool { return count() == 0 }, 5*time.Second, 10*time.Millisecond)
}

func TestNoRetryTransportTriesOneEndpoint(t *testing.T) {
	t.Parallel()
	// Two closed ports: with retries both are dialled, without only one.
	for _, noRetry := range []bool{false, true} {
		tr := failoverTransport{base: &http.Transport{}, noRetry: noRetry}
		req, err := http.NewRequestWithContext(context.WithValue(context.Background(), routeKey{}, route{candidates: []string{"127.0.0.1:1", "127.0.0.1:2"}, path: "/"}), http.MethodGet, "http://router/", nil)
		require.NoError(t, err)
		_, err = tr.RoundTrip(req)
		require.Error(t, err)
		assert.Equal(t, !noRetry, strings.Contains(err.Error(), "127.0.0.1:2"), "noRetry=%v: %v", noRetry, err)
	}
}
