package scheduler

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// Builders and assertions shared by the tests and benchmarks.

const az = "ecs.availability-zone"

// inst is an active, connected instance in zone z with cpu and mem free.
func inst(id, z string, cpu, mem int64) Node {
	n := Node{
		ID: "arn:aws:ecs:us-east-1:000000000000:container-instance/c/" + id, EC2InstanceID: "i-" + id,
		Active: true, AgentConnected: true, CPU: cpu, Memory: mem, ENI: -1,
		Attributes: map[string]string{"ecs.instance-type": "m5.large", "ecs.os-type": "linux"},
	}
	if z != "" {
		n.Attributes[az] = z
	}
	return n
}

// with returns n changed by f, for building tables.
func with(n Node, f func(*Node)) Node {
	n.Attributes = maps.Clone(n.Attributes)
	f(&n)
	return n
}

// grid is zones × per instances, each with cpu and mem free.
func grid(zones, per int, cpu, mem int64) []Node {
	var out []Node
	for z := range zones {
		for i := range per {
			out = append(out, inst(fmt.Sprintf("%c%d", 'a'+z, i), fmt.Sprintf("us-east-1%c", 'a'+z), cpu, mem))
		}
	}
	return out
}

func seeded(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

func mustPlace(t testing.TB, nodes []Node, req *Request) Result {
	t.Helper()
	res, err := Place(nodes, req)
	if err != nil {
		t.Fatalf("Place: %v", err)
	}
	return res
}

// apply commits a result to nodes as a caller would.
func apply(nodes []Node, req *Request, chosen []int) {
	for _, i := range chosen {
		n := &nodes[i]
		n.Ports = slices.Clip(n.Ports)
		n.PortsUDP = slices.Clip(n.PortsUDP)
		Reserve(n, &req.Demand)
		if n.Groups == nil {
			n.Groups = map[string]int{}
		}
		n.Groups[req.Group]++
		n.RunningTasks++
	}
}

// deepCopy copies nodes with everything they point to.
func deepCopy(nodes []Node) []Node {
	out := slices.Clone(nodes)
	for i := range out {
		out[i].Ports = slices.Clone(out[i].Ports)
		out[i].PortsUDP = slices.Clone(out[i].PortsUDP)
		out[i].Attributes = maps.Clone(out[i].Attributes)
		out[i].Groups = maps.Clone(out[i].Groups)
	}
	return out
}

// perValue counts chosen placements by node attribute attr ("" for the
// node's own index).
func perValue(nodes []Node, chosen []int, attr string) map[string]int {
	out := map[string]int{}
	for _, i := range chosen {
		if attr == "" {
			out[fmt.Sprint(i)]++
		} else {
			out[nodes[i].Attributes[attr]]++
		}
	}
	return out
}

func sorted(xs []int) []int {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs
}
