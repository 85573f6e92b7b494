//go:build !linux

package sidecar

import "errors"

type noCapture struct{}

func newCapture() capturer { return noCapture{} }

func (noCapture) set([]redirect) error {
	return errors.New("egress capture needs Linux nftables")
}
