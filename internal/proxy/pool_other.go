//go:build !linux

package proxy

import "net"

// alive cannot look at the socket here: assume the connection is usable.
func alive(net.Conn) bool { return true }
