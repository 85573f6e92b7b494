// Package api holds what the generated wire packages (api/ecs,
// api/servicediscovery) share: timestamps as AWS encodes them, input
// validation errors, and the operation table a protocol server dispatches on.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Time is a timestamp encoded as AWS JSON protocols encode them: seconds
// since the epoch as a JSON number with a fractional part.
type Time struct{ time.Time }

// NewTime returns t as a wire timestamp, truncated to milliseconds as AWS
// reports them.
func NewTime(t time.Time) *Time { return &Time{t.Truncate(time.Millisecond)} }

// Now returns the current time as a wire timestamp.
func Now() *Time { return NewTime(time.Now()) }

// MarshalJSON encodes t as epoch seconds.
func (t Time) MarshalJSON() ([]byte, error) {
	ms := t.UnixMilli()
	return strconv.AppendFloat(nil, float64(ms)/1000, 'f', -1, 64), nil
}

// UnmarshalJSON accepts epoch seconds (integer or fractional) and RFC 3339
// strings, as AWS servers do.
func (t *Time) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return t.setSeconds(f)
		}
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("invalid timestamp %q", s)
		}
		t.Time = v
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("invalid timestamp %s", b)
	}
	return t.setSeconds(f)
}

func (t *Time) setSeconds(f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e11 {
		return fmt.Errorf("timestamp %v out of range", f)
	}
	sec, frac := math.Modf(f)
	t.Time = time.Unix(int64(sec), int64(math.Round(frac*1e3))*int64(time.Millisecond)).UTC()
	return nil
}

// ValidationError lists the ways an input failed the constraints of the
// service model, worded as AWS words them.
type ValidationError struct {
	// Code is the service's error code for invalid input, such as
	// InvalidParameterException.
	Code     string
	Problems []string
	// Message, when set, is the whole message: a problem the service
	// reports on its own rather than in a list (see Validator.OneOf).
	Message string
}

func (e *ValidationError) Error() string {
	if e.Message != "" {
		return e.Message
	}
	n := len(e.Problems)
	s := "s"
	if n == 1 {
		s = ""
	}
	return fmt.Sprintf("%d validation error%s detected: %s", n, s, strings.Join(e.Problems, "; "))
}

// ErrorCode is the error's `__type` on the wire.
func (e *ValidationError) ErrorCode() string { return e.Code }

// HTTPStatus is 400: the caller sent bad input.
func (e *ValidationError) HTTPStatus() int { return http.StatusBadRequest }

// Operation is one entry of a service's operation table.
type Operation struct {
	// ReadOnly is true for operations that change nothing.
	ReadOnly bool
	// Invoke decodes the input with decode, validates it against the
	// model, and calls the implementation.
	Invoke func(ctx context.Context, decode func(any) error) (any, error)
}

// Validator collects constraint violations while walking an input.
type Validator struct {
	problems []string
	alone    string // the first problem reported on its own
}

// Add records a problem.
func (v *Validator) Add(format string, args ...any) {
	v.problems = append(v.problems, fmt.Sprintf(format, args...))
}

// Required records a missing required member.
func (v *Validator) Required(path string) {
	v.Add("Value null at '%s' failed to satisfy constraint: Member must not be null", path)
}

// Enum records a value outside an enumeration.
func (v *Validator) Enum(path, value string, allowed []string) {
	v.Add("Value '%s' at '%s' failed to satisfy constraint: Member must satisfy enum value set: [%s]", value, path, strings.Join(allowed, ", "))
}

// OneOf records a value outside an enumeration as ECS words it:
// "<field> should be one of [A,B]", where field is the member's name (the
// last name in path, list positions skipped) or its label in labels. ECS
// reports such a problem on its own, without the "N validation errors
// detected" list of the model's other constraints.
func (v *Validator) OneOf(path string, allowed []string, labels map[string]string) {
	field := path
	parts := strings.Split(path, ".")
	for i := len(parts) - 1; i >= 0; i-- {
		if _, err := strconv.Atoi(parts[i]); err != nil && parts[i] != "member" {
			field = parts[i]
			break
		}
	}
	if l, ok := labels[field]; ok {
		field = l
	}
	msg := field + " should be one of [" + strings.Join(allowed, ",") + "]"
	v.problems = append(v.problems, msg)
	if v.alone == "" {
		v.alone = msg
	}
}

// Err returns the collected problems as a *ValidationError with the given
// code, or nil when there are none.
func (v *Validator) Err(code string) error {
	if len(v.problems) == 0 {
		return nil
	}
	return &ValidationError{Code: code, Problems: v.problems, Message: v.alone}
}

// In reports whether s is one of allowed.
func In(s string, allowed []string) bool {
	for _, a := range allowed {
		if s == a {
			return true
		}
	}
	return false
}
