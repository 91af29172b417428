package runtime

import (
	"errors"
	"net/http"
)

// BodyStatus is the status for an error reading a request body through http.MaxBytesReader:
// 413 when the body is over the limit, 400 when it is malformed.
func BodyStatus(err error) int {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}
