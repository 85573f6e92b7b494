package api

import (
	"fmt"
	"net/http"
)

// Error is an error as AWS sends it on the wire: an HTTP status, the error
// code that becomes `__type` and the X-Amzn-ErrorType header, a message, and
// any extra members some error shapes carry.
type Error struct {
	Status  int
	Code    string
	Message string
	// Fields holds extra members of the error shape, such as Cloud Map's
	// NamespaceId on NamespaceAlreadyExists.
	Fields map[string]any
	// Hint says what to do next, in Wharf's words. It never goes on the
	// wire, where the message is AWS's own; the server logs it.
	Hint string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// ErrorCode is the error's `__type` on the wire.
func (e *Error) ErrorCode() string { return e.Code }

// HTTPStatus is the status the error is sent with.
func (e *Error) HTTPStatus() int { return e.Status }

// ClientError returns a 400 error with the given code.
func ClientError(code, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Message: msg}
}

// WithHint returns e with a hint for the server log.
func (e *Error) WithHint(format string, args ...any) *Error {
	e.Hint = fmt.Sprintf(format, args...)
	return e
}
