package kube

import (
	"errors"
	"fmt"
	"strings"
)

// DefaultRegistry is the registry a reference without a registry part is
// pulled from, so "nginx" and "docker.io/library/nginx" name the same image.
const DefaultRegistry = "docker.io"

// ErrInvalidImage is wrapped by every ParseImage error, so callers can tell a
// bad reference from other failures with errors.Is.
var ErrInvalidImage = errors.New("invalid image reference")

// maxImageNameLength is the limit the container runtimes put on registry plus
// repository.
const maxImageNameLength = 255

// acceptedImageForms closes every parse error so the user sees what would
// have been accepted.
const acceptedImageForms = `accepted forms: "name", "name:tag", "registry/name:tag", ` +
	`"registry:port/name:tag", "name@sha256:<64 hex>" or "name:tag@sha256:<64 hex>"`

// ImageRef is a parsed container image reference. Registry and Repository
// keep the spelling of the reference; FullRepository gives the normalised
// form used for comparisons.
type ImageRef struct {
	// Registry is the host (and optional port) before the first slash, or
	// empty when the reference names none.
	Registry string
	// Repository is the path inside the registry, such as "org/app".
	Repository string
	// Tag is the part after ":" that is not a port, or empty.
	Tag string
	// Digest is "sha256:<64 hex>", or empty.
	Digest string
}

// String reassembles the reference as it was written, without defaults.
func (r ImageRef) String() string {
	var b strings.Builder
	if r.Registry != "" {
		b.WriteString(r.Registry)
		b.WriteByte('/')
	}
	b.WriteString(r.Repository)
	if r.Tag != "" {
		b.WriteByte(':')
		b.WriteString(r.Tag)
	}
	if r.Digest != "" {
		b.WriteByte('@')
		b.WriteString(r.Digest)
	}
	return b.String()
}

// FullRepository returns registry and repository with Docker Hub's defaults
// filled in ("nginx" becomes "docker.io/library/nginx"), so two spellings of
// one repository compare equal.
func (r ImageRef) FullRepository() string {
	registry := r.Registry
	switch registry {
	case "", "index.docker.io", "registry-1.docker.io":
		registry = DefaultRegistry
	}
	repository := r.Repository
	if registry == DefaultRegistry && !strings.Contains(repository, "/") {
		repository = "library/" + repository
	}
	return registry + "/" + repository
}

// ParseImage parses an image reference of the form
// [registry[:port]/]repository[:tag][@sha256:digest]. The first path part is
// a registry only when it contains "." or ":" or is "localhost", which is
// how container runtimes decide it.
func ParseImage(ref string) (ImageRef, error) {
	if ref == "" {
		return ImageRef{}, imageError(ref, "the reference is empty")
	}
	if i := strings.IndexFunc(ref, isSpaceOrControl); i >= 0 {
		return ImageRef{}, imageError(ref, "it contains whitespace or a control character")
	}

	var out ImageRef
	name := ref
	if at := strings.IndexByte(name, '@'); at >= 0 {
		out.Digest = name[at+1:]
		name = name[:at]
		if err := checkDigest(out.Digest); err != nil {
			return ImageRef{}, imageError(ref, err.Error())
		}
	}
	// A colon after the last slash starts the tag; one before it is a port.
	if colon := strings.LastIndexByte(name, ':'); colon > strings.LastIndexByte(name, '/') {
		out.Tag = name[colon+1:]
		name = name[:colon]
		if err := checkTag(out.Tag); err != nil {
			return ImageRef{}, imageError(ref, err.Error())
		}
	}
	if name == "" {
		return ImageRef{}, imageError(ref, "the repository name is empty")
	}
	if len(name) > maxImageNameLength {
		return ImageRef{}, imageError(ref, fmt.Sprintf("the name is longer than %d characters", maxImageNameLength))
	}

	if slash := strings.IndexByte(name, '/'); slash >= 0 {
		first := name[:slash]
		if strings.ContainsAny(first, ".:") || first == "localhost" {
			out.Registry = first
			name = name[slash+1:]
			if err := checkRegistry(out.Registry); err != nil {
				return ImageRef{}, imageError(ref, err.Error())
			}
		}
	}
	out.Repository = name
	if err := checkRepository(out.Repository); err != nil {
		return ImageRef{}, imageError(ref, err.Error())
	}
	return out, nil
}

// SameRepository reports whether two references name the same repository
// once defaults are filled in, ignoring tags and digests. An unparsable
// reference matches nothing.
func SameRepository(a, b string) bool {
	ra, err := ParseImage(a)
	if err != nil {
		return false
	}
	rb, err := ParseImage(b)
	if err != nil {
		return false
	}
	return ra.FullRepository() == rb.FullRepository()
}

func imageError(ref, why string) error {
	return fmt.Errorf("%w %q: %s; %s", ErrInvalidImage, ref, why, acceptedImageForms)
}

func isSpaceOrControl(r rune) bool {
	return r <= ' ' || r == 0x7f
}

func checkDigest(d string) error {
	hex, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hex) != 64 || strings.IndexFunc(hex, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f')
	}) >= 0 {
		return fmt.Errorf("digest %q is not \"sha256:\" followed by 64 lowercase hex characters", d)
	}
	return nil
}

func checkTag(tag string) error {
	if tag == "" || len(tag) > 128 {
		return fmt.Errorf("tag %q must be 1 to 128 characters", tag)
	}
	for i, r := range tag {
		word := r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !word && (i == 0 || (r != '.' && r != '-')) {
			return fmt.Errorf("tag %q may hold only letters, digits, '_', '.' and '-' and must not start with '.' or '-'", tag)
		}
	}
	return nil
}

func checkRegistry(registry string) error {
	host, port, hasPort := strings.Cut(registry, ":")
	if hasPort {
		if port == "" || strings.IndexFunc(port, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
			return fmt.Errorf("registry port %q is not a number", port)
		}
	}
	if host == "" {
		return fmt.Errorf("registry %q has no host name", registry)
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' ||
			strings.IndexFunc(label, func(r rune) bool {
				return !(r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
			}) >= 0 {
			return fmt.Errorf("registry %q is not a host name", registry)
		}
	}
	return nil
}

// checkRepository enforces the distribution path grammar: lowercase
// alphanumeric parts joined by '.', '_', '__' or runs of '-', separated by '/'.
func checkRepository(repo string) error {
	if strings.ToLower(repo) != repo {
		return fmt.Errorf("repository %q must be lowercase", repo)
	}
	for part := range strings.SplitSeq(repo, "/") {
		if !validPathComponent(part) {
			return fmt.Errorf("repository %q has an invalid path part %q (lowercase letters and digits, joined by '.', '_', '__' or '-')", repo, part)
		}
	}
	return nil
}

func validPathComponent(s string) bool {
	if s == "" {
		return false
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
	i := 0
	for {
		start := i
		for i < len(s) && alnum(s[i]) {
			i++
		}
		if i == start {
			return false
		}
		if i == len(s) {
			return true
		}
		switch {
		case s[i] == '.':
			i++
		case s[i] == '_':
			i++
			if i < len(s) && s[i] == '_' {
				i++
			}
		case s[i] == '-':
			for i < len(s) && s[i] == '-' {
				i++
			}
		default:
			return false
		}
	}
}
