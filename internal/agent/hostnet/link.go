package hostnet

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrNoInterface means that a network has no interface on this host (yet).
var ErrNoInterface = errors.New("no host interface holds the gateway")

// Link lets the containers of two of the engine's bridge networks, named by
// their gateways (the host's address on each), reach each other's
// addresses, as tasks of one VPC can on ECS: the engine isolates its bridge
// networks from each other (its DOCKER-ISOLATION chains drop what crosses
// them), so Link accepts that traffic, both ways, in DOCKER-USER, the chain
// the engine leaves to its users. Rules already there are kept, so Link can
// be called again. It returns the two networks' interfaces; the error wraps
// ErrNoInterface when either network does not exist on this host.
func Link(gatewayA, gatewayB string) (ifaceA, ifaceB string, err error) {
	a, b := interfaceWithAddr(gatewayA), interfaceWithAddr(gatewayB)
	if a == "" || b == "" {
		return a, b, fmt.Errorf("link the networks of gateways %s and %s: %w", gatewayA, gatewayB, ErrNoInterface)
	}
	// Agents of other processes on the host may be adding the same rules.
	if unlock, err := lockHost("docker-user"); err == nil {
		defer unlock()
	}
	for _, r := range [][]string{{"-i", a, "-o", b}, {"-i", b, "-o", a}} {
		rule := append(r, "-j", "ACCEPT")
		if iptables(append([]string{"-C", "DOCKER-USER"}, rule...)...) == nil {
			continue
		}
		if err := iptables(append([]string{"-I", "DOCKER-USER"}, rule...)...); err != nil {
			return a, b, err
		}
	}
	return a, b, nil
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
