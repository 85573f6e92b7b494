package scheduler

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

var (
	spreadAZ     = Strategy{"spread", "attribute:" + az}
	spreadNode   = Strategy{"spread", "instanceId"}
	binpackCPU   = Strategy{"binpack", "cpu"}
	binpackMem   = Strategy{"binpack", "memory"}
	randomly     = Strategy{"random", ""}
	distinct     = Constraint{Type: "distinctInstance"}
	web          = "service:web"
	withGroups   = func(g map[string]int) func(*Node) { return func(n *Node) { n.Groups = g } }
	withType     = func(t string) func(*Node) { return func(n *Node) { n.Attributes["ecs.instance-type"] = t } }
	memberOf     = func(e string) Constraint { return Constraint{Type: "memberOf", Expression: e} }
	small        = Demand{CPU: 128, Memory: 128}
	reasonsOfAll = func(r ...string) []string { return r }
)

// placeCase is a placement whose outcome every seed must satisfy.
type placeCase struct {
	name  string
	nodes []Node
	req   Request
	want  []int                                  // Chosen exactly, when ties cannot matter
	set   []int                                  // Chosen as a multiset, when only the order is random
	check func(t *testing.T, n []Node, r Result) // anything else
	fails []string                               // Failures' reasons, one per node; nil for none
}

func (tc *placeCase) run(t *testing.T) {
	for seed := range uint64(25) {
		req := tc.req
		req.Rand = seeded(seed)
		before := deepCopy(tc.nodes)
		res := mustPlace(t, tc.nodes, &req)
		if !reflect.DeepEqual(before, tc.nodes) {
			t.Fatalf("seed %d: Place modified its nodes", seed)
		}
		if tc.want != nil && !slices.Equal(res.Chosen, tc.want) {
			t.Fatalf("seed %d: Chosen = %v, want %v", seed, res.Chosen, tc.want)
		}
		if tc.set != nil && !slices.Equal(sorted(res.Chosen), sorted(tc.set)) {
			t.Fatalf("seed %d: Chosen = %v, want %v in any order", seed, res.Chosen, tc.set)
		}
		if tc.check != nil {
			tc.check(t, tc.nodes, res)
		}
		var reasons []string
		for i, f := range res.Failures {
			if f.NodeID != tc.nodes[i].ID {
				t.Fatalf("seed %d: failure %d is for %s, want %s", seed, i, f.NodeID, tc.nodes[i].ID)
			}
			reasons = append(reasons, f.Reason)
		}
		if !slices.Equal(reasons, tc.fails) {
			t.Fatalf("seed %d: failure reasons = %q, want %q", seed, reasons, tc.fails)
		}
		if len(res.Chosen) < req.Count && len(tc.nodes) > 0 && res.Failures == nil {
			t.Fatalf("seed %d: placed %d of %d without failures", seed, len(res.Chosen), req.Count)
		}
	}
}

