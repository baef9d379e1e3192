// Package credentialtest serves the clouds' token endpoints on loopback for
// tests: AWS STS, Google's OAuth 2.0 token endpoint and Microsoft Entra ID.
// Each answers as the real one does for the requests greenlight's
// credential sources make, hands out the credentials the test chose, and
// records the forms it received.
package credentialtest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Endpoint is a fake token endpoint that records each form it receives.
type Endpoint struct {
	*httptest.Server

	mu    sync.Mutex
	forms []url.Values
}

// Forms are the forms received, oldest first.
func (e *Endpoint) Forms() []url.Values {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.forms)
}

func (e *Endpoint) record(r *http.Request) url.Values {
	body, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(body))
	for k, v := range r.URL.Query() {
		form[k] = append(form[k], v...)
	}
	e.mu.Lock()
	e.forms = append(e.forms, form)
	e.mu.Unlock()
	return form
}

// AWSCredentials are what STS hands out for an assumed role.
type AWSCredentials struct {
	AccessKeyID, SecretAccessKey, SessionToken string
}

// NewSTS starts a fake AWS STS over HTTP that answers AssumeRole and
// AssumeRoleWithWebIdentity with creds, or with refuse refuses them as STS
// refuses a role whose trust policy does not match (403 AccessDenied).
func NewSTS(t testing.TB, creds AWSCredentials, refuse bool) *Endpoint {
	e := &Endpoint{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		action := e.record(r).Get("Action")
		w.Header().Set("Content-Type", "text/xml")
		if refuse {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>Not authorized to perform sts:%s</Message></Error><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ErrorResponse>`, action)
			return
		}
		exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		fmt.Fprintf(w, `<%[1]sResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><%[1]sResult><Credentials><AccessKeyId>%[2]s</AccessKeyId><SecretAccessKey>%[3]s</SecretAccessKey><SessionToken>%[4]s</SessionToken><Expiration>%[5]s</Expiration></Credentials><AssumedRoleUser><Arn>arn:aws:sts::111122223333:assumed-role/deployer/greenlight</Arn><AssumedRoleId>AROA:greenlight</AssumedRoleId></AssumedRoleUser></%[1]sResult></%[1]sResponse>`,
			action, creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken, exp)
	}))
	t.Cleanup(e.Close)
	return e
}

// NewGoogleToken starts a fake Google OAuth 2.0 token endpoint over HTTP
// that answers with accessToken, or with refuse refuses the assertion as
// Google refuses a deleted key (400 invalid_grant).
func NewGoogleToken(t testing.TB, accessToken string, refuse bool) *Endpoint {
	e := &Endpoint{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.record(r)
		w.Header().Set("Content-Type", "application/json")
		if refuse {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`)
			return
		}
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3599}`, accessToken)
	}))
	t.Cleanup(e.Close)
	return e
}

// NewEntraID starts a fake Microsoft Entra ID over TLS (azidentity talks
// to nothing else): each tenant's OpenID discovery document and its token
// endpoint, which answers with accessToken, or with refuse refuses the
// client assertion as Entra ID does when no federated credential matches
// (401 invalid_client, AADSTS700213). Point AZURE_AUTHORITY_HOST at URL+"/"
// and trust the server's certificate.
func NewEntraID(t testing.TB, accessToken string, refuse bool) *Endpoint {
	e := &Endpoint{}
	e.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/openid-configuration") {
			tenant := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")[0]
			fmt.Fprintf(w, `{"token_endpoint":"%[1]s/%[2]s/oauth2/v2.0/token","issuer":"%[1]s/%[2]s/v2.0","authorization_endpoint":"%[1]s/%[2]s/oauth2/v2.0/authorize"}`, e.URL, tenant)
			return
		}
		e.record(r)
		if refuse {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client","error_description":"AADSTS700213: No matching federated identity record found for presented assertion subject 'repo:acme/shop:environment:production'.","error_codes":[700213],"trace_id":"0000","correlation_id":"1111"}`)
			return
		}
		fmt.Fprintf(w, `{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":%q}`, accessToken)
	}))
	t.Cleanup(e.Close)
	return e
}
