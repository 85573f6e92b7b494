package scheduler

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/wharfhq/wharf/internal/scheduler/cql"
)

// Property tests: random clusters and requests from a fixed seed, each
// placement checked against a naive model of the ECS rules (oracle) that
// recomputes everything from scratch for every task.

var (
	propGroups      = []string{"service:web", "service:db", "family:batch"}
	propExpressions = []string{
		"attribute:ecs.availability-zone != us-east-1c",
		"attribute:ecs.instance-type =~ m5.*",
		"attribute:stack exists",
		"task:group == service:db",
		"not(task:group == service:web)",
		"task:group != family:batch",
		"runningTasksCount < 4",
		"agentVersion >= 1.50.0",
		"registeredAt < 2024-06-01",
		"ec2InstanceId in ['i-1', 'i-2', 'i-3', 'i-5', 'i-8', 'i-13']",
		"attribute:stack == prod or agentVersion < 1.50.0",
		"agentConnected == true and attribute:ecs.instance-type in [m5.large, c5.large]",
		"attribute:ecs.availability-zone == us-east-1a or task:group exists",
	}
	propStrategies = []Strategy{
		randomly, spreadNode, {"spread", "host"}, spreadAZ, {"spread", "attribute:stack"},
		{"spread", "attribute:ecs.instance-type"}, binpackCPU, binpackMem,
	}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// randomCluster draws up to max instances of mixed state.
func randomCluster(r *rand.Rand, max int) []Node {
	nodes := make([]Node, 1+r.IntN(max))
	for i := range nodes {
		n := Node{
			ID:             fmt.Sprintf("ci-%d", i),
			EC2InstanceID:  fmt.Sprintf("i-%d", i),
			Active:         r.IntN(10) > 0,
			AgentConnected: r.IntN(10) > 0,
			CPU:            int64(r.IntN(17)) * 256,
			Memory:         int64(r.IntN(17)) * 512,
			ENI:            int64(r.IntN(5)) - 1,
			RunningTasks:   r.IntN(6),
			AgentVersion:   pick(r, []string{"1.40.0", "1.50.0", "1.80.2", ""}),
			RegisteredAt:   time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.IntN(900)) * 24 * time.Hour),
			Attributes: map[string]string{
				"ecs.instance-type": pick(r, []string{"m5.large", "m5.xlarge", "c5.large", "t3.micro"}),
			},
		}
		if r.IntN(10) > 0 {
			n.Attributes[az] = pick(r, []string{"us-east-1a", "us-east-1b", "us-east-1c"})
		}
		if r.IntN(3) > 0 {
			n.Attributes["stack"] = pick(r, []string{"prod", "dev"})
		}
		for _, p := range []int{22, 80, 443, 8080} {
			if r.IntN(4) == 0 {
				n.Ports = append(n.Ports, p)
			}
		}
		if r.IntN(4) == 0 {
			n.PortsUDP = []int{53}
		}
		if r.IntN(4) > 0 {
			n.Groups = map[string]int{}
			for _, g := range propGroups {
				if c := r.IntN(4) - 1; c >= 0 {
					n.Groups[g] = c
				}
			}
		}
		nodes[i] = n
	}
	return nodes
}

func randomRequest(r *rand.Rand) Request {
	req := Request{
		Demand: Demand{
			CPU:    pick(r, []int64{0, 128, 512, 1024}),
			Memory: pick(r, []int64{0, 128, 512, 2048}),
			ENI:    int64(r.IntN(2)),
		},
		Count: 1 + r.IntN(10),
		Group: pick(r, propGroups),
	}
	if r.IntN(5) == 0 {
		req.Demand.Ports = []int{80}
	}
	if r.IntN(10) == 0 {
		req.Demand.PortsUDP = []int{53}
	}
	for range r.IntN(4) {
		if r.IntN(4) == 0 {
			req.Constraints = append(req.Constraints, distinct)
		} else {
			req.Constraints = append(req.Constraints, memberOf(pick(r, propExpressions)))
		}
	}
	for range r.IntN(4) {
		req.Strategies = append(req.Strategies, pick(r, propStrategies))
	}
	return req
}

// oracle is the naive model: a deep copy of the cluster, updated per task.
type oracle struct {
	nodes []Node
	req   *Request
	exprs []cql.Expr // nil for distinctInstance
}