func TestPlaceStrategies(t *testing.T) {
	big := int64(1 << 30)
	for _, tc := range []placeCase{
		{
			name: "binpack memory takes the least remaining memory that fits",
			nodes: []Node{
				inst("a", "z1", 4096, 4096), inst("b", "z1", 4096, 1024),
				inst("c", "z1", 4096, 256), inst("d", "z1", 4096, 2048),
			},
			req:  Request{Demand: Demand{Memory: 512}, Count: 4, Strategies: []Strategy{binpackMem}},
			want: []int{1, 1, 3, 3},
		},
		{
			name:  "binpack cpu takes the least remaining cpu that fits",
			nodes: []Node{inst("a", "z1", 2048, 8192), inst("b", "z1", 512, 8192), inst("c", "z1", 1024, 4096)},
			req:   Request{Demand: Demand{CPU: 512}, Count: 3, Strategies: []Strategy{binpackCPU}},
			want:  []int{1, 2, 2},
		},
		{
			name:  "binpack memory ignores cpu",
			nodes: []Node{inst("a", "z1", 256, 8192), inst("b", "z1", 8192, 1024)},
			req:   Request{Demand: Demand{CPU: 128, Memory: 128}, Count: 1, Strategies: []Strategy{binpackMem}},
			want:  []int{1},
		},
		{
			name: "spread instanceId evens out the group's tasks",
			nodes: []Node{
				with(inst("a", "z1", big, big), withGroups(map[string]int{web: 2})),
				inst("b", "z1", big, big),
				with(inst("c", "z1", big, big), withGroups(map[string]int{web: 1})),
			},
			req: Request{Demand: small, Count: 3, Group: web, Strategies: []Strategy{spreadNode}},
			set: []int{1, 1, 2},
		},
		{
			name: "spread host is spread instanceId",
			nodes: []Node{
				with(inst("a", "z1", big, big), withGroups(map[string]int{web: 1})),
				inst("b", "z1", big, big),
			},
			req:  Request{Demand: small, Count: 1, Group: web, Strategies: []Strategy{{"spread", "host"}}},
			want: []int{1},
		},
		{
			name: "spread counts only the request's group",
			nodes: []Node{
				with(inst("a", "z1", big, big), withGroups(map[string]int{"service:db": 5})),
				with(inst("b", "z1", big, big), withGroups(map[string]int{web: 1})),
			},
			req:  Request{Demand: small, Count: 1, Group: web, Strategies: []Strategy{spreadNode}},
			want: []int{0},
		},
		{
			name: "spread attribute balances over the attribute's values",
			nodes: []Node{
				with(inst("a1", "z1", big, big), withGroups(map[string]int{web: 2})),
				with(inst("a2", "z1", big, big), withGroups(map[string]int{web: 1})),
				inst("b1", "z2", big, big),
			},
			req:  Request{Demand: small, Count: 3, Group: web, Strategies: []Strategy{spreadAZ}},
			want: []int{2, 2, 2},
		},
		{
			name: "spread attribute counts tasks on instances that cannot take the task",
			nodes: []Node{
				with(inst("a1", "z1", big, 0), withGroups(map[string]int{web: 3})),
				inst("a2", "z1", big, big),
				with(inst("b1", "z2", big, big), withGroups(map[string]int{web: 1})),
			},
			req:  Request{Demand: small, Count: 1, Group: web, Strategies: []Strategy{spreadAZ}},
			want: []int{2},
		},
		{
			name: "spread attribute: instances without it share one bucket",
			nodes: []Node{
				inst("a", "z1", big, big),
				with(inst("m1", "", big, big), withGroups(map[string]int{web: 1})),
				inst("m2", "", big, big),
			},
			req:  Request{Demand: small, Count: 1, Group: web, Strategies: []Strategy{spreadAZ}},
			want: []int{0}, // m2 alone would tie with a
		},
		{
			name: "spread attribute: the missing bucket is not last",
			nodes: []Node{
				with(inst("a", "z1", big, big), withGroups(map[string]int{web: 1})),
				inst("m1", "", big, big),
				inst("m2", "", big, big),
			},
			req: Request{Demand: small, Count: 1, Group: web, Strategies: []Strategy{spreadAZ}},
			check: func(t *testing.T, _ []Node, r Result) {
				if r.Chosen[0] == 0 {
					t.Fatalf("Chosen = %v, want an instance without a zone", r.Chosen)
				}
			},
		},
		{
			name:  "random uses every candidate about equally",
			nodes: grid(1, 3, big, big),
			req:   Request{Demand: small, Count: 3000, Strategies: []Strategy{randomly}},
			check: roughlyEven(3000, 3),
		},
		{
			name:  "no strategy is random",
			nodes: grid(1, 3, big, big),
			req:   Request{Demand: small, Count: 3000},
			check: roughlyEven(3000, 3),
		},
		{
			name:  "random ends the chain",
			nodes: []Node{inst("a", "z1", big, 1000), inst("b", "z1", big, big)},
			req:   Request{Demand: Demand{Memory: 1}, Count: 200, Strategies: []Strategy{randomly, binpackMem}},
			check: roughlyEven(200, 2),
		},
	} {
		t.Run(tc.name, tc.run)
	}
}

// roughlyEven checks that count placements fell about evenly on n nodes.
func roughlyEven(count, n int) func(*testing.T, []Node, Result) {
	return func(t *testing.T, nodes []Node, r Result) {
		t.Helper()
		if len(r.Chosen) != count {
			t.Fatalf("placed %d, want %d", len(r.Chosen), count)
		}
		for i, c := range perValue(nodes, r.Chosen, "") {
			if lo, hi := count/n*3/4, count/n*5/4; c < lo || c > hi {
				t.Fatalf("node %s got %d of %d, want %d..%d", i, c, count, lo, hi)
			}
		}
	}
}

