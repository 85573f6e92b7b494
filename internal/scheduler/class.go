package scheduler

import (
	"encoding/binary"
	"strings"

	"github.com/wharfhq/wharf/internal/scheduler/cql"
)

// class memoises a memberOf expression that reads nothing but attributes,
// agentConnected and agentVersion: its result is the same on every
// instance with the same values of those, an instance class as Nomad calls
// it, so thousands of instances of a few types and zones cost a few
// evaluations. It lives for one Place call.
type class struct {
	attrs     []string // attribute names the expression mentions
	version   bool     // it mentions agentVersion
	connected bool     // it mentions agentConnected
	seen      map[string]bool
	key       []byte
}

// Subjects whose values differ per instance or change as tasks are placed;
// an expression that reads one is evaluated on each instance.
var perInstance = []string{"task:group", "runningTasksCount", "ec2InstanceId", "registeredAt"}

// classOf returns a class for e, or nil when e reads a per-instance
// subject. It reads e's canonical rendering, where an attribute appears as
// attribute:NAME and every other subject by its name. A subject's name
// inside a quoted value only costs the memo, never correctness: a spurious
// attribute adds to the key, a spurious per-instance subject turns the
// memo off.
func classOf(e cql.Expr) *class {
	s := e.String()
	for _, subj := range perInstance {
		if strings.Contains(s, subj) {
			return nil
		}
	}
	c := &class{
		version:   strings.Contains(s, "agentVersion"),
		connected: strings.Contains(s, "agentConnected"),
		seen:      map[string]bool{},
	}
	const prefix = "attribute:"
	for {
		j := strings.Index(s, prefix)
		if j < 0 {
			break
		}
		s = s[j+len(prefix):]
		n := 0
		for n < len(s) && isAttrNameByte(s[n]) {
			n++
		}
		if name := s[:n]; name != "" && !contains(c.attrs, name) {
			c.attrs = append(c.attrs, name)
		}
	}
	return c
}

func isAttrNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '-' || c == '_' || c == '/' || c == '\\'
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// lookup returns the memoised result for n's class and whether there is one;
// the key stays in c.key for store.
func (c *class) lookup(n *Node) (match, ok bool) {
	k := c.key[:0]
	for _, a := range c.attrs {
		v, has := n.Attributes[a]
		k = appendValue(k, v, has)
	}
	if c.version {
		k = appendValue(k, n.AgentVersion, true)
	}
	if c.connected {
		k = appendValue(k, "", n.AgentConnected)
	}
	c.key = k
	match, ok = c.seen[string(k)]
	return match, ok
}

func (c *class) store(match bool) { c.seen[string(c.key)] = match }

// appendValue encodes a value so that no two lists of values share a key.
func appendValue(k []byte, v string, has bool) []byte {
	if !has {
		return append(k, 0)
	}
	k = append(k, 1)
	k = binary.AppendUvarint(k, uint64(len(v)))
	return append(k, v...)
}
