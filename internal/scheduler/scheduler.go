// Package scheduler decides where tasks run. It works on plain snapshots of
// container instances and task demands and imports nothing stateful, so it
// can be tested and benchmarked alone.
package scheduler

import "slices"

// Demand is what one task needs from the instance it is placed on.
type Demand struct {
	CPU      int64 // CPU units, 1024 per vCPU
	Memory   int64 // MiB
	Ports    []int // static TCP host ports
	PortsUDP []int // static UDP host ports
	ENI      int64 // network interfaces: 1 for an awsvpc task
}

// Node is a container instance as the scheduler sees it.
type Node struct {
	ID             string
	Active         bool // status ACTIVE (not DRAINING or deregistered)
	AgentConnected bool
	CPU            int64 // remaining CPU units
	Memory         int64 // remaining MiB
	Ports          []int // TCP host ports in use or reserved
	PortsUDP       []int // UDP host ports in use or reserved
	ENI            int64 // remaining awsvpc task capacity; negative for no limit
}

// Failure says why a task could not go on a node.
type Failure struct {
	NodeID string
	Reason string // ECS's reason, e.g. RESOURCE:MEMORY
}

// Fit reports why d does not fit on n, or "" when it does.
func Fit(n *Node, d *Demand) string {
	switch {
	case !n.Active:
		return "INACTIVE"
	case !n.AgentConnected:
		return "AGENT"
	case d.CPU > n.CPU:
		return "RESOURCE:CPU"
	case d.Memory > n.Memory:
		return "RESOURCE:MEMORY"
	case overlaps(d.Ports, n.Ports):
		return "RESOURCE:PORTS"
	case overlaps(d.PortsUDP, n.PortsUDP):
		return "RESOURCE:PORTS_UDP"
	case d.ENI > 0 && n.ENI >= 0 && d.ENI > n.ENI:
		return "RESOURCE:ENI"
	}
	return ""
}

// Reserve takes d's resources from n.
func Reserve(n *Node, d *Demand) {
	n.CPU -= d.CPU
	n.Memory -= d.Memory
	n.Ports = append(n.Ports, d.Ports...)
	n.PortsUDP = append(n.PortsUDP, d.PortsUDP...)
	if n.ENI >= 0 {
		n.ENI -= d.ENI
	}
}

func overlaps(want, used []int) bool {
	for _, p := range want {
		if slices.Contains(used, p) {
			return true
		}
	}
	return false
}

// Place chooses a node for each of count tasks of demand d, taking the
// first node with room for each in turn and reserving on the nodes as it
// goes. It returns the chosen node indexes and, for the tasks that fit
// nowhere, why each node refused the first of them.
func Place(nodes []Node, d *Demand, count int) (chosen []int, failures []Failure) {
	for range count {
		idx := -1
		var why []Failure
		for i := range nodes {
			if reason := Fit(&nodes[i], d); reason != "" {
				why = append(why, Failure{NodeID: nodes[i].ID, Reason: reason})
				continue
			}
			idx = i
			break
		}
		if idx < 0 {
			return chosen, why
		}
		Reserve(&nodes[idx], d)
		chosen = append(chosen, idx)
	}
	return chosen, nil
}
