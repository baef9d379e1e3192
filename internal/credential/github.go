package credential

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// The variables through which the runner offers a job its ID token; they
// are set only when the job has `permissions: id-token: write`.
const (
	EnvIDTokenRequestURL   = "ACTIONS_ID_TOKEN_REQUEST_URL"
	EnvIDTokenRequestToken = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
)

// ErrNoIDToken means the runner offers no ID token to this job.
var ErrNoIDToken = errors.New("the runner offers no GitHub OIDC ID token (" + EnvIDTokenRequestURL + " and " + EnvIDTokenRequestToken + " are not set); add `permissions: id-token: write` to the job")

// GitHubIDToken requests the job's OIDC ID token from the runner, as
// @actions/core getIDToken does. Its Token is uncached: wrap it in a
// Refresher.
type GitHubIDToken struct {
	requestURL, requestToken string
	audience                 string
	client                   *http.Client
}

// NewGitHubIDToken reads the runner's request URL and token from env; it
// fails with ErrNoIDToken when they are missing. audience becomes the aud
// claim.
func NewGitHubIDToken(env Env, audience string) (*GitHubIDToken, error) {
	u, tok := env.get(EnvIDTokenRequestURL), env.get(EnvIDTokenRequestToken)
	if u == "" || tok == "" {
		return nil, ErrNoIDToken
	}
	if _, err := url.Parse(u); err != nil {
		return nil, fmt.Errorf("%s is not a URL", EnvIDTokenRequestURL)
	}
	return &GitHubIDToken{requestURL: u, requestToken: tok, audience: audience, client: env.client()}, nil
}

// Secrets are the values to mask: the runner's request token.
func (g *GitHubIDToken) Secrets() []string { return []string{g.requestToken} }

// Token requests a new ID token.
func (g *GitHubIDToken) Token() (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u := g.requestURL
	if g.audience != "" {
		// The runner's URL already carries a query (api-version).
		sep := "&"
		if !strings.Contains(u, "?") {
			sep = "?"
		}
		u += sep + "audience=" + url.QueryEscape(g.audience)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("request the GitHub OIDC ID token: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+g.requestToken)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "actions/oidc-client")
	resp, err := g.client.Do(req)
	if err != nil {
		// The URL error would quote the request URL; keep only the cause.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("request the GitHub OIDC ID token from the runner: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("request the GitHub OIDC ID token: the runner answered %s", resp.Status)
	}
	var answer struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(body, &answer); err != nil || answer.Value == "" {
		return nil, errors.New("request the GitHub OIDC ID token: the runner's answer has no value")
	}
	claims, err := ParseClaims(answer.Value)
	if err != nil {
		return nil, fmt.Errorf("request the GitHub OIDC ID token: %w", err)
	}
	return &oauth2.Token{AccessToken: answer.Value, TokenType: "Bearer", Expiry: claims.Expiry}, nil
}

// Claims are the non-secret claims of an ID token that explain who it
// speaks for; messages may show them.
type Claims struct {
	Issuer      string
	Subject     string
	Audience    []string
	Repository  string
	Environment string
	Ref         string
	Expiry      time.Time
}

// ParseClaims reads a JWT's claims without checking its signature: they
// only label the token in messages and time its refresh.
func ParseClaims(jwt string) (Claims, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return Claims{}, errors.New("the token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return Claims{}, errors.New("the token's claims are not base64url")
	}
	var raw struct {
		Iss         string          `json:"iss"`
		Sub         string          `json:"sub"`
		Aud         json.RawMessage `json:"aud"`
		Repository  string          `json:"repository"`
		Environment string          `json:"environment"`
		Ref         string          `json:"ref"`
		Exp         int64           `json:"exp"`
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		return Claims{}, errors.New("the token's claims are not JSON")
	}
	c := Claims{Issuer: raw.Iss, Subject: raw.Sub, Repository: raw.Repository, Environment: raw.Environment, Ref: raw.Ref}
	if raw.Exp > 0 {
		c.Expiry = time.Unix(raw.Exp, 0)
	}
	var one string
	if json.Unmarshal(raw.Aud, &one) == nil {
		c.Audience = []string{one}
	} else {
		_ = json.Unmarshal(raw.Aud, &c.Audience)
	}
	return c, nil
}

// String lists the claims a cluster's JWT authenticator matches on.
func (c Claims) String() string {
	return fmt.Sprintf("iss %q, aud %q, sub %q, repository %q, environment %q, ref %q",
		c.Issuer, strings.Join(c.Audience, ","), c.Subject, c.Repository, c.Environment, c.Ref)
}
