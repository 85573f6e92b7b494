package scheduler

import (
	"math"
	"math/rand/v2"
	"slices"
)

// Running is a running task of the group being scaled in: it runs on
// nodes[Node].
type Running struct {
	Node int
	ID   string
}

// ChooseStops chooses n of tasks to stop when a service scales in and
// returns their indexes into tasks, in the order chosen (all of them when n
// is at least len(tasks)). It chooses one task at a time, each time ranking
// the tasks still running by the strategies, in order, each breaking the
// ties the ones before it leave, then at random:
//
//   - spread(field) stops a task from the value of field (the instance for
//     instanceId) with the most tasks still running, moving the group back
//     toward balance;
//   - binpack(cpu|memory) stops a task on the instance with the most of that
//     resource remaining, so the least packed instances empty first; among
//     equals, one this call already stopped a task on;
//   - random picks uniformly and ends the chain.
//
// Without strategies it keeps Availability Zone balance as ECS does for a
// service: the zone with the most tasks, then the instance with the most
// tasks, then random (ServiceDefault, read as a scale-in). Counts are over
// tasks, so pass all the tasks of the group that may be stopped. A task
// whose Node is not an index of nodes runs nowhere known and is stopped
// first. Strategies are expected to be valid (ValidateStrategies); invalid
// ones are skipped. r may be nil for a random seed.
func ChooseStops(nodes []Node, tasks []Running, n int, strategies []Strategy, r *rand.Rand) []int {
	n = min(n, len(tasks))
	if n <= 0 {
		return nil
	}
	if len(strategies) == 0 {
		strategies = ServiceDefault()
	}
	var rules []rule
	for _, s := range strategies {
		if rl, err := compileStrategy(s); err == nil {
			rules = append(rules, rl)
		}
	}
	s := newStopper(nodes, tasks, chain(rules), newRand(r))
	out := make([]int, 0, n)
	for _, t := range s.orphans {
		if len(out) == n {
			return out
		}
		out = append(out, int(t))
	}
	for len(out) < n {
		t := s.pick()
		s.stop(t)
		out = append(out, int(t))
	}
	return out
}

// stopper is the state of one ChooseStops call.
type stopper struct {
	nodes   []Node
	tasks   []Running
	ranks   []stopRanker
	rnd     *rand.Rand
	alive   []int32 // tasks on known nodes not chosen yet, ascending
	orphans []int32 // tasks on unknown nodes
	perNode []int64 // tasks of alive per node
	stopped []int64 // tasks chosen per node
	scratch []int32
}

type stopRanker struct {
	kind   rankKind
	bucket []int32 // rankAttr: each node's bucket
	tasks  []int64 // rankAttr: alive tasks per bucket
}

func newStopper(nodes []Node, tasks []Running, rules []rule, rnd *rand.Rand) *stopper {
	s := &stopper{
		nodes:   nodes,
		tasks:   tasks,
		rnd:     rnd,
		perNode: make([]int64, len(nodes)),
		stopped: make([]int64, len(nodes)),
	}
	for i, t := range tasks {
		if t.Node < 0 || t.Node >= len(nodes) {
			s.orphans = append(s.orphans, int32(i))
			continue
		}
		s.alive = append(s.alive, int32(i))
		s.perNode[t.Node]++
	}
	for _, r := range rules {
		rk := stopRanker{kind: r.kind}
		if r.kind == rankAttr {
			rk.bucket, rk.tasks = buckets(nodes, r.attr, s.perNode)
		}
		s.ranks = append(s.ranks, rk)
	}
	s.scratch = make([]int32, 0, len(s.alive))
	return s
}

// pick ranks the running tasks by each strategy, keeping those with the
// highest key, and picks one of the survivors at random.
func (s *stopper) pick() int32 {
	src := s.alive
	for k := range s.ranks {
		if len(src) <= 1 {
			break
		}
		dst := src[:0]
		if k == 0 {
			dst = s.scratch[:0]
		}
		src = s.keepBest(&s.ranks[k], src, dst)
	}
	if len(src) == 1 {
		return src[0]
	}
	return src[s.rnd.IntN(len(src))]
}

func (s *stopper) keepBest(rk *stopRanker, src, dst []int32) []int32 {
	best, tie := int64(math.MinInt64), int64(math.MinInt64)
	for _, t := range src {
		node := s.tasks[t].Node
		var k, kt int64
		switch rk.kind {
		case rankNode:
			k = s.perNode[node]
		case rankAttr:
			k = rk.tasks[rk.bucket[node]]
		case rankCPU:
			k, kt = s.nodes[node].CPU, s.stopped[node]
		case rankMemory:
			k, kt = s.nodes[node].Memory, s.stopped[node]
		}
		if k > best || k == best && kt > tie {
			best, tie, dst = k, kt, dst[:0]
		}
		if k == best && kt == tie {
			dst = append(dst, t)
		}
	}
	return dst
}

// stop takes task t out of the running ones.
func (s *stopper) stop(t int32) {
	if j, ok := slices.BinarySearch(s.alive, t); ok {
		s.alive = slices.Delete(s.alive, j, j+1)
	}
	node := s.tasks[t].Node
	s.perNode[node]--
	s.stopped[node]++
	for k := range s.ranks {
		if rk := &s.ranks[k]; rk.kind == rankAttr {
			rk.tasks[rk.bucket[node]]--
		}
	}
}
