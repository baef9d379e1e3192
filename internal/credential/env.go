package credential

import (
	"net/http"
	"os"
)

// Env is the part of the process environment the sources read.
type Env struct {
	// Getenv reads an environment variable; nil reads none.
	Getenv func(string) string
	// ReadFile reads a file; nil is os.ReadFile.
	ReadFile func(string) ([]byte, error)
	// HTTPClient makes the token requests; nil is http.DefaultClient.
	HTTPClient *http.Client
}

func (e Env) get(name string) string {
	if e.Getenv == nil {
		return ""
	}
	return e.Getenv(name)
}

func (e Env) readFile(path string) ([]byte, error) {
	if e.ReadFile == nil {
		return os.ReadFile(path)
	}
	return e.ReadFile(path)
}

func (e Env) client() *http.Client {
	if e.HTTPClient == nil {
		return http.DefaultClient
	}
	return e.HTTPClient
}
