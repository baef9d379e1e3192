package podmetrics

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

// Defaults of a Scraper.
const (
	// DefaultTimeout bounds one pod's scrape.
	DefaultTimeout = 5 * time.Second
	// DefaultMaxBytes bounds one exposition; larger ones are cut and fail
	// to parse rather than fill memory.
	DefaultMaxBytes = 8 << 20
	// parallelScrapes bounds the scrapes in flight, so a large Deployment
	// does not flood the API server's proxy.
	parallelScrapes = 8
)

// Scraper fetches the expositions of a Deployment's serving pods through
// the API server's pod proxy: no route to the pods is needed, only RBAC
// for pods/proxy.
type Scraper struct {
	Client    kubernetes.Interface
	Namespace string
	// Selector selects the pods to scrape (the new version's); only pods
	// that are running, ready and not terminating are asked.
	Selector map[string]string
	// Port is a container port name or number; empty means the pod's first
	// declared container port, as the API server itself would pick.
	Port string
	// Path is the exposition's path, such as /metrics.
	Path  string
	Names Names
	// Timeout bounds each pod's scrape (DefaultTimeout when not positive);
	// MaxBytes bounds its body (DefaultMaxBytes when not positive).
	Timeout  time.Duration
	MaxBytes int64
}

// Scrape lists the serving pods and reads each one's exposition into the
// matching slot of readings, which it grows to the number of pods and
// reuses across calls. An error means the pods could not be listed.
func (s *Scraper) Scrape(ctx context.Context, readings *[]Reading) ([]PodScrape, error) {
	list, err := s.Client.CoreV1().Pods(s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(s.Selector).String()})
	if err != nil {
		return nil, fmt.Errorf("list the pods of %s in %s: %w", labels.SelectorFromSet(s.Selector), s.Namespace, err)
	}
	pods := slices.DeleteFunc(list.Items, func(p corev1.Pod) bool { return !serving(&p) })
	slices.SortFunc(pods, func(a, b corev1.Pod) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	for len(*readings) < len(pods) {
		*readings = append(*readings, Reading{})
	}
	out := make([]PodScrape, len(pods))
	sem := make(chan struct{}, parallelScrapes)
	var wg sync.WaitGroup
	for i := range pods {
		p := &pods[i]
		out[i] = PodScrape{Pod: p.Name, UID: string(p.UID)}
		r := &(*readings)[i]
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := s.scrapeOne(ctx, p, r); err != nil {
				out[i].Err = err
				return
			}
			out[i].Reading = r
		})
	}
	wg.Wait()
	return out, nil
}

// scrapeOne reads one pod's exposition into r.
func (s *Scraper) scrapeOne(ctx context.Context, p *corev1.Pod, r *Reading) error {
	port, err := ResolvePort(p, s.Port)
	if err != nil {
		return err
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	limit := s.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxBytes
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, err := s.Client.CoreV1().Pods(p.Namespace).ProxyGet("http", p.Name, port, s.Path, nil).Stream(ctx)
	if err != nil {
		return fmt.Errorf("GET %s on port %s through the API server: %w", s.Path, port, err)
	}
	defer body.Close()
	if err := Parse(io.LimitReader(body, limit), s.Names, r); err != nil {
		return fmt.Errorf("pod %s %s: %w", p.Name, s.Path, err)
	}
	return nil
}

// ResolvePort turns a container port name or number into the number the
// pod proxy needs (it does not resolve names itself). Pure.
func ResolvePort(p *corev1.Pod, port string) (string, error) {
	if n, err := strconv.Atoi(port); err == nil {
		return strconv.Itoa(n), nil
	}
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			if port == "" || cp.Name == port {
				return strconv.Itoa(int(cp.ContainerPort)), nil
			}
		}
	}
	if port == "" {
		return "", fmt.Errorf("pod %s declares no container port (set metrics-port)", p.Name)
	}
	return "", fmt.Errorf("pod %s has no container port named %q", p.Name, port)
}

// serving says whether a pod takes traffic: running, ready, not on its way
// out. Pure.
func serving(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Source is a Scraper and a Tracker together: each Next is one round.
type Source struct {
	Scraper *Scraper
	Tracker Tracker
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	readings []Reading
}

// Next scrapes every serving pod once and returns the window since the
// previous call. A failure to list the pods is a finding of the window,
// which then counts nothing; it never counts against the app.
func (s *Source) Next(ctx context.Context) Window {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	at := now()
	round, err := s.Scraper.Scrape(ctx, &s.readings)
	if err != nil {
		w := Window{Start: at, End: at, Baseline: true}
		w.Findings = []Finding{{Kind: FindingList, Message: err.Error()}}
		return w
	}
	return s.Tracker.Observe(at, round)
}
