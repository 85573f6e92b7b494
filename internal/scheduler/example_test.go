package scheduler_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/wharfhq/wharf/internal/scheduler"
)

func ExamplePlace() {
	node := func(id, zone string, memory int64) scheduler.Node {
		return scheduler.Node{
			ID: id, Active: true, AgentConnected: true, CPU: 2048, Memory: memory, ENI: -1,
			Attributes: map[string]string{"ecs.availability-zone": zone, "ecs.instance-type": "m5.large"},
		}
	}
	nodes := []scheduler.Node{
		node("a1", "us-east-1a", 4096), node("a2", "us-east-1a", 1024),
		node("b1", "us-east-1b", 2048), node("b2", "us-east-1b", 8192),
	}
	res, err := scheduler.Place(nodes, &scheduler.Request{
		Demand: scheduler.Demand{CPU: 256, Memory: 512},
		Count:  5,
		Group:  "service:web",
		Constraints: []scheduler.Constraint{
			{Type: "memberOf", Expression: "attribute:ecs.instance-type =~ m5.*"},
		},
		// Even over zones, then bin packed on memory within each zone.
		Strategies: []scheduler.Strategy{
			{Type: "spread", Field: "attribute:ecs.availability-zone"},
			{Type: "binpack", Field: "memory"},
		},
		Rand: rand.New(rand.NewPCG(1, 2)),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, i := range res.Chosen {
		fmt.Print(nodes[i].ID, " ")
	}
	fmt.Println()
	// Output: a2 b1 a2 b1 b1
}

func ExamplePlace_failures() {
	nodes := []scheduler.Node{
		{ID: "full", Active: true, AgentConnected: true, CPU: 4096, Memory: 256},
		{ID: "draining", Active: false, AgentConnected: true, CPU: 4096, Memory: 4096},
		{ID: "busy", Active: true, AgentConnected: true, CPU: 4096, Memory: 4096, Groups: map[string]int{"family:etl": 1}},
	}
	res, _ := scheduler.Place(nodes, &scheduler.Request{
		Demand:      scheduler.Demand{CPU: 256, Memory: 512},
		Count:       1,
		Group:       "family:etl",
		Constraints: []scheduler.Constraint{{Type: "distinctInstance"}},
	})
	fmt.Println(len(res.Chosen), "placed")
	for _, f := range res.Failures {
		fmt.Printf("%s: %s\n", f.NodeID, f.Reason)
	}
	// Output:
	// 0 placed
	// full: RESOURCE:MEMORY
	// draining: INACTIVE
	// busy: DistinctInstance placement constraint unsatisfied.
}

func ExampleChooseStops() {
	zone := func(z string) scheduler.Node {
		return scheduler.Node{Attributes: map[string]string{"ecs.availability-zone": z}}
	}
	nodes := []scheduler.Node{zone("us-east-1a"), zone("us-east-1a"), zone("us-east-1b")}
	tasks := []scheduler.Running{
		{Node: 0, ID: "t1"}, {Node: 0, ID: "t2"}, {Node: 1, ID: "t3"}, {Node: 2, ID: "t4"},
	}
	// No strategies: keep Availability Zone balance, as ECS does for a service.
	for _, i := range scheduler.ChooseStops(nodes, tasks, 2, nil, rand.New(rand.NewPCG(1, 2))) {
		fmt.Print(tasks[i].ID, " ")
	}
	fmt.Println()
	// Output: t1 t2
}
