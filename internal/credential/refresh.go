package credential

import (
	"net/http"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"k8s.io/client-go/transport"
)

// refreshShare is the part of a token's lifetime after which a new one is
// fetched; the kubelet renews projected tokens at the same point.
const refreshShare = 0.8

// Refresher caches a token and fetches a new one once refreshShare of its
// lifetime has passed, or at once after the API server refused it. It is
// safe for concurrent use.
type Refresher struct {
	base oauth2.TokenSource
	now  func() time.Time

	// onNew sees each token fetched, before any request carries it.
	onNew func(*oauth2.Token)

	mu        sync.Mutex
	tok       *oauth2.Token
	refreshAt time.Time
	fetched   time.Time
}

// NewRefresher wraps base; now is the clock, nil for time.Now.
func NewRefresher(base oauth2.TokenSource, now func() time.Time) *Refresher {
	if now == nil {
		now = time.Now
	}
	return &Refresher{base: base, now: now}
}

// OnNew has f called with each newly fetched token before Token returns
// it, so a log can be told to mask the token before any request carries it.
// Set it before the first Token.
func (r *Refresher) OnNew(f func(*oauth2.Token)) *Refresher {
	r.onNew = f
	return r
}

// Token returns the cached token while it is fresh, else a new one.
func (r *Refresher) Token() (*oauth2.Token, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if r.tok != nil && now.Before(r.refreshAt) {
		return r.tok, nil
	}
	tok, err := r.base.Token()
	if err != nil {
		return nil, err
	}
	if r.onNew != nil {
		r.onNew(tok)
	}
	r.tok, r.fetched = tok, now
	if tok.Expiry.IsZero() {
		// No expiry known: keep it briefly, and rely on the 401 reset.
		r.refreshAt = now.Add(time.Minute)
	} else {
		r.refreshAt = now.Add(time.Duration(float64(tok.Expiry.Sub(now)) * refreshShare))
	}
	return tok, nil
}

// ResetTokenOlderThan drops the cached token if it was fetched before t;
// client-go calls it when the API server answered 401.
func (r *Refresher) ResetTokenOlderThan(t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fetched.Before(t) {
		r.tok = nil
	}
}

// WrapTransport is a rest.Config WrapTransport that sends r's token as the
// bearer token of every request.
func (r *Refresher) WrapTransport() func(http.RoundTripper) http.RoundTripper {
	return transport.ResettableTokenSourceWrapTransport(r)
}
