package scheduler

import (
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/wharfhq/wharf/internal/scheduler/cql"
)

// Failure says why a task could not go on a node.
type Failure struct {
	NodeID string
	Reason string // ECS's reason, e.g. RESOURCE:MEMORY; see the Reason constants
}

// Result is the outcome of Place.
type Result struct {
	// Chosen holds the node index of each placed task, in placement order;
	// it is shorter than Count when the cluster ran out of candidates.
	Chosen []int

	// Failures, when fewer than Count tasks were placed, holds one entry
	// per node, in node order: the first reason the node refused the first
	// task that could not be placed (after the ones before it).
	Failures []Failure
}

// Place chooses a node for each of req.Count tasks of req.Demand, one task
// at a time against a working copy of nodes that accounts for the tasks
// already placed: their resources are reserved, their node's Groups and
// RunningTasks counted. For each task it keeps the nodes that are active,
// connected and have room (Fit), then those that satisfy every constraint,
// then ranks them by the strategies lexicographically and picks at random
// among the best. Place never modifies nodes.
//
// The error, a *RequestError, is only for an invalid request: too many or
// unknown constraints or strategies, a bad memberOf expression, a negative
// Count. Running out of capacity is not an error; see Result.
func Place(nodes []Node, req *Request) (Result, error) {
	cons, err := compileConstraints(req.Constraints)
	if err != nil {
		return Result{}, err
	}
	rules, err := compileStrategies(req.Strategies)
	if err != nil {
		return Result{}, err
	}
	if req.Count < 0 {
		return Result{}, &RequestError{Msg: "count must not be negative"}
	}
	if req.Count == 0 {
		return Result{}, nil
	}
	p := newPlacer(nodes, req, cons, chain(rules))
	return p.run(req.Count), nil
}

// placer is the state of one Place call. Whether a node can take the next
// task depends only on that node, so after the first pass only the node
// that received a task is checked again.
type placer struct {
	nodes  []Node
	d      *Demand
	group  string
	checks []check
	ranks  []ranker
	rnd    *rand.Rand

	code     []reason        // why each node refuses the next task, or fits
	count    []int64         // tasks of the group per node; nil if nothing counts them
	cpu      []int64         // remaining CPU per node, for binpack(cpu)
	mem      []int64         // remaining memory per node, for binpack(memory)
	copies   map[int32]*Node // nodes that received a task, copied on first write
	cands    []int32         // nodes that fit the next task, ascending
	byBucket [][]int32       // cands by bucket of ranks[0], when it spreads over an attribute
	scratch  []int32         // the candidates a ranking keeps

	// What memberOf expressions are evaluated against, set per node.
	inst       cql.Instance
	needGroups bool // an expression reads task:group
	groups     []string
}

// check is a constraint prepared for one call.
type check struct {
	expr  cql.Expr // nil for distinctInstance
	class *class   // memoised results, when expr reads no per-instance subject
}

// ranker is a strategy prepared for one call.
type ranker struct {
	kind   rankKind
	bucket []int32 // rankAttr: each node's bucket, one per attribute value
	tasks  []int64 // rankAttr: tasks of the group per bucket
}

func newPlacer(nodes []Node, req *Request, cons []constraint, rules []rule) *placer {
	p := &placer{
		nodes:  nodes,
		d:      &req.Demand,
		group:  req.Group,
		rnd:    newRand(req.Rand),
		code:   make([]reason, len(nodes)),
		copies: make(map[int32]*Node, min(req.Count, len(nodes))),
	}
	needCount := false // spread and distinctInstance count the group's tasks
	for _, r := range rules {
		needCount = needCount || r.kind == rankNode || r.kind == rankAttr
	}
	for _, c := range cons {
		if c.expr == nil {
			needCount = true
			p.checks = append(p.checks, check{})
			continue
		}
		// Conservative: the text may also appear inside a quoted value.
		p.needGroups = p.needGroups || strings.Contains(c.expr.String(), "task:group")
		p.checks = append(p.checks, check{expr: c.expr, class: classOf(c.expr)})
	}
	if needCount {
		p.count = make([]int64, len(nodes))
		for i := range nodes {
			if g := nodes[i].Groups; g != nil {
				p.count[i] = int64(g[req.Group])
			}
		}
	}
	for _, r := range rules {
		rk := ranker{kind: r.kind}
		switch r.kind {
		case rankAttr:
			rk.bucket, rk.tasks = buckets(nodes, r.attr, p.count)
		case rankCPU:
			if p.cpu == nil {
				p.cpu = make([]int64, len(nodes))
				for i := range nodes {
					p.cpu[i] = nodes[i].CPU
				}
			}
		case rankMemory:
			if p.mem == nil {
				p.mem = make([]int64, len(nodes))
				for i := range nodes {
					p.mem[i] = nodes[i].Memory
				}
			}
		}
		p.ranks = append(p.ranks, rk)
	}
	p.cands = make([]int32, 0, len(nodes))
	for i := range nodes {
		p.code[i] = p.check(int32(i), &nodes[i])
		if p.code[i] == fits {
			p.cands = append(p.cands, int32(i))
		}
	}
	p.scratch = make([]int32, 0, len(p.cands))
	if len(p.ranks) > 0 && p.ranks[0].kind == rankAttr {
		p.byBucket = partition(p.cands, p.ranks[0].bucket, len(p.ranks[0].tasks))
	}
	return p
}

