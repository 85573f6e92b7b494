//go:build linux

package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/wharfhq/wharf/internal/server"
)

// etcdWait bounds how long a cluster may take to elect a leader, and a
// restarted member to rejoin it.
const etcdWait = 60 * time.Second

// WithEtcd makes a test server use the external etcd cluster at endpoints
// (wharf server --etcd-endpoints) instead of an embedded etcd.
func WithEtcd(endpoints []string) Options {
	return func(cfg *server.Config) { cfg.Store.Endpoints = append([]string(nil), endpoints...) }
}

// EtcdCluster is a real etcd cluster of separate etcd processes on loopback
// ports, each member with its own data directory under the test's temporary
// directory and its log in a file beside it. The test can kill and restart
// members to exercise Wharf against failures.
type EtcdCluster struct {
	t       testing.TB
	bin     string
	env     []string
	cluster string // --initial-cluster
	token   string
	cli     *clientv3.Client // for health checks

	mu      sync.Mutex // guards the members' proc and done
	members []*etcdMember
}

type etcdMember struct {
	name      string
	dataDir   string
	logPath   string
	clientURL string
	peerURL   string

	proc *os.Process   // nil when not running
	done chan struct{} // closed when proc has exited
}

// StartEtcdCluster starts an etcd cluster of n members from the etcd binary
// on the PATH (Debian's etcd-server) and waits until it has a leader. The
// members are killed when the test ends. The test is skipped when etcd is
// not installed, and fails under CI.
func StartEtcdCluster(t testing.TB, n int) *EtcdCluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("an etcd cluster needs at least one member, not %d", n)
	}
	bin := LookPath(t, "etcd")
	dir := t.TempDir()
	ports, err := loopbackPorts(2 * n)
	if err != nil {
		t.Fatal(err)
	}
	c := &EtcdCluster{
		t:     t,
		bin:   bin,
		env:   etcdEnv(),
		token: fmt.Sprintf("wharf-test-%d-%d", os.Getpid(), time.Now().UnixNano()),
	}
	var initial []string
	for i := range n {
		m := &etcdMember{
			name:      fmt.Sprintf("m%d", i),
			clientURL: "http://" + net.JoinHostPort("127.0.0.1", ports[2*i]),
			peerURL:   "http://" + net.JoinHostPort("127.0.0.1", ports[2*i+1]),
		}
		m.dataDir = filepath.Join(dir, m.name+".etcd")
		m.logPath = filepath.Join(dir, m.name+".log")
		c.members = append(c.members, m)
		initial = append(initial, m.name+"="+m.peerURL)
	}
	c.cluster = strings.Join(initial, ",")
	t.Cleanup(c.stop)

	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   c.Endpoints(),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("etcd client for %v: %v", c.Endpoints(), err)
	}
	c.cli = cli

	for i := range c.members {
		if err := c.start(i, "new"); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.waitReady(); err != nil {
		t.Fatalf("etcd cluster of %d members: %v\n%s", n, err, c.logs())
	}
	return c
}

// etcdEnv is the environment of etcd processes: ours without ETCD_*
// variables, which etcd would read as flags, plus the opt-in etcd 3.4 wants
// on architectures it does not support officially.
func etcdEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") {
			env = append(env, kv)
		}
	}
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "ppc64le" {
		env = append(env, "ETCD_UNSUPPORTED_ARCH="+runtime.GOARCH)
	}
	return env
}

// loopbackPorts returns n distinct free TCP ports of 127.0.0.1.
func loopbackPorts(n int) ([]string, error) {
	var ports []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a loopback port for etcd: %w", err)
		}
		// Holding every listener until all are picked keeps the ports
		// distinct.
		defer l.Close()
		_, p, _ := net.SplitHostPort(l.Addr().String())
		ports = append(ports, p)
	}
	return ports, nil
}

// Endpoints returns the client URLs of all members, running or not.
func (c *EtcdCluster) Endpoints() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.members))
	for i, m := range c.members {
		out[i] = m.clientURL
	}
	return out
}

// Endpoint returns the client URL of member i.
func (c *EtcdCluster) Endpoint(i int) string { return c.Endpoints()[i] }

// start launches member i's etcd; state is "new" or "existing".
func (c *EtcdCluster) start(i int, state string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.members[i]
	if m.proc != nil {
		return fmt.Errorf("etcd member %s is already running", m.name)
	}
	log, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "=== wharf test: starting %s with --initial-cluster-state %s at %s\n", m.name, state, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(c.bin,
		"--name", m.name,
		"--data-dir", m.dataDir,
		"--listen-client-urls", m.clientURL,
		"--advertise-client-urls", m.clientURL,
		"--listen-peer-urls", m.peerURL,
		"--initial-advertise-peer-urls", m.peerURL,
		"--initial-cluster", c.cluster,
		"--initial-cluster-state", state,
		"--initial-cluster-token", c.token,
		"--heartbeat-interval", "100",
		"--election-timeout", "1000",
		"--logger", "zap",
		"--log-outputs", "stderr",
	)
	cmd.Env = c.env
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group, so that a kill reaches anything it starts.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start etcd member %s: %w", m.name, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		log.Close()
		close(done)
	}()
	m.proc, m.done = cmd.Process, done
	return nil
}

// Kill kills member i's process group with SIGKILL and waits for it to
// exit. It may be called from any goroutine.
func (c *EtcdCluster) Kill(i int) {
	if err := c.kill(i); err != nil {
		c.t.Error(err)
	}
}

