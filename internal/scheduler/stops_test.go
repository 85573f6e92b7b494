package scheduler

import (
	"fmt"
	"slices"
	"testing"
)

// tasksOn lays out running tasks: counts[i] tasks on nodes[i].
func tasksOn(counts ...int) []Running {
	var out []Running
	for node, c := range counts {
		for range c {
			out = append(out, Running{Node: node, ID: fmt.Sprintf("t-%d-%d", node, len(out))})
		}
	}
	return out
}

// stoppedPerNode counts the chosen tasks by node.
func stoppedPerNode(tasks []Running, chosen []int, nodes int) []int {
	out := make([]int, nodes)
	for _, i := range chosen {
		out[tasks[i].Node]++
	}
	return out
}

func TestChooseStops(t *testing.T) {
	zones := []Node{ // a1 a2 b1 c1
		inst("a1", "us-east-1a", 0, 0), inst("a2", "us-east-1a", 0, 0),
		inst("b1", "us-east-1b", 0, 0), inst("c1", "us-east-1c", 0, 0),
	}
	memory := func(m ...int64) []Node {
		nodes := grid(1, len(m), 0, 0)
		for i := range nodes {
			nodes[i].Memory = m[i]
		}
		return nodes
	}
	for _, tc := range []struct {
		name       string
		nodes      []Node
		tasks      []Running
		n          int
		strategies []Strategy
		want       []int                   // stops per node
		check      func(*testing.T, []int) // per-node stops, when ties make several outcomes right
	}{
		{
			name:  "default: the zone with the most tasks, then its fullest instance",
			nodes: zones, tasks: tasksOn(3, 1, 1, 1), n: 2,
			want: []int{2, 0, 0, 0},
		},
		{
			name:  "default: back to zone balance, random among equals",
			nodes: zones, tasks: tasksOn(3, 1, 1, 1), n: 3,
			check: func(t *testing.T, got []int) {
				if got[2] != 0 || got[3] != 0 || got[0]+got[1] != 3 || got[0] < 2 {
					t.Fatalf("stops per node %v, want 3 from zone a, at least 2 from a1", got)
				}
			},
		},
		{
			name:  "default keeps zones even while scaling down",
			nodes: zones, tasks: tasksOn(2, 2, 2, 2), n: 5,
			check: func(t *testing.T, got []int) {
				left := []int{4 - got[0] - got[1], 2 - got[2], 2 - got[3]}
				if slices.Max(left)-slices.Min(left) > 1 {
					t.Fatalf("stops per node %v leave zones at %v", got, left)
				}
			},
		},
		{
			name:  "spread instanceId stops on the fullest instance",
			nodes: zones, tasks: tasksOn(1, 4, 2, 0), n: 2, strategies: []Strategy{spreadNode},
			want: []int{0, 2, 0, 0},
		},
		{
			name:  "binpack memory stops on the instance with the most memory left",
			nodes: memory(100, 500, 300), tasks: tasksOn(2, 2, 2), n: 3, strategies: []Strategy{binpackMem},
			want: []int{0, 2, 1},
		},
		{
			name:  "binpack stays on the instance it relieved among equals",
			nodes: memory(500, 500), tasks: tasksOn(2, 2), n: 2, strategies: []Strategy{binpackMem},
			check: func(t *testing.T, got []int) {
				if got[0] != 2 && got[1] != 2 {
					t.Fatalf("stops per node %v, want both on one instance", got)
				}
			},
		},
		{
			name:  "binpack cpu",
			nodes: []Node{inst("a", "z", 100, 0), inst("b", "z", 900, 0)}, tasks: tasksOn(1, 1), n: 1,
			strategies: []Strategy{binpackCPU},
			want:       []int{0, 1},
		},
		{
			name:  "spread zone then binpack memory",
			nodes: []Node{inst("a1", "z1", 0, 100), inst("a2", "z1", 0, 900), inst("b1", "z2", 0, 5000)},
			tasks: tasksOn(1, 1, 1), n: 1, strategies: []Strategy{spreadAZ, binpackMem},
			check: func(t *testing.T, got []int) {
				if got[1] != 1 {
					t.Fatalf("stops per node %v, want the one on a2", got)
				}
			},
		},
		{
			name:  "n beyond the tasks stops them all",
			nodes: zones, tasks: tasksOn(1, 2, 0, 1), n: 10,
			want: []int{1, 2, 0, 1},
		},
		{
			name:  "nothing to stop",
			nodes: zones, tasks: tasksOn(1, 1, 1, 1), n: 0,
			want: []int{0, 0, 0, 0},
		},
		{
			name:  "invalid strategies are skipped",
			nodes: zones, tasks: tasksOn(1, 4, 2, 0), n: 2, strategies: []Strategy{{"pack", ""}, spreadNode},
			want: []int{0, 2, 0, 0},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := range uint64(20) {
				got := ChooseStops(tc.nodes, tc.tasks, tc.n, tc.strategies, seeded(seed))
				if want := min(max(tc.n, 0), len(tc.tasks)); len(got) != want {
					t.Fatalf("seed %d: %d stops, want %d", seed, len(got), want)
				}
				if len(got) != len(slices.Compact(sorted(got))) {
					t.Fatalf("seed %d: %v repeats a task", seed, got)
				}
				per := stoppedPerNode(tc.tasks, got, len(tc.nodes))
				if tc.want != nil && !slices.Equal(per, tc.want) {
					t.Fatalf("seed %d: stops per node %v, want %v", seed, per, tc.want)
				}
				if tc.check != nil {
					tc.check(t, per)
				}
			}
		})
	}
}