func TestPlaceChains(t *testing.T) {
	big := int64(1 << 30)
	mem := func(nodes []Node, m ...int64) []Node {
		for i := range nodes {
			nodes[i].Memory = m[i]
		}
		return nodes
	}
	evenly := func(attr string, each int) func(*testing.T, []Node, Result) {
		return func(t *testing.T, nodes []Node, r Result) {
			t.Helper()
			for v, c := range perValue(nodes, r.Chosen, attr) {
				if c != each {
					t.Fatalf("%q=%s got %d tasks, want %d (chosen %v)", attr, v, c, each, r.Chosen)
				}
			}
		}
	}
	both := func(fs ...func(*testing.T, []Node, Result)) func(*testing.T, []Node, Result) {
		return func(t *testing.T, n []Node, r Result) {
			for _, f := range fs {
				f(t, n, r)
			}
		}
	}
	for _, tc := range []placeCase{
		{
			name:  "spread zone then instance: 2-2-2 over 3 zones, one per instance",
			nodes: grid(3, 2, big, big),
			req:   Request{Demand: small, Count: 6, Group: web, Strategies: ServiceDefault()},
			check: both(evenly(az, 2), evenly("", 1)),
		},
		{
			name:  "spread zone then instance: 12 tasks, two per instance",
			nodes: grid(3, 2, big, big),
			req:   Request{Demand: small, Count: 12, Group: web, Strategies: ServiceDefault()},
			check: both(evenly(az, 4), evenly("", 2)),
		},
		{
			name:  "spread zone then binpack memory packs within each zone",
			nodes: mem(grid(3, 2, big, 0), 4096, 2048, 2048, 4096, 3072, 8192),
			req:   Request{Demand: Demand{Memory: 512}, Count: 6, Group: web, Strategies: []Strategy{spreadAZ, binpackMem}},
			set:   []int{1, 1, 2, 2, 4, 4},
			check: evenly(az, 2),
		},
		{
			name: "binpack memory then spread zone breaks binpack's ties",
			nodes: []Node{
				with(inst("a", "z1", big, 1024), withGroups(map[string]int{web: 1})),
				inst("b", "z2", big, 1024),
				inst("c", "z3", big, 4096),
			},
			req:  Request{Demand: small, Count: 1, Group: web, Strategies: []Strategy{binpackMem, spreadAZ}},
			want: []int{1},
		},
	} {
		t.Run(tc.name, tc.run)
	}
}

