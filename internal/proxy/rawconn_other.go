//go:build !linux

package proxy

import "net"

// fastConn is the identity where raw socket calls are not implemented.
func fastConn(c net.Conn) net.Conn { return c }