func newOracle(t *testing.T, nodes []Node, req *Request) *oracle {
	o := &oracle{nodes: deepCopy(nodes), req: req}
	for _, c := range req.Constraints {
		var e cql.Expr
		if c.Type == "memberOf" {
			var err error
			if e, err = cql.Parse(c.Expression); err != nil {
				t.Fatal(err)
			}
		}
		o.exprs = append(o.exprs, e)
	}
	return o
}

// reason is why node i refuses the next task, or "".
func (o *oracle) reason(i int) string {
	n := &o.nodes[i]
	if r := Fit(n, &o.req.Demand); r != "" {
		return r
	}
	for _, e := range o.exprs {
		if e == nil {
			if n.Groups[o.req.Group] > 0 {
				return ReasonDistinctInstance
			}
			continue
		}
		in := cql.Instance{
			Attributes: n.Attributes, AgentConnected: n.AgentConnected, AgentVersion: n.AgentVersion,
			EC2InstanceID: n.EC2InstanceID, RegisteredAt: n.RegisteredAt, RunningTasksCount: n.RunningTasks,
		}
		for g, c := range n.Groups {
			if c > 0 {
				in.TaskGroups = append(in.TaskGroups, g)
			}
		}
		if !e.Match(&in) {
			return ReasonMemberOf
		}
	}
	return ""
}

// key is node i's rank under strategy s; lower is better.
func (o *oracle) key(i int, s Strategy) int64 {
	n := &o.nodes[i]
	switch {
	case s.Type == "binpack" && s.Field == "cpu":
		return n.CPU
	case s.Type == "binpack":
		return n.Memory
	case s.Field == "instanceId" || s.Field == "host":
		return int64(n.Groups[o.req.Group])
	}
	attr := s.Field[len("attribute:"):]
	v, ok := n.Attributes[attr]
	var sum int64
	for j := range o.nodes {
		if w, has := o.nodes[j].Attributes[attr]; has == ok && w == v {
			sum += int64(o.nodes[j].Groups[o.req.Group])
		}
	}
	return sum
}

// best is the set of nodes the strategies allow for the next task.
func (o *oracle) best() []int {
	var set []int
	for i := range o.nodes {
		if o.reason(i) == "" {
			set = append(set, i)
		}
	}
	for _, s := range o.req.Strategies {
		if s.Type == "random" {
			break
		}
		lowest := int64(1 << 62)
		for _, i := range set {
			lowest = min(lowest, o.key(i, s))
		}
		set = slices.DeleteFunc(set, func(i int) bool { return o.key(i, s) != lowest })
	}
	return set
}

func (o *oracle) place(i int) {
	n := &o.nodes[i]
	Reserve(n, &o.req.Demand)
	if n.Groups == nil {
		n.Groups = map[string]int{}
	}
	n.Groups[o.req.Group]++
	n.RunningTasks++
}

func TestPlaceProperties(t *testing.T) {
	r := seeded(20260801)
	for c := range 4000 {
		nodes := randomCluster(r, 25)
		req := randomRequest(r)
		req.Rand = seeded(uint64(c))
		before := deepCopy(nodes)
		res := mustPlace(t, nodes, &req)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("case %d (%d nodes, %+v): %s", c, len(nodes), req, fmt.Sprintf(format, args...))
		}
		if !reflect.DeepEqual(before, nodes) {
			fail("Place modified its nodes")
		}
		o := newOracle(t, nodes, &req)
		for k, i := range res.Chosen {
			if why := o.reason(i); why != "" {
				fail("task %d went to node %d, which refuses it: %s", k, i, why)
			}
			if best := o.best(); !slices.Contains(best, i) {
				fail("task %d went to node %d, not one of the best %v", k, i, best)
			}
			o.place(i)
			if n := o.nodes[i]; n.CPU < 0 || n.Memory < 0 || n.ENI < -1 {
				fail("node %d overcommitted: cpu %d memory %d eni %d", i, n.CPU, n.Memory, n.ENI)
			}
		}
		if len(res.Chosen) == req.Count {
			if res.Failures != nil {
				fail("all placed, yet failures %v", res.Failures)
			}
			continue
		}
		if len(res.Failures) != len(nodes) {
			fail("placed %d of %d with %d failures for %d nodes", len(res.Chosen), req.Count, len(res.Failures), len(nodes))
		}
		for i, f := range res.Failures {
			if want := o.reason(i); f.NodeID != nodes[i].ID || f.Reason != want || want == "" {
				fail("failure %d = %+v, want %s %q", i, f, nodes[i].ID, want)
			}
		}
	}
}