func TestPlaceConstraints(t *testing.T) {
	big := int64(1 << 30)
	for _, tc := range []placeCase{
		{
			name:  "distinctInstance across the batch",
			nodes: grid(1, 3, big, big),
			req:   Request{Demand: small, Count: 5, Group: web, Constraints: []Constraint{distinct}},
			set:   []int{0, 1, 2},
			fails: reasonsOfAll(ReasonDistinctInstance, ReasonDistinctInstance, ReasonDistinctInstance),
		},
		{
			name: "distinctInstance counts the request's group only",
			nodes: []Node{
				with(inst("a", "z1", big, big), withGroups(map[string]int{web: 1})),
				with(inst("b", "z1", big, big), withGroups(map[string]int{"service:db": 2})),
				with(inst("c", "z1", big, big), withGroups(map[string]int{web: 0})),
			},
			req: Request{Demand: small, Count: 2, Group: web, Constraints: []Constraint{distinct}},
			set: []int{1, 2},
		},
		{
			name: "memberOf an attribute",
			nodes: []Node{
				inst("a", "z1", big, 256), with(inst("b", "z1", big, big), withType("c5.large")),
				inst("c", "z1", big, big),
			},
			req:  Request{Demand: small, Count: 2, Constraints: []Constraint{memberOf("attribute:ecs.instance-type =~ c5.*")}},
			want: []int{1, 1},
		},
		{
			name: "memberOf task:group affinity",
			nodes: []Node{
				with(inst("a", "z1", big, big), withGroups(map[string]int{"service:db": 1})),
				inst("b", "z1", big, big),
				with(inst("c", "z1", big, big), withGroups(map[string]int{web: 1})),
			},
			req:  Request{Demand: small, Count: 2, Group: web, Constraints: []Constraint{memberOf("task:group == service:db")}},
			want: []int{0, 0},
		},
		{
			name: "memberOf task:group anti-affinity sees the batch",
			nodes: []Node{
				inst("a", "z1", big, big),
				with(inst("b", "z1", big, big), withGroups(map[string]int{web: 1})),
				inst("c", "z1", big, big),
			},
			req:   Request{Demand: small, Count: 3, Group: web, Constraints: []Constraint{memberOf("not(task:group == service:web)")}},
			set:   []int{0, 2},
			fails: reasonsOfAll(ReasonMemberOf, ReasonMemberOf, ReasonMemberOf),
		},
		{
			name: "memberOf runningTasksCount sees the batch",
			nodes: []Node{
				with(inst("a", "z1", big, big), func(n *Node) { n.RunningTasks = 1 }),
				with(inst("b", "z1", big, big), func(n *Node) { n.RunningTasks = 5 }),
			},
			req:   Request{Demand: small, Count: 2, Constraints: []Constraint{memberOf("runningTasksCount < 2")}},
			want:  []int{0},
			fails: reasonsOfAll(ReasonMemberOf, ReasonMemberOf),
		},
		{
			name:  "memberOf ec2InstanceId",
			nodes: grid(1, 3, big, big),
			req:   Request{Demand: small, Count: 1, Constraints: []Constraint{memberOf("ec2InstanceId in ['i-a1', 'i-x']")}},
			want:  []int{1},
		},
		{
			name: "memberOf agentVersion and registeredAt",
			nodes: []Node{
				with(inst("a", "z1", big, big), func(n *Node) { n.AgentVersion, n.RegisteredAt = "1.80.0", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) }),
				with(inst("b", "z1", big, big), func(n *Node) { n.AgentVersion, n.RegisteredAt = "1.79.2", time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC) }),
				with(inst("c", "z1", big, big), func(n *Node) { n.AgentVersion, n.RegisteredAt = "1.80.1", time.Date(2023, 6, 1, 0, 0, 0, 0, time.UTC) }),
			},
			req:  Request{Demand: small, Count: 1, Constraints: []Constraint{memberOf("agentVersion >= 1.80.0 and registeredAt < 2024-01-01")}},
			want: []int{2},
		},
		{
			name:  "every constraint binds",
			nodes: []Node{inst("a", "z1", big, big), with(inst("b", "z1", big, big), withType("c5.large")), inst("c", "z1", big, big)},
			req: Request{Demand: small, Count: 3, Group: web, Strategies: []Strategy{binpackMem},
				Constraints: []Constraint{memberOf("attribute:ecs.instance-type == m5.large"), distinct}},
			set:   []int{0, 2},
			fails: reasonsOfAll(ReasonDistinctInstance, ReasonMemberOf, ReasonDistinctInstance),
		},
	} {
		t.Run(tc.name, tc.run)
	}
}

