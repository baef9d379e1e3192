package credential

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"golang.org/x/oauth2"
)

// EKS token format, as aws-iam-authenticator verifies it.
const (
	eksTokenPrefix = "k8s-aws-v1."
	eksClusterID   = "x-k8s-aws-id"
	// eksLifetime is how long a token is used: EKS accepts it for 15
	// minutes after it was signed; aws-iam-authenticator says 14.
	eksLifetime = 14 * time.Minute
	// eksPresignExpiry is the presigned URL's own validity, as the AWS CLI
	// and aws-iam-authenticator sign it.
	eksPresignExpiry = "60"
)

type eksParams struct {
	cluster, region, roleARN, profile string
}

// eksSource presigns STS GetCallerIdentity for the cluster, which is
// what `aws eks get-token` prints.
type eksSource struct {
	client   *sts.PresignClient
	cluster  string
	lifetime time.Duration
	now      func() time.Time
}

func newEKS(ctx context.Context, env Env, p eksParams, plugin string) (oauth2.TokenSource, error) {
	if p.cluster == "" {
		return nil, &ExecError{Plugin: plugin, Problem: "its arguments name no cluster (--cluster-name, or -i for aws-iam-authenticator)"}
	}
	var opts []func(*awsconfig.LoadOptions) error
	region := p.region
	if region == "" {
		region = firstSet(env, "AWS_REGION", "AWS_DEFAULT_REGION")
	}
	if region == "" {
		// The global endpoint, as aws-iam-authenticator signs without one.
		region = "us-east-1"
	}
	opts = append(opts, awsconfig.WithRegion(region))
	profile := p.profile
	if profile == "" {
		profile = env.get("AWS_PROFILE")
	}
	switch {
	case env.get("AWS_ACCESS_KEY_ID") != "" && env.get("AWS_SECRET_ACCESS_KEY") != "":
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(
			env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY"), env.get("AWS_SESSION_TOKEN"))))
	case webIdentity(env):
		// Set below: the SDK would read the process environment, and a
		// kubeconfig's env entries must count too.
	case profile != "":
		opts = append(opts, awsconfig.WithSharedConfigProfile(profile))
	default:
		return nil, &ExecError{Plugin: plugin, Problem: "no AWS credentials were found",
			LookedFor: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN), AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN, or AWS_PROFILE; run aws-actions/configure-aws-credentials before greenlight"}
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, &ExecError{Plugin: plugin, Problem: "the AWS configuration cannot be read: " + err.Error()}
	}
	if webIdentity(env) && env.get("AWS_ACCESS_KEY_ID") == "" {
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewWebIdentityRoleProvider(
			sts.NewFromConfig(cfg, stsEndpoint(env)), env.get("AWS_ROLE_ARN"),
			stscreds.IdentityTokenFile(env.get("AWS_WEB_IDENTITY_TOKEN_FILE")),
			func(o *stscreds.WebIdentityRoleOptions) {
				o.RoleSessionName = firstSet(env, "AWS_ROLE_SESSION_NAME")
				if o.RoleSessionName == "" {
					o.RoleSessionName = "greenlight"
				}
			}))
	}
	if p.roleARN != "" {
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg, stsEndpoint(env)), p.roleARN,
			func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "greenlight" }))
	}
	client := sts.NewPresignClient(sts.NewFromConfig(cfg, stsEndpoint(env)))
	return &eksSource{client: client, cluster: p.cluster, lifetime: eksLifetime, now: time.Now}, nil
}

// stsEndpoint honours AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL from env, as
// the SDK does from the process environment.
func stsEndpoint(env Env) func(*sts.Options) {
	return func(o *sts.Options) {
		if u := firstSet(env, "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"); u != "" {
			o.BaseEndpoint = aws.String(u)
		}
	}
}

func (s *eksSource) Token() (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	signed := s.now()
	req, err := s.client.PresignGetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}, func(o *sts.PresignOptions) {
		o.ClientOptions = append(o.ClientOptions, func(o *sts.Options) {
			o.APIOptions = append(o.APIOptions,
				smithyhttp.AddHeaderValue(eksClusterID, s.cluster),
				smithyhttp.AddHeaderValue("X-Amz-Expires", eksPresignExpiry))
		})
	})
	if err != nil {
		return nil, fmt.Errorf("sign the EKS token for cluster %q: %s", s.cluster, scrubURLs(err.Error()))
	}
	tok := eksTokenPrefix + base64.RawURLEncoding.EncodeToString([]byte(req.URL))
	return &oauth2.Token{AccessToken: tok, TokenType: "Bearer", Expiry: signed.Add(s.lifetime)}, nil
}

// TokenSecrets lists what a log must never show of a token: the token, and
// for an EKS token the presigned URL inside it and its signed query values,
// raw and as the URL escapes them.
func TokenSecrets(token string) []string {
	out := []string{token}
	rest, ok := strings.CutPrefix(token, eksTokenPrefix)
	if !ok {
		return out
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return out
	}
	out = append(out, string(raw))
	u, err := url.Parse(string(raw))
	if err != nil {
		return out
	}
	q := u.Query()
	for _, name := range []string{"X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token"} {
		if v := q.Get(name); v != "" {
			out = append(out, v)
			if esc := url.QueryEscape(v); esc != v {
				out = append(out, esc)
			}
		}
	}
	return out
}

func webIdentity(env Env) bool {
	return env.get("AWS_WEB_IDENTITY_TOKEN_FILE") != "" && env.get("AWS_ROLE_ARN") != ""
}

func firstSet(env Env, names ...string) string {
	for _, n := range names {
		if v := env.get(n); v != "" {
			return v
		}
	}
	return ""
}

// scrubURLs drops query strings from URLs in msg: a presigned URL's query
// is a credential.
func scrubURLs(msg string) string {
	words := strings.Fields(msg)
	for i, w := range words {
		if strings.Contains(w, "://") {
			if j := strings.IndexByte(w, '?'); j >= 0 {
				words[i] = w[:j] + "?[redacted]"
			}
		}
	}
	return strings.Join(words, " ")
}