// TestPlaceSpreadBalances places tasks in batches, as a service would, on
// an empty uniform cluster and checks the first strategy's field never
// gets out of balance by more than one task.
func TestPlaceSpreadBalances(t *testing.T) {
	r := seeded(7)
	for c := range 1000 {
		zones, per := 1+r.IntN(4), 1+r.IntN(5)
		nodes := grid(zones, per, 1<<20, 1<<20)
		first := pick(r, []Strategy{spreadAZ, spreadNode})
		strategies := []Strategy{first}
		if r.IntN(2) == 0 {
			strategies = append(strategies, pick(r, []Strategy{spreadNode, binpackMem, binpackCPU, randomly}))
		}
		total := 1 + r.IntN(60)
		var chosen []int
		for len(chosen) < total {
			req := Request{Demand: small, Count: min(1+r.IntN(10), total-len(chosen)), Group: web, Strategies: strategies, Rand: seeded(uint64(c))}
			res := mustPlace(t, nodes, &req)
			if len(res.Chosen) != req.Count {
				t.Fatalf("case %d: placed %d of %d on an empty cluster", c, len(res.Chosen), req.Count)
			}
			apply(nodes, &req, res.Chosen)
			chosen = append(chosen, res.Chosen...)
		}
		attr, values := az, zones
		if first == spreadNode {
			attr, values = "", len(nodes)
		}
		counts := perValue(nodes, chosen, attr)
		lo, hi := total, 0
		for _, n := range counts {
			lo, hi = min(lo, n), max(hi, n)
		}
		if len(counts) < values {
			lo = 0
		}
		if hi-lo > 1 {
			t.Fatalf("case %d: %v over %d zones × %d: %d tasks spread %v", c, strategies, zones, per, total, counts)
		}
		if len(strategies) == 2 && strategies[1] == spreadNode {
			// Within each zone, instances are balanced too.
			for z := range zones {
				zone := nodes[z*per : (z+1)*per]
				lo, hi := total, 0
				for _, n := range zone {
					lo, hi = min(lo, n.Groups[web]), max(hi, n.Groups[web])
				}
				if hi-lo > 1 {
					t.Fatalf("case %d: zone %d instances hold %d..%d tasks", c, z, lo, hi)
				}
			}
		}
	}
}

// TestPlaceBinpackIsTight checks binpack alone on random clusters: every
// task lands on a candidate with the least remaining of the resource.
func TestPlaceBinpackIsTight(t *testing.T) {
	r := seeded(11)
	for c := range 2000 {
		nodes := randomCluster(r, 40)
		s := pick(r, []Strategy{binpackCPU, binpackMem})
		req := Request{Demand: Demand{CPU: pick(r, []int64{128, 256, 512}), Memory: pick(r, []int64{128, 512, 1024})},
			Count: 1 + r.IntN(10), Strategies: []Strategy{s}, Rand: seeded(uint64(c))}
		res := mustPlace(t, nodes, &req)
		o := newOracle(t, nodes, &req)
		for k, i := range res.Chosen {
			for j := range o.nodes {
				if o.reason(j) == "" && o.key(j, s) < o.key(i, s) {
					t.Fatalf("case %d task %d: %v chose node %d with %d left, node %d fits with %d", c, k, s, i, o.key(i, s), j, o.key(j, s))
				}
			}
			o.place(i)
		}
	}
}

func TestPlacePropertiesDeterministic(t *testing.T) {
	r := seeded(3)
	for c := range 500 {
		nodes := randomCluster(r, 30)
		req := randomRequest(r)
		req.Rand = seeded(uint64(c))
		a := mustPlace(t, nodes, &req)
		req.Rand = seeded(uint64(c))
		b := mustPlace(t, nodes, &req)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("case %d: same seed, %+v then %+v", c, a, b)
		}
	}
}
