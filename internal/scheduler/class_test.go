package scheduler

import (
	"fmt"
	"slices"
	"testing"

	"github.com/wharfhq/wharf/internal/scheduler/cql"
)

func TestClassOf(t *testing.T) {
	for _, tc := range []struct {
		expr      string
		memo      bool
		attrs     []string
		version   bool
		connected bool
	}{
		{expr: "attribute:ecs.instance-type =~ t2.*", memo: true, attrs: []string{"ecs.instance-type"}},
		{expr: "attribute:a == x and (attribute:b exists or not(attribute:a in [y, z]))", memo: true, attrs: []string{"a", "b"}},
		{expr: `attribute:a\b/c-d_e.f != 'attribute:quoted'`, memo: true, attrs: []string{`a\b/c-d_e.f`, "quoted"}},
		{expr: "agentVersion >= 1.50.0 or agentConnected == false", memo: true, version: true, connected: true},
		{expr: "attribute:a == x and task:group == service:db"},
		{expr: "runningTasksCount < 3"},
		{expr: "ec2InstanceId in ['i-1']"},
		{expr: "registeredAt < 2024-01-01"},
		{expr: "attribute:a == 'task:group'"}, // a false alarm only turns the memo off
	} {
		t.Run(tc.expr, func(t *testing.T) {
			e, err := cql.Parse(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			c := classOf(e)
			if (c != nil) != tc.memo {
				t.Fatalf("classOf(%s) = %+v, want memo %v", e, c, tc.memo)
			}
			if c == nil {
				return
			}
			if !slices.Equal(c.attrs, tc.attrs) || c.version != tc.version || c.connected != tc.connected {
				t.Fatalf("classOf(%s) = attrs %q version %v connected %v, want %q %v %v",
					e, c.attrs, c.version, c.connected, tc.attrs, tc.version, tc.connected)
			}
		})
	}
}

// TestClassKeys checks that two instances share a memo entry exactly when
// they agree on what the expression reads.
func TestClassKeys(t *testing.T) {
	e, err := cql.Parse("attribute:a == x or attribute:b exists or agentVersion > 1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	c := classOf(e)
	key := func(n Node) string {
		c.lookup(&n)
		return string(c.key)
	}
	base := Node{Attributes: map[string]string{"a": "x", "b": "", "other": "1"}, AgentVersion: "1.2.0"}
	same := with(base, func(n *Node) { n.Attributes["other"] = "2"; n.ID = "elsewhere" })
	if key(base) != key(same) {
		t.Fatal("an attribute the expression does not read changed the key")
	}
	for name, n := range map[string]Node{
		"a differs":    with(base, func(n *Node) { n.Attributes["a"] = "y" }),
		"b missing":    with(base, func(n *Node) { delete(n.Attributes, "b") }),
		"b differs":    with(base, func(n *Node) { n.Attributes["b"] = "y" }),
		"value shifts": with(base, func(n *Node) { n.Attributes["a"], n.Attributes["b"] = "", "x" }),
		"version":      with(base, func(n *Node) { n.AgentVersion = "1.2.1" }),
	} {
		if key(n) == key(base) {
			t.Errorf("%s: same key as base", name)
		}
	}
}

// TestBuckets covers many attribute values, past the point where buckets
// switches from a list to a map, and instances without the attribute.
func TestBuckets(t *testing.T) {
	var nodes []Node
	for i := range 60 {
		n := Node{Attributes: map[string]string{}}
		if i%7 != 3 {
			n.Attributes["v"] = fmt.Sprint(i % 20)
		}
		nodes = append(nodes, n)
	}
	count := make([]int64, len(nodes))
	for i := range count {
		count[i] = int64(i)
	}
	bucket, tasks := buckets(nodes, "v", count)
	sums := make([]int64, len(tasks))
	for i := range nodes {
		sums[bucket[i]] += count[i]
		for j := range nodes {
			vi, oki := nodes[i].Attributes["v"]
			vj, okj := nodes[j].Attributes["v"]
			if (bucket[i] == bucket[j]) != (oki == okj && vi == vj) {
				t.Fatalf("nodes %d (%q %v) and %d (%q %v): buckets %d and %d", i, vi, oki, j, vj, okj, bucket[i], bucket[j])
			}
		}
	}
	if !slices.Equal(sums, tasks) {
		t.Fatalf("tasks per bucket %v, want %v", tasks, sums)
	}
}