// buckets numbers the values of attribute attr in order of appearance,
// nodes without it sharing one more bucket, and sums count per bucket.
func buckets(nodes []Node, attr string, count []int64) (bucket []int32, tasks []int64) {
	bucket = make([]int32, len(nodes))
	var (
		values  []string         // bucket of each value, while there are few
		ids     map[string]int32 // then a map
		missing = int32(-1)
	)
	for i := range nodes {
		v, ok := nodes[i].Attributes[attr]
		id := int32(-1)
		switch {
		case !ok:
			if missing < 0 {
				missing = int32(len(tasks))
				values = append(values, "") // keep values indexed by bucket
				tasks = append(tasks, 0)
			}
			id = missing
		case ids != nil:
			var seen bool
			if id, seen = ids[v]; !seen {
				id = -1
			}
		default:
			for j, w := range values {
				if w == v && int32(j) != missing {
					id = int32(j)
					break
				}
			}
		}
		if id < 0 {
			id = int32(len(tasks))
			tasks = append(tasks, 0)
			if ids != nil {
				ids[v] = id
			} else if values = append(values, v); len(values) > 8 {
				ids = make(map[string]int32, len(values))
				for j, w := range values {
					if int32(j) != missing {
						ids[w] = int32(j)
					}
				}
			}
		}
		bucket[i] = id
		if count != nil {
			tasks[id] += count[i]
		}
	}
	return bucket, tasks
}

// partition splits the ascending nodes by bucket, each part ascending.
func partition(nodes, bucket []int32, n int) [][]int32 {
	sizes := make([]int, n)
	for _, i := range nodes {
		sizes[bucket[i]]++
	}
	parts := make([][]int32, n)
	backing := make([]int32, len(nodes))
	for b, size := range sizes {
		parts[b], backing = backing[:0:size], backing[size:]
	}
	for _, i := range nodes {
		parts[bucket[i]] = append(parts[bucket[i]], i)
	}
	return parts
}

// check returns the first reason n, which is node i as this call sees it,
// refuses the next task: resources first, then constraints in order.
func (p *placer) check(i int32, n *Node) reason {
	if r := fit(n, p.d); r != fits {
		return r
	}
	loaded := false
	for k := range p.checks {
		c := &p.checks[k]
		if c.expr == nil {
			if p.count[i] > 0 {
				return notDistinct
			}
			continue
		}
		var match, known bool
		if c.class != nil {
			match, known = c.class.lookup(n)
		}
		if !known {
			if !loaded {
				p.load(n)
				loaded = true
			}
			match = c.expr.Match(&p.inst)
			if c.class != nil {
				c.class.store(match)
			}
		}
		if !match {
			return notMemberOf
		}
	}
	return fits
}

// load points p.inst at n.
func (p *placer) load(n *Node) {
	p.inst = cql.Instance{
		Attributes:        n.Attributes,
		AgentConnected:    n.AgentConnected,
		AgentVersion:      n.AgentVersion,
		EC2InstanceID:     n.EC2InstanceID,
		RegisteredAt:      n.RegisteredAt,
		RunningTasksCount: n.RunningTasks,
	}
	if p.needGroups {
		p.groups = p.groups[:0]
		for g, c := range n.Groups {
			if c > 0 {
				p.groups = append(p.groups, g)
			}
		}
		p.inst.TaskGroups = p.groups
	}
}