func TestChooseStopsOrphansFirst(t *testing.T) {
	nodes := grid(1, 2, 0, 0)
	tasks := []Running{{Node: 0}, {Node: 7}, {Node: 1}, {Node: -1}, {Node: 1}}
	got := ChooseStops(nodes, tasks, 3, nil, seeded(1))
	if got[0] != 1 || got[1] != 3 || tasks[got[2]].Node != 1 {
		t.Fatalf("ChooseStops = %v, want the tasks on unknown nodes (1, 3), then one on node 1", got)
	}
	if got := ChooseStops(nodes, tasks, 1, nil, seeded(1)); !slices.Equal(got, []int{1}) {
		t.Fatalf("ChooseStops(1) = %v, want [1]", got)
	}
}

func TestChooseStopsRandom(t *testing.T) {
	nodes := grid(1, 3, 0, 0)
	tasks := tasksOn(300, 300, 300)
	got := ChooseStops(nodes, tasks, 300, []Strategy{randomly, spreadNode}, seeded(5))
	for i, c := range stoppedPerNode(tasks, got, 3) {
		if c < 75 || c > 125 {
			t.Fatalf("node %d: %d of 300 random stops", i, c)
		}
	}
	a := ChooseStops(nodes, tasks, 50, nil, seeded(9))
	b := ChooseStops(nodes, tasks, 50, nil, seeded(9))
	if !slices.Equal(a, b) {
		t.Fatal("same seed, different stops")
	}
}

// TestChooseStopsProperties checks the default scale-in on random layouts:
// each stop comes from a zone with the most tasks left, and from an
// instance with the most tasks left in that zone.
func TestChooseStopsProperties(t *testing.T) {
	r := seeded(99)
	for c := range 2000 {
		nodes := randomCluster(r, 12)
		counts := make([]int, len(nodes))
		for i := range counts {
			counts[i] = r.IntN(5)
		}
		tasks := tasksOn(counts...)
		n := r.IntN(len(tasks) + 2)
		got := ChooseStops(nodes, tasks, n, nil, seeded(uint64(c)))
		if len(got) != min(n, len(tasks)) {
			t.Fatalf("case %d: %d stops, want %d", c, len(got), min(n, len(tasks)))
		}
		left := slices.Clone(counts)
		zoneOf := func(i int) string {
			if z, ok := nodes[i].Attributes[az]; ok {
				return "=" + z
			}
			return "missing"
		}
		for k, ti := range got {
			node := tasks[ti].Node
			zones := map[string]int{}
			for i, l := range left {
				zones[zoneOf(i)] += l
			}
			for z, l := range zones {
				if l > zones[zoneOf(node)] {
					t.Fatalf("case %d stop %d: zone %s has %d tasks, zone %s more: %d", c, k, zoneOf(node), zones[zoneOf(node)], z, l)
				}
			}
			for i, l := range left {
				if zoneOf(i) == zoneOf(node) && l > left[node] {
					t.Fatalf("case %d stop %d: node %d has %d tasks, node %d in its zone %d", c, k, node, left[node], i, l)
				}
			}
			if left[node] == 0 {
				t.Fatalf("case %d stop %d: node %d has no task left", c, k, node)
			}
			left[node]--
		}
	}
}