func (c *EtcdCluster) kill(i int) error {
	c.mu.Lock()
	m := c.members[i]
	proc, done := m.proc, m.done
	m.proc = nil
	c.mu.Unlock()
	if proc == nil {
		return fmt.Errorf("etcd member %s is not running", m.name)
	}
	if err := syscall.Kill(-proc.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill etcd member %s (pid %d): %w", m.name, proc.Pid, err)
	}
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("etcd member %s (pid %d) did not exit within 10s of SIGKILL", m.name, proc.Pid)
	}
}

// Restart starts member i again on its existing data directory
// (--initial-cluster-state existing) and waits until it follows the
// cluster's leader and has applied everything the leader had committed
// when it came back. Call it from the test's goroutine.
func (c *EtcdCluster) Restart(i int) {
	c.t.Helper()
	if err := c.start(i, "existing"); err != nil {
		c.t.Fatal(err)
	}
	if err := c.waitRejoined(i); err != nil {
		c.t.Fatalf("restart etcd member %d: %v\n%s", i, err, c.logs())
	}
}

// Running reports whether member i's process is running.
func (c *EtcdCluster) Running(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.members[i].proc != nil
}

// Leader returns the index of the current leader, waiting for the running
// members to agree on one. Call it from the test's goroutine.
func (c *EtcdCluster) Leader() int {
	c.t.Helper()
	var leader int
	err := c.poll("the running members to agree on a leader", func() error {
		var err error
		leader, err = c.leader()
		return err
	})
	if err != nil {
		c.t.Fatalf("%v\n%s", err, c.logs())
	}
	return leader
}

// status asks member i for its raft status, bounded by a short timeout.
func (c *EtcdCluster) status(i int) (*clientv3.StatusResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := c.cli.Status(ctx, c.Endpoint(i))
	if err != nil {
		return nil, fmt.Errorf("status of member %d: %w", i, err)
	}
	return resp, nil
}

// leader returns the leader's index if every running member names the same
// one.
func (c *EtcdCluster) leader() (int, error) {
	ids := map[uint64]int{} // member id → index
	var leaders []uint64
	for i := range c.members {
		if !c.Running(i) {
			continue
		}
		st, err := c.status(i)
		if err != nil {
			return -1, err
		}
		if st.Leader == 0 {
			return -1, fmt.Errorf("member %d has no leader", i)
		}
		ids[st.Header.MemberId] = i
		leaders = append(leaders, st.Leader)
	}
	if len(leaders) == 0 {
		return -1, errors.New("no member is running")
	}
	for _, l := range leaders[1:] {
		if l != leaders[0] {
			return -1, fmt.Errorf("members disagree on the leader: %x", leaders)
		}
	}
	idx, ok := ids[leaders[0]]
	if !ok {
		return -1, fmt.Errorf("leader %x is not a running member", leaders[0])
	}
	return idx, nil
}

// waitReady waits for a leader that every running member follows and for
// a linearizable read to succeed.
func (c *EtcdCluster) waitReady() error {
	return c.poll("a leader and a quorum", func() error {
		if _, err := c.leader(); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := c.cli.Get(ctx, "wharf-test-ready")
		return err
	})
}

// waitRejoined waits until member i follows the leader and has applied the
// leader's log as it stood when i came back.
func (c *EtcdCluster) waitRejoined(i int) error {
	var target uint64
	return c.poll(fmt.Sprintf("member %d to rejoin and catch up with the leader", i), func() error {
		leader, err := c.leader()
		if err != nil {
			return err
		}
		if target == 0 {
			st, err := c.status(leader)
			if err != nil {
				return err
			}
			target = st.RaftIndex
		}
		st, err := c.status(i)
		if err != nil {
			return err
		}
		if st.RaftAppliedIndex < target {
			return fmt.Errorf("member %d applied index %d, leader had %d", i, st.RaftAppliedIndex, target)
		}
		return nil
	})
}

// poll calls cond until it returns nil or etcdWait passes, and then
// returns what was awaited and cond's last error.
func (c *EtcdCluster) poll(what string, cond func() error) error {
	deadline := time.Now().Add(etcdWait)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := c.exited(); err != nil {
			return fmt.Errorf("while waiting for %s: %w", what, err)
		}
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %v for %s; last: %w", etcdWait, what, err)
		}
		<-tick.C
	}
}

// exited returns an error if a member that should be running has exited,
// for instance because its ports were taken.
func (c *EtcdCluster) exited() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.members {
		if m.proc == nil {
			continue
		}
		select {
		case <-m.done:
			return fmt.Errorf("etcd member %s exited on its own; see %s", m.name, m.logPath)
		default:
		}
	}
	return nil
}

// logs returns the tail of every member's log.
func (c *EtcdCluster) logs() string {
	var b strings.Builder
	for _, m := range c.members {
		fmt.Fprintf(&b, "--- tail of %s ---\n%s\n", m.logPath, tail(m.logPath, 30))
	}
	return b.String()
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// stop kills every running member and closes the status client.
func (c *EtcdCluster) stop() {
	for i := range c.members {
		if c.Running(i) {
			if err := c.kill(i); err != nil {
				c.t.Error(err)
			}
		}
	}
	if c.cli != nil {
		c.cli.Close()
	}
}
