package proxy

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
)

// alive reports whether an idle connection still looks usable: no data and
// no end of stream waiting. It costs a system call, so it is used only
// before sending a request that could not be retried.
func alive(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = true
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case n > 0:
			ok = false // unexpected bytes: the connection is out of step
		case n == 0 && err == nil:
			ok = false // end of stream: the endpoint closed it
		case errors.Is(err, syscall.EAGAIN):
			ok = true
		default:
			ok = false
		}
		return true
	})
	return err == nil && ok
}
