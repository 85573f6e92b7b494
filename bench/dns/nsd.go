package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// nsd is Debian's NSD serving the zone files on a loopback port.
type nsd struct {
	addr string
	cmd  *exec.Cmd
	done chan error
}

// startNSD writes a configuration for zones (name → file) and starts nsd in
// the foreground, one server process per CPU, without response rate
// limiting, and waits until it answers.
func startNSD(ctx context.Context, dir string, zones map[string]string) (*nsd, error) {
	bin, err := exec.LookPath("nsd")
	if err != nil {
		return nil, errors.New("nsd not found: apt-get install nsd")
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", port)
	var conf strings.Builder
	fmt.Fprintf(&conf, `server:
  ip-address: 127.0.0.1@%s
  port: %s
  username: ""
  chroot: ""
  zonesdir: %q
  database: ""
  zonelistfile: %q
  xfrdfile: %q
  xfrdir: %q
  pidfile: %q
  logfile: %q
  server-count: %d
  verbosity: 1
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
remote-control:
  control-enable: no
`, port, port, dir, filepath.Join(dir, "zone.list"), filepath.Join(dir, "xfrd.state"), dir,
		filepath.Join(dir, "nsd.pid"), filepath.Join(dir, "nsd.log"), runtime.NumCPU())
	names := make([]string, 0, len(zones))
	for z := range zones {
		names = append(names, z)
	}
	sort.Strings(names)
	for _, z := range names {
		fmt.Fprintf(&conf, "zone:\n  name: %s\n  zonefile: %q\n", z, zones[z])
	}
	confPath := filepath.Join(dir, "nsd.conf")
	if err := os.WriteFile(confPath, []byte(conf.String()), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-d", "-c", confPath)
	cmd.SysProcAttr = sysProcAttr()
	out, err := os.Create(filepath.Join(dir, "nsd.out"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start nsd: %w", err)
	}
	n := &nsd{addr: addr, cmd: cmd, done: make(chan error, 1)}
	go func() {
		n.done <- cmd.Wait()
		out.Close()
	}()
	deadline := time.Now().Add(30 * time.Second)
	probe := fmt.Sprintf("ns1.%s.", names[0])
	for {
		m := new(dns.Msg)
		m.SetQuestion(probe, dns.TypeA)
		r, _, err := (&dns.Client{Timeout: 200 * time.Millisecond}).Exchange(m, addr)
		if err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
			return n, nil
		}
		select {
		case err := <-n.done:
			log, _ := os.ReadFile(filepath.Join(dir, "nsd.log"))
			return nil, fmt.Errorf("nsd exited (%v):\n%s", err, log)
		case <-ctx.Done():
			n.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			n.stop()
			return nil, errors.New("nsd did not answer within 30s")
		}
	}
}

func (n *nsd) stop() {
	if n.cmd.Process == nil {
		return
	}
	// nsd's children are in its process group.
	syscallKill(-n.cmd.Process.Pid)
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		syscallKillHard(-n.cmd.Process.Pid)
		<-n.done
	}
}

// rss is the resident memory of nsd's processes (the main one and its
// servers; shared pages count once per process).
func (n *nsd) rss() int64 {
	return groupRSS(n.cmd.Process.Pid)
}

func freePort() (string, error) {
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		_, port, _ := net.SplitHostPort(pc.LocalAddr().String())
		l, err := net.Listen("tcp", "127.0.0.1:"+port)
		pc.Close()
		if err == nil {
			l.Close()
			return port, nil
		}
	}
	return "", errors.New("no port free for both udp and tcp")
}
