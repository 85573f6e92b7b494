package sidecar

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wharfhq/wharf/internal/proxy"
)

// inNetns runs fn on an OS thread of its own in a new network namespace
// with its loopback up. Sockets fn opens on its goroutine belong to that
// namespace; the thread is discarded afterwards.
func inNetns(t *testing.T, fn func() error) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	errc := make(chan error, 1)
	skip := errors.New("skip")
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("%w: unshare: %v", skip, err)
			return
		}
		if err := loopbackUp(); err != nil {
			errc <- fmt.Errorf("%w: loopback: %v", skip, err)
			return
		}
		errc <- fn()
	}()
	if err := <-errc; errors.Is(err, skip) {
		t.Skip(err)
	} else if err != nil {
		t.Fatal(err)
	}
}

func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// get sends a GET over a connection dialled from the calling goroutine
// (http.Transport would dial from another thread, outside the namespace).
func get(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// An application listening on the alias's port on every address and the
// proxy's alias coexist: the nat rule sends the alias to the proxy.
func TestCaptureCoexistsWithWildcardListener(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "banana") }))
	defer backend.Close()
	inNetns(t, func() error {
		app, err := net.Listen("tcp", "0.0.0.0:8080")
		if err != nil {
			return err
		}
		defer app.Close()
		go http.Serve(app, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "apple") }))

		s := &sidecar{log: slog.New(slog.DiscardHandler), p: proxy.New(nil), capture: newCapture()}
		defer s.p.Close()
		doc := &Document{Index: 1, Config: Config{
			Listeners: []Listener{{Address: "127.255.0.2:8080", Upstream: "banana"}},
			Upstreams: []Upstream{{Name: "banana", Protocol: "http", Endpoints: []Endpoint{{Address: strings.TrimPrefix(backend.URL, "http://")}}}},
		}}
		if err := s.apply(doc); err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		if s.capture == nil {
			return errors.New("capture fell back to direct listening")
		}
		if body, err := get("127.255.0.2:8080"); err != nil || body != "banana" {
			return fmt.Errorf("through the alias: %q, %v; want banana", body, err)
		}
		if body, err := get("127.0.0.1:8080"); err != nil || body != "apple" {
			return fmt.Errorf("the application itself: %q, %v; want apple", body, err)
		}
		// The alias moves to another port: the rule follows, the old
		// port reaches the application again.
		doc.Index, doc.Config.Listeners[0].Address = 2, "127.255.0.2:9090"
		if err := s.apply(doc); err != nil {
			return fmt.Errorf("second apply: %w", err)
		}
		if body, err := get("127.255.0.2:9090"); err != nil || body != "banana" {
			return fmt.Errorf("through the moved alias: %q, %v; want banana", body, err)
		}
		if _, err := get("127.255.0.2:8080"); err != nil {
			return fmt.Errorf("the old alias port should reach the wildcard listener: %v", err)
		}
		return nil
	})
}
