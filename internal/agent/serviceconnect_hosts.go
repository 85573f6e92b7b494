package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/wharfhq/wharf/internal/sidecar"
)

// vipTable gives a task's Service Connect services their alias addresses in
// 127.255.0.0/16. A service keeps its address for the task's life, also
// when it leaves the namespace and comes back; an address is never given
// to another service of the task. The table is saved with the task's
// hosts file, so that a restarted agent keeps it.
type vipTable struct {
	// Next is the offset in the prefix of the next address to give.
	Next uint32 `json:"next"`
	// Addrs maps a discovery name to its address.
	Addrs map[string]string `json:"addrs"`

	dirty bool // changed since loaded or saved
}

var errVIPsExhausted = errors.New("no alias address left in " + sidecar.VIPPrefix.String())

// addr returns the address of a service, giving it the next free one.
func (v *vipTable) addr(name string) (netip.Addr, error) {
	if s, ok := v.Addrs[name]; ok {
		if a, err := netip.ParseAddr(s); err == nil {
			return a, nil
		}
	}
	base := sidecar.VIPPrefix.Addr().As4()
	size := uint32(1) << (32 - sidecar.VIPPrefix.Bits())
	for v.Next = max(v.Next, 1); v.Next < size-1; v.Next++ {
		// Skip addresses that look like network or broadcast addresses.
		if low := v.Next & 0xff; low == 0 || low == 0xff {
			continue
		}
		b := base
		b[2], b[3] = byte(v.Next>>8), byte(v.Next)
		a := netip.AddrFrom4(b)
		v.Next++
		if v.Addrs == nil {
			v.Addrs = map[string]string{}
		}
		v.Addrs[name], v.dirty = a.String(), true
		return a, nil
	}
	return netip.Addr{}, errVIPsExhausted
}

func loadVIPs(path string) *vipTable {
	v := &vipTable{}
	if b, err := os.ReadFile(path); err == nil {
		json.Unmarshal(b, v)
	}
	return v
}

func (v *vipTable) save(path string) error {
	if !v.dirty {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	v.dirty = false
	return nil
}

// hostsBase is what a task's hosts file holds besides the aliases.
type hostsBase struct {
	// IP and Hostname are the task's own address and host name.
	IP, Hostname string
	// Extra are the task definition's extraHosts (bridge tasks).
	Extra []hostEntry
}

type hostEntry struct{ addr, names string }

// hostAlias is one alias address and the names that lead to it.
type hostAlias struct {
	addr  netip.Addr
	names []string
}

// renderHosts renders a task's /etc/hosts: what the engine would write,
// then every Service Connect alias at its address, in address order.
func renderHosts(base hostsBase, aliases []hostAlias) []byte {
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
	if base.IP != "" && base.Hostname != "" {
		fmt.Fprintf(&b, "%s\t%s\n", base.IP, base.Hostname)
	}
	for _, e := range base.Extra {
		fmt.Fprintf(&b, "%s\t%s\n", e.addr, e.names)
	}
	if len(aliases) == 0 {
		return b.Bytes()
	}
	b.WriteString("# Service Connect aliases, kept up to date by the Wharf agent\n")
	sorted := slices.Clone(aliases)
	slices.SortFunc(sorted, func(x, y hostAlias) int { return x.addr.Compare(y.addr) })
	for _, a := range sorted {
		fmt.Fprintf(&b, "%s\t%s\n", a.addr, strings.Join(a.names, " "))
	}
	return b.Bytes()
}

// writeInPlace replaces a file's content without replacing the file: bind
// mounts of a single file follow its inode, so running containers see the
// new content only if the inode stays. The content is written with one
// write; when it is shorter than what was there, it is first padded with
// newlines to the old length and the file truncated after, so that a
// reader sees either version, never a mix.
func writeInPlace(path string, content []byte) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Mode().Perm() != 0o644 {
		if err := f.Chmod(0o644); err != nil { // the umask of a new file
			return err
		}
	}
	buf := content
	if old := int(fi.Size()); old > len(content) {
		buf = append(slices.Clip(content), bytes.Repeat([]byte{'\n'}, old-len(content))...)
	}
	if _, err := f.WriteAt(buf, 0); err != nil {
		return err
	}
	if len(buf) > len(content) {
		return f.Truncate(int64(len(content)))
	}
	return nil
}

// serviceConnectDir is where the agent keeps a task's hosts file and alias
// table.
func (a *Agent) serviceConnectDir(taskArn string) string {
	root := a.cfg.StateDir
	if root == "" {
		root = filepath.Join(os.TempDir(), "wharf-agent-"+a.cfg.Name)
	}
	return filepath.Join(root, "service-connect", taskID(taskArn))
}
