package kube

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseImage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ref      string
		want     ImageRef
		fullRepo string
	}{
		{"nginx", ImageRef{Repository: "nginx"}, "docker.io/library/nginx"},
		{"nginx:1.2", ImageRef{Repository: "nginx", Tag: "1.2"}, "docker.io/library/nginx"},
		{"bitnami/redis:7", ImageRef{Repository: "bitnami/redis", Tag: "7"}, "docker.io/bitnami/redis"},
		{"ghcr.io/org/app:v1", ImageRef{Registry: "ghcr.io", Repository: "org/app", Tag: "v1"}, "ghcr.io/org/app"},
		{"localhost:5000/app:v1", ImageRef{Registry: "localhost:5000", Repository: "app", Tag: "v1"}, "localhost:5000/app"},
		{"localhost:5000/app", ImageRef{Registry: "localhost:5000", Repository: "app"}, "localhost:5000/app"},
		{"localhost/app", ImageRef{Registry: "localhost", Repository: "app"}, "localhost/app"},
		{"app@" + testDigest, ImageRef{Repository: "app", Digest: testDigest}, "docker.io/library/app"},
		{"app:v1@" + testDigest, ImageRef{Repository: "app", Tag: "v1", Digest: testDigest}, "docker.io/library/app"},
		{"registry.example.com:443/team/sub/app:1.0.0-rc.1_b", ImageRef{Registry: "registry.example.com:443", Repository: "team/sub/app", Tag: "1.0.0-rc.1_b"}, "registry.example.com:443/team/sub/app"},
		{"docker.io/library/nginx:latest", ImageRef{Registry: "docker.io", Repository: "library/nginx", Tag: "latest"}, "docker.io/library/nginx"},
		{"index.docker.io/nginx", ImageRef{Registry: "index.docker.io", Repository: "nginx"}, "docker.io/library/nginx"},
		{"my-app__x.y--z:V1", ImageRef{Repository: "my-app__x.y--z", Tag: "V1"}, "docker.io/library/my-app__x.y--z"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			t.Parallel()
			got, err := ParseImage(tt.ref)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.ref, got.String())
			assert.Equal(t, tt.fullRepo, got.FullRepository())
		})
	}
}

func TestParseImageRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ref  string
		want string
	}{
		{"", "empty"},
		{"nginx :1", "whitespace"},
		{"nginx\n", "whitespace"},
		{"Nginx", "lowercase"},
		{"ghcr.io/Org/app:v1", "lowercase"},
		{"app@sha256:abc", "64 lowercase hex"},
		{"app@md5:" + strings.Repeat("a", 64), "64 lowercase hex"},
		{"app@" + strings.ToUpper(testDigest), "64 lowercase hex"},
		{"app:", "tag"},
		{"app:-v1", "tag"},
		{"app:v/1", "port"},
		{"app:" + strings.Repeat("a", 129), "tag"},
		{":v1", "repository name is empty"},
		{"ghcr.io/", "invalid path part"},
		{"ghcr.io//app", "invalid path part"},
		{"app-", "invalid path part"},
		{"a..b", "invalid path part"},
		{"a___b", "invalid path part"},
		{"localhost:port/app", "port"},
		{"-bad.io/app", "host name"},
		{strings.Repeat("a", 256), "longer than 255"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			t.Parallel()
			_, err := ParseImage(tt.ref)
			require.Error(t, err)
			assert.True(t, errors.Is(err, ErrInvalidImage))
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), "accepted forms:", "the message names what is accepted")
		})
	}
}

func TestSameRepository(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want bool
	}{
		{"nginx", "docker.io/library/nginx:1.27", true},
		{"nginx:1", "nginx@" + testDigest, true},
		{"library/nginx", "index.docker.io/library/nginx", true},
		{"ghcr.io/org/app:v1", "ghcr.io/org/app:v2", true},
		{"ghcr.io/org/app", "ghcr.io/org/app-worker", false},
		{"ghcr.io/org/app", "docker.io/org/app", false},
		{"localhost:5000/app", "localhost:5001/app", false},
		{"nginx", "Not Valid", false},
	}
	for _, tt := range tests {
		t.Run(tt.a+"~"+tt.b, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, SameRepository(tt.a, tt.b))
			assert.Equal(t, tt.want, SameRepository(tt.b, tt.a))
		})
	}
}

func FuzzParseImage(f *testing.F) {
	for _, seed := range []string{
		"nginx", "nginx:1.2", "ghcr.io/org/app:v1", "localhost:5000/app:v1",
		"app@" + testDigest, "app:v1@" + testDigest, "", " ", "A", "a:b:c", "a/b/c/d:e",
		"host:1/x@sha256:", "x__y", "x---y", "[::1]:5000/app",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		got, err := ParseImage(ref)
		if err != nil {
			if !errors.Is(err, ErrInvalidImage) {
				t.Fatalf("error does not wrap ErrInvalidImage: %v", err)
			}
			return
		}
		if got.Repository == "" {
			t.Fatalf("accepted %q with an empty repository", ref)
		}
		// Parsing is lossless: the reassembled reference parses to the same value.
		if s := got.String(); s != ref {
			t.Fatalf("String() = %q, want %q", s, ref)
		}
		if !SameRepository(ref, ref) {
			t.Fatalf("SameRepository(%q, itself) = false", ref)
		}
		if !strings.HasSuffix(got.FullRepository(), "/"+got.Repository) {
			t.Fatalf("FullRepository() = %q does not end in %q", got.FullRepository(), got.Repository)
		}
	})
}

func BenchmarkParseImage(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseImage("registry.example.com:5000/team/app:v1.2.3@" + testDigest); err != nil {
			b.Fatal(err)
		}
	}
}