func TestPlaceFailureReasons(t *testing.T) {
	d := Demand{CPU: 512, Memory: 512, Ports: []int{80}, PortsUDP: []int{53}, ENI: 1}
	ok := with(inst("ok", "z1", 1024, 1024), func(n *Node) { n.ENI = 2 })
	for _, tc := range []placeCase{
		{
			name: "one reason per instance, in instance order",
			nodes: []Node{
				with(ok, func(n *Node) { n.ID, n.Active = "inactive", false }),
				with(ok, func(n *Node) { n.ID, n.AgentConnected = "agent", false }),
				with(ok, func(n *Node) { n.ID, n.CPU = "cpu", 511 }),
				with(ok, func(n *Node) { n.ID, n.Memory = "memory", 511 }),
				with(ok, func(n *Node) { n.ID, n.Ports = "ports", []int{22, 80} }),
				with(ok, func(n *Node) { n.ID, n.PortsUDP = "udp", []int{53} }),
				with(ok, func(n *Node) { n.ID, n.ENI = "eni", 0 }),
				with(ok, func(n *Node) { n.ID = "member"; n.Attributes["ecs.instance-type"] = "t2.micro" }),
				with(ok, func(n *Node) { n.ID, n.Groups = "distinct", map[string]int{web: 1} }),
			},
			req: Request{Demand: d, Count: 1, Group: web,
				Constraints: []Constraint{memberOf("attribute:ecs.instance-type != t2.micro"), distinct}},
			want: []int{},
			fails: reasonsOfAll(ReasonInactive, ReasonAgent, ReasonCPU, ReasonMemory, ReasonPorts,
				ReasonPortsUDP, ReasonENI, ReasonMemberOf, ReasonDistinctInstance),
		},
		{
			name: "the first reason wins: resources, then constraints in order",
			nodes: []Node{
				with(ok, func(n *Node) { n.CPU, n.Groups = 0, map[string]int{web: 1} }),
				with(ok, func(n *Node) { n.Groups = map[string]int{web: 1}; n.Attributes["ecs.instance-type"] = "t2.micro" }),
			},
			req: Request{Demand: d, Count: 1, Group: web,
				Constraints: []Constraint{distinct, memberOf("attribute:ecs.instance-type != t2.micro")}},
			want:  []int{},
			fails: reasonsOfAll(ReasonCPU, ReasonDistinctInstance),
		},
		{
			name:  "failures describe the first task that did not fit",
			nodes: []Node{inst("a", "z1", 4096, 1024), inst("b", "z1", 4096, 300)},
			req:   Request{Demand: Demand{Memory: 512}, Count: 3},
			want:  []int{0, 0},
			fails: reasonsOfAll(ReasonMemory, ReasonMemory),
		},
		{
			name:  "host ports taken by the batch",
			nodes: grid(1, 2, 4096, 4096),
			req:   Request{Demand: Demand{Ports: []int{80}}, Count: 3},
			set:   []int{0, 1},
			fails: reasonsOfAll(ReasonPorts, ReasonPorts),
		},
		{
			name:  "udp ports taken by the batch",
			nodes: grid(1, 2, 4096, 4096),
			req:   Request{Demand: Demand{PortsUDP: []int{53}}, Count: 3},
			set:   []int{0, 1},
			fails: reasonsOfAll(ReasonPortsUDP, ReasonPortsUDP),
		},
		{
			name:  "network interfaces taken by the batch",
			nodes: []Node{with(ok, func(n *Node) { n.ENI = 1 }), with(ok, func(n *Node) { n.ENI = 2 })},
			req:   Request{Demand: Demand{ENI: 1}, Count: 4},
			set:   []int{0, 1, 1},
			fails: reasonsOfAll(ReasonENI, ReasonENI),
		},
		{
			name: "no instances, no failures",
			req:  Request{Demand: small, Count: 2},
			want: []int{},
		},
	} {
		t.Run(tc.name, tc.run)
	}
}

func TestPlaceCountZero(t *testing.T) {
	res := mustPlace(t, grid(1, 1, 1, 1), &Request{Count: 0})
	if len(res.Chosen) != 0 || res.Failures != nil {
		t.Fatalf("Place(count 0) = %+v", res)
	}
}

func TestPlaceIsDeterministicForASeed(t *testing.T) {
	nodes := grid(3, 20, 1<<20, 1<<20)
	for _, strategies := range [][]Strategy{nil, ServiceDefault(), {spreadAZ, binpackMem}, {binpackCPU}} {
		req := Request{Demand: small, Count: 10, Group: web, Strategies: strategies}
		var first []int
		for range 5 {
			req.Rand = seeded(42)
			res := mustPlace(t, nodes, &req)
			if first == nil {
				first = res.Chosen
			} else if !slices.Equal(first, res.Chosen) {
				t.Fatalf("%v: seed 42 gave %v, then %v", strategies, first, res.Chosen)
			}
		}
	}
}

func TestPlaceDoesNotWriteThroughSharedSlices(t *testing.T) {
	ports := make([]int, 1, 8)
	ports[0] = 22
	groups := map[string]int{web: 1}
	nodes := []Node{with(inst("a", "z1", 4096, 4096), func(n *Node) { n.Ports, n.PortsUDP, n.Groups = ports, ports[:1:8], groups })}
	res := mustPlace(t, nodes, &Request{Demand: Demand{CPU: 1, Ports: []int{80}, PortsUDP: []int{53}}, Count: 1, Group: web})
	if len(res.Chosen) != 1 {
		t.Fatalf("Chosen = %v", res.Chosen)
	}
	if spare := ports[:cap(ports)]; slices.ContainsFunc(spare[1:], func(p int) bool { return p != 0 }) {
		t.Fatalf("Place wrote into the caller's spare capacity: %v", spare)
	}
	if groups[web] != 1 || nodes[0].CPU != 4096 {
		t.Fatalf("Place modified the caller's node: %+v", nodes[0])
	}
}
