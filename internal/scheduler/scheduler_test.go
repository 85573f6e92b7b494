package scheduler

import "testing"

func TestFit(t *testing.T) {
	base := Node{ID: "n", Active: true, AgentConnected: true, CPU: 1024, Memory: 512, Ports: []int{22, 8080}, PortsUDP: []int{53}}
	for _, tc := range []struct {
		name string
		node func(*Node)
		d    Demand
		want string
	}{
		{"fits", nil, Demand{CPU: 1024, Memory: 512, Ports: []int{80}}, ""},
		{"cpu", nil, Demand{CPU: 1025}, "RESOURCE:CPU"},
		{"memory", nil, Demand{Memory: 513}, "RESOURCE:MEMORY"},
		{"tcp port", nil, Demand{Ports: []int{8080}}, "RESOURCE:PORTS"},
		{"udp port", nil, Demand{PortsUDP: []int{53}}, "RESOURCE:PORTS_UDP"},
		{"udp and tcp apart", nil, Demand{PortsUDP: []int{8080}}, ""},
		{"eni", func(n *Node) { n.ENI = 0 }, Demand{ENI: 1}, "RESOURCE:ENI"},
		{"eni unlimited", func(n *Node) { n.ENI = -1 }, Demand{ENI: 1}, ""},
		{"draining", func(n *Node) { n.Active = false }, Demand{}, "INACTIVE"},
		{"disconnected", func(n *Node) { n.AgentConnected = false }, Demand{}, "AGENT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := base
			if tc.node != nil {
				tc.node(&n)
			}
			if got := Fit(&n, &tc.d); got != tc.want {
				t.Fatalf("Fit = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPlaceReservesAsItGoes(t *testing.T) {
	nodes := []Node{
		{ID: "a", Active: true, AgentConnected: true, CPU: 256, Memory: 1024},
		{ID: "b", Active: true, AgentConnected: true, CPU: 512, Memory: 1024},
	}
	chosen, failures := Place(nodes, &Demand{CPU: 256, Memory: 100, Ports: []int{80}}, 3)
	if len(chosen) != 2 || chosen[0] != 0 || chosen[1] != 1 {
		t.Fatalf("chosen %v", chosen)
	}
	if len(failures) != 2 || failures[0].Reason != "RESOURCE:CPU" || failures[1].Reason != "RESOURCE:PORTS" {
		t.Fatalf("failures %+v", failures)
	}
	if nodes[0].CPU != 0 || nodes[1].CPU != 256 {
		t.Fatalf("reservations %+v", nodes)
	}
}
