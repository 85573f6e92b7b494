package awsproto

import (
	"errors"
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
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// ErrorCode and HTTPStatus let errors from other packages be recognised
// without importing this one.
func (e *Error) ErrorCode() string { return e.Code }
func (e *Error) HTTPStatus() int   { return e.Status }

// Coded is implemented by errors that know their AWS error code. Errors that
// do not implement it become ServerException.
type Coded interface {
	error
	ErrorCode() string
	HTTPStatus() int
}

// ClientError returns a 400 error with the given code.
func ClientError(code, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Message: msg}
}

// AsCoded finds the AWS error in err's chain; ok is false when there is none.
func AsCoded(err error) (Coded, bool) {
	var c Coded
	if errors.As(err, &c) {
		return c, true
	}
	return nil, false
}
