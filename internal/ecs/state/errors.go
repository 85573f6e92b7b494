package state

import (
	"errors"
	"fmt"
)

// The classes of what goes wrong in the ECS state. Domain code returns an
// *Error of one of them; the API handlers turn it into AWS's code and
// message (ecs.awsError), and the agent-facing server into its own.
var (
	ErrNotFound = errors.New("not found")
	ErrInvalid  = errors.New("invalid")
	ErrConflict = errors.New("conflict")
	ErrLimit    = errors.New("limit reached")
)

// Kind is what an error is about.
type Kind string

const (
	KindCluster        Kind = "cluster"
	KindService        Kind = "service"
	KindTask           Kind = "task"
	KindInstance       Kind = "container instance"
	KindTaskDefinition Kind = "task definition"
	KindAddress        Kind = "awsvpc address"
	KindRegistry       Kind = "service registry"
)

// Error is an error of the ECS state: its class, what it is about (a kind
// and a name), and what to say of it, in Wharf's words.
type Error struct {
	Class error
	Kind  Kind
	Name  string
	// Detail says what is wrong and what to do next; for ErrInvalid it is
	// the message the caller sees.
	Detail string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s %q: %v", e.Kind, e.Name, e.Class)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Class }

// NotFound is the error for a missing kind named name.
func NotFound(kind Kind, name, detail string) *Error {
	return &Error{Class: ErrNotFound, Kind: kind, Name: name, Detail: detail}
}

// Invalid is the error for a reference or value the state cannot take;
// detail is the message.
func Invalid(kind Kind, name, detail string) *Error {
	return &Error{Class: ErrInvalid, Kind: kind, Name: name, Detail: detail}
}

// Limit is the error for a resource that has run out.
func Limit(kind Kind, name, detail string) *Error {
	return &Error{Class: ErrLimit, Kind: kind, Name: name, Detail: detail}
}
