package awsproto

import (
	"errors"

	"github.com/wharfhq/wharf/internal/api"
)

// Error is an error as AWS sends it on the wire.
type Error = api.Error

// ClientError returns a 400 error with the given code.
func ClientError(code, msg string) *Error { return api.ClientError(code, msg) }

// Coded is implemented by errors that know their AWS error code. Errors that
// do not implement it become ServerException.
type Coded interface {
	error
	ErrorCode() string
	HTTPStatus() int
}

// AsCoded finds the AWS error in err's chain; ok is false when there is none.
func AsCoded(err error) (Coded, bool) {
	var c Coded
	if errors.As(err, &c) {
		return c, true
	}
	return nil, false
}
