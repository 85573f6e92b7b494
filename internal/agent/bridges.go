package agent

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// linkNetworks lets tasks on the engine's default bridge and tasks on the
// awsvpc network reach each other's addresses, as tasks of one VPC can on
// ECS: the engine isolates its bridge networks from each other (its
// DOCKER-ISOLATION chains drop what crosses them), so the agent accepts
// that traffic in DOCKER-USER, the chain the engine leaves to its users.
// Service Connect needs it: a bridge task's proxy calls awsvpc tasks at
// their addresses. (awsvpc tasks reach bridge tasks through host ports,
// which the engine proxies.) It reports whether both ways are open; it
// does nothing before the awsvpc network exists on this host.
func (a *Agent) linkNetworks() bool {
	a.linkMu.Lock()
	defer a.linkMu.Unlock()
	if a.linked || a.cfg.Simulated {
		return a.linked
	}
	n := a.networkInfo()
	if n == nil {
		return false
	}
	awsvpc, bridge := interfaceWithAddr(n.Gateway), interfaceWithAddr(bridgeGateway())
	if awsvpc == "" || bridge == "" {
		return false
	}
	// Agents of other processes on the host may be adding the same rules.
	if unlock, err := lockHost("docker-user"); err == nil {
		defer unlock()
	}
	for _, r := range [][]string{{"-i", bridge, "-o", awsvpc}, {"-i", awsvpc, "-o", bridge}} {
		rule := append(r, "-j", "ACCEPT")
		if iptables(append([]string{"-C", "DOCKER-USER"}, rule...)...) == nil {
			continue
		}
		if err := iptables(append([]string{"-I", "DOCKER-USER"}, rule...)...); err != nil {
			if !a.linkWarned {
				a.log.Warn("bridge tasks cannot reach awsvpc tasks' addresses, nor their Service Connect endpoints: accepting the traffic between the networks failed", "err", err)
				a.linkWarned = true
			}
			return false
		}
	}
	a.log.Info("bridge and awsvpc tasks can reach each other", "bridge", bridge, "awsvpc", awsvpc)
	a.linked = true
	return true
}

func iptables(args ...string) error {
	cmd := exec.Command("iptables", append([]string{"-w", "5"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// interfaceWithAddr is the name of the host interface holding ip, or "".
func interfaceWithAddr(ip string) string {
	want := net.ParseIP(ip)
	ifaces, err := net.Interfaces()
	if err != nil || want == nil {
		return ""
	}
	for _, iface := range ifaces {
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, addr := range addrs {
			if ipn, ok := addr.(*net.IPNet); ok && ipn.IP.Equal(want) {
				return iface.Name
			}
		}
	}
	return ""
}

// lockHost takes a host-wide lock of the given name, shared by every agent
// process of the host, and returns its release.
func lockHost(name string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "wharf-"+name+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
