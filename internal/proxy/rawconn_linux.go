package proxy

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// rawConn reads and writes a TCP socket with raw system calls through its
// syscall.RawConn, still parking in Go's network poller when the socket is
// not ready (so deadlines and Close work as for any net.Conn).
//
// Why: the sockets are non-blocking, so read and write never block in the
// kernel, but on a busy machine a write to loopback often gets the thread
// preempted in favour of the reader it woke. Through the ordinary path
// (entersyscall) the runtime's sysmon then hands the P to another thread,
// and the threads ping-pong; with GOMAXPROCS=1 that cost the proxy about a
// tenth of its CPU time. Raw calls keep the P, skip entersyscall and
// exitsyscall, and send with MSG_NOSIGNAL as HAProxy does.
type rawConn struct {
	net.Conn // *net.TCPConn: everything but Read and Write
	rc       syscall.RawConn

	// The current calls' arguments and results, so that readFn and
	// writeFn are made once per connection, not once per call. A read and
	// a write may run at once (TCP proxying), so each has its own.
	rp, wp     []byte
	rn, wn     int
	rerr, werr syscall.Errno
	readFn     func(uintptr) bool
	writeFn    func(uintptr) bool
}

// fastConn returns c with raw reads and writes when it is a TCP
// connection, else c.
func fastConn(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	f := &rawConn{Conn: tc, rc: rc}
	f.readFn = f.doRead
	f.writeFn = f.doWrite
	return f
}

func (f *rawConn) doRead(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&f.rp[0])), uintptr(len(f.rp)))
		switch e {
		case 0:
			f.rn = int(n)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait in the poller
		}
		f.rerr = e
		return true
	}
}

func (f *rawConn) doWrite(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&f.wp[0])), uintptr(len(f.wp)), syscall.MSG_NOSIGNAL, 0, 0)
		switch e {
		case 0:
			f.wn = int(n)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		f.werr = e
		return true
	}
}

func (f *rawConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	f.rp, f.rn, f.rerr = p, 0, 0
	err := f.rc.Read(f.readFn)
	f.rp = nil
	if err != nil {
		return 0, f.opError("read", err)
	}
	if f.rerr != 0 {
		return 0, f.opError("read", os.NewSyscallError("read", f.rerr))
	}
	if f.rn == 0 {
		return 0, io.EOF
	}
	return f.rn, nil
}

func (f *rawConn) Write(p []byte) (int, error) {
	total := 0
	for total < len(p) {
		f.wp, f.wn, f.werr = p[total:], 0, 0
		err := f.rc.Write(f.writeFn)
		f.wp = nil
		if err != nil {
			return total, f.opError("write", err)
		}
		if f.werr != 0 {
			return total, f.opError("write", os.NewSyscallError("write", f.werr))
		}
		total += f.wn
	}
	return total, nil
}

func (f *rawConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: f.LocalAddr(), Addr: f.RemoteAddr(), Err: err}
}

// CloseWrite half-closes the connection (TCP proxying passes on an end of
// stream).
func (f *rawConn) CloseWrite() error { return f.Conn.(*net.TCPConn).CloseWrite() }

// SyscallConn exposes the socket (for the liveness probe of pooled
// connections).
func (f *rawConn) SyscallConn() (syscall.RawConn, error) { return f.rc, nil }
