package config

import "fmt"

// InputError is one mistake in one input: which input, what is wrong with
// the value and which forms would have been accepted. Load reports every
// mistake it finds as an *InputError joined with errors.Join, so a caller
// can detect bad input with errors.As and exit with code 2 before touching
// the cluster. Problem never contains the value of a secret input.
type InputError struct {
	// Input is the kebab-case input name, such as "monitor-duration".
	Input string
	// Problem says what is wrong, such as `"-5m" is negative`.
	Problem string
	// Accepted describes the values that would have worked; it may be empty.
	Accepted string
}

// Error reads like
// `input "monitor-duration": "-5m" is negative; accepted: a Go duration such as 90s or 5m, or whole seconds such as 300`.
func (e *InputError) Error() string {
	if e.Accepted == "" {
		return fmt.Sprintf("input %q: %s", e.Input, e.Problem)
	}
	return fmt.Sprintf("input %q: %s; accepted: %s", e.Input, e.Problem, e.Accepted)
}

// InputErrors returns every *InputError inside err, in order, looking
// through errors.Join and %w wrapping; it returns nil when there is none.
func InputErrors(err error) []*InputError {
	var out []*InputError
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if ie, ok := err.(*InputError); ok {
			out = append(out, ie)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}