func (p *placer) run(count int) Result {
	var res Result
	res.Chosen = make([]int, 0, min(count, 1024))
	for len(res.Chosen) < count {
		if len(p.cands) == 0 {
			res.Failures = make([]Failure, len(p.nodes))
			for i := range p.nodes {
				res.Failures[i] = Failure{NodeID: p.nodes[i].ID, Reason: p.code[i].String()}
			}
			break
		}
		i := p.pick()
		p.place(i)
		res.Chosen = append(res.Chosen, int(i))
	}
	return res
}

// pick ranks the candidates by each strategy in turn, keeping those with
// the best key, and picks one of the survivors at random.
func (p *placer) pick() int32 {
	src, owned := p.cands, false // owned: src is p.scratch and may be narrowed in place
	ranks := p.ranks
	if p.byBucket != nil {
		src, owned = p.bestBuckets()
		ranks = ranks[1:]
	}
	for k := range ranks {
		if len(src) <= 1 {
			break
		}
		dst := src[:0] // in place: a kept candidate is written at or before where it was read
		if !owned {
			dst, owned = p.scratch[:0], true
		}
		src = ranks[k].keepBest(p, src, dst)
	}
	if len(src) == 1 {
		return src[0]
	}
	return src[p.rnd.IntN(len(src))]
}

// bestBuckets is the first ranking when it spreads over an attribute: the
// candidates in the buckets with the fewest tasks of the group, without
// looking at the other candidates.
func (p *placer) bestBuckets() (cands []int32, owned bool) {
	tasks := p.ranks[0].tasks
	best, first, ties := int64(math.MaxInt64), -1, 0
	for b, part := range p.byBucket {
		switch {
		case len(part) == 0:
		case tasks[b] < best:
			best, first, ties = tasks[b], b, 1
		case tasks[b] == best:
			ties++
		}
	}
	if ties == 1 {
		return p.byBucket[first], false
	}
	cands = p.scratch[:0]
	for b, part := range p.byBucket[first:] {
		if len(part) > 0 && tasks[first+b] == best {
			cands = append(cands, part...)
		}
	}
	return cands, true
}

// keepBest appends to dst the nodes of src with the lowest key: fewest
// tasks of the group for spread, least remaining for binpack.
func (rk *ranker) keepBest(p *placer, src, dst []int32) []int32 {
	switch rk.kind {
	case rankNode:
		return keepMin(src, dst, p.count)
	case rankCPU:
		return keepMin(src, dst, p.cpu)
	case rankMemory:
		return keepMin(src, dst, p.mem)
	}
	best := int64(math.MaxInt64)
	for _, i := range src {
		k := rk.tasks[rk.bucket[i]]
		if k < best {
			best, dst = k, dst[:0]
		}
		if k == best {
			dst = append(dst, i)
		}
	}
	return dst
}

func keepMin(src, dst []int32, key []int64) []int32 {
	best := int64(math.MaxInt64)
	for _, i := range src {
		k := key[i]
		if k < best {
			best, dst = k, dst[:0]
		}
		if k == best {
			dst = append(dst, i)
		}
	}
	return dst
}

// place puts a task on node i: it reserves the demand on the node's copy,
// counts the task, and checks the node again for the next task.
func (p *placer) place(i int32) {
	n := p.copies[i]
	if n == nil {
		n = clone(&p.nodes[i])
		p.copies[i] = n
	}
	Reserve(n, p.d)
	n.Groups[p.group]++
	n.RunningTasks++
	if p.count != nil {
		p.count[i]++
	}
	for k := range p.ranks {
		if rk := &p.ranks[k]; rk.kind == rankAttr {
			rk.tasks[rk.bucket[i]]++
		}
	}
	if p.cpu != nil {
		p.cpu[i] = n.CPU
	}
	if p.mem != nil {
		p.mem[i] = n.Memory
	}
	if p.code[i] = p.check(i, n); p.code[i] != fits {
		p.cands = remove(p.cands, i)
		if p.byBucket != nil {
			b := p.ranks[0].bucket[i]
			p.byBucket[b] = remove(p.byBucket[b], i)
		}
	}
}

// remove deletes i from the ascending xs.
func remove(xs []int32, i int32) []int32 {
	if j, ok := slices.BinarySearch(xs, i); ok {
		return slices.Delete(xs, j, j+1)
	}
	return xs
}

// clone copies what Reserve and place write: the port slices and Groups.
// Attributes are only read and stay shared.
func clone(n *Node) *Node {
	c := *n
	c.Ports = slices.Clone(n.Ports)
	c.PortsUDP = slices.Clone(n.PortsUDP)
	c.Groups = maps.Clone(n.Groups)
	if c.Groups == nil {
		c.Groups = map[string]int{}
	}
	return &c
}
