package scheduler

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// benchCluster is n instances over 3 zones and 4 instance types, partly
// used, some already running tasks of service:web, with the attributes an
// ECS agent registers.
func benchCluster(n int) []Node {
	types := []struct {
		name     string
		cpu, mem int64
	}{{"m5.large", 2048, 7680}, {"m5.xlarge", 4096, 15576}, {"c5.xlarge", 4096, 7400}, {"r5.large", 2048, 15700}}
	r := rand.New(rand.NewPCG(1, 2))
	nodes := make([]Node, n)
	for i := range nodes {
		ty := types[i%len(types)]
		used := r.Float64() * 0.7
		nodes[i] = Node{
			ID:             fmt.Sprintf("arn:aws:ecs:us-east-1:000000000000:container-instance/bench/%032x", i),
			EC2InstanceID:  fmt.Sprintf("i-%017x", i),
			Active:         true,
			AgentConnected: r.IntN(200) > 0,
			CPU:            ty.cpu - int64(float64(ty.cpu)*used),
			Memory:         ty.mem - int64(float64(ty.mem)*used),
			Ports:          []int{22, 2375, 2376, 51678, 51679},
			ENI:            -1,
			RegisteredAt:   time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute),
			AgentVersion:   "1.90.0",
			RunningTasks:   r.IntN(8),
			Attributes: map[string]string{
				az:                                  fmt.Sprintf("us-east-1%c", 'a'+i%3),
				"ecs.instance-type":                 ty.name,
				"ecs.os-type":                       "linux",
				"ecs.os-family":                     "LINUX",
				"ecs.cpu-architecture":              "x86_64",
				"ecs.ami-id":                        "ami-0123456789abcdef0",
				"ecs.vpc-id":                        "vpc-0123456789abcdef0",
				"ecs.subnet-id":                     fmt.Sprintf("subnet-%c", 'a'+i%3),
				"ecs.capability.execution-role-ecr": "",
				"ecs.capability.task-eni":           "",
				"com.amazonaws.ecs.capability.docker-remote-api.1.44": "",
				"com.amazonaws.ecs.capability.logging-driver.awslogs": "",
			},
		}
		if c := r.IntN(4); c > 0 {
			nodes[i].Groups = map[string]int{"service:web": c - 1, "service:other": r.IntN(3)}
		}
	}
	return nodes
}

var benchSets = []struct {
	name        string
	strategies  []Strategy
	constraints []Constraint
}{
	{"default", ServiceDefault(), nil},
	{"spreadAZ+binpack", []Strategy{spreadAZ, binpackMem}, nil},
	{"spreadAZ+binpack+memberOf+distinct", []Strategy{spreadAZ, binpackMem}, []Constraint{
		memberOf("attribute:ecs.instance-type =~ m5.* and attribute:ecs.availability-zone != us-east-1c"), distinct}},
}

// BenchmarkPlace is one RunTask-sized batch (10 tasks) against clusters of
// growing size.
func BenchmarkPlace(b *testing.B) {
	for _, size := range []int{500, 1000, 5000, 10000} {
		nodes := benchCluster(size)
		for _, set := range benchSets {
			b.Run(fmt.Sprintf("nodes=%d/%s", size, set.name), func(b *testing.B) {
				req := Request{Demand: Demand{CPU: 256, Memory: 512}, Count: 10, Group: "service:web",
					Strategies: set.strategies, Constraints: set.constraints, Rand: seeded(1)}
				b.ReportAllocs()
				calls := 0
				for b.Loop() {
					res, err := Place(nodes, &req)
					if err != nil || len(res.Chosen) != req.Count {
						b.Fatalf("placed %d: %v", len(res.Chosen), err)
					}
					calls++
				}
				reportPlacements(b, calls*req.Count)
			})
		}
	}
}

// BenchmarkPlaceService places a 1,000-task service on 1,000 instances, 10
// tasks per Place call, committing each batch before the next as the
// service controller does.
func BenchmarkPlaceService(b *testing.B) {
	fresh := benchCluster(1000)
	b.ReportAllocs()
	placed := 0
	for b.Loop() {
		b.StopTimer()
		nodes := deepCopy(fresh)
		b.StartTimer()
		req := Request{Demand: Demand{CPU: 256, Memory: 512}, Count: 10, Group: "service:api",
			Strategies: ServiceDefault(), Rand: seeded(1)}
		for range 100 {
			res, err := Place(nodes, &req)
			if err != nil || len(res.Chosen) != req.Count {
				b.Fatalf("placed %d: %v", len(res.Chosen), err)
			}
			apply(nodes, &req, res.Chosen)
			placed += len(res.Chosen)
		}
	}
	reportPlacements(b, placed)
}

func reportPlacements(b *testing.B, placements int) {
	if s := b.Elapsed().Seconds(); s > 0 && placements > 0 {
		b.ReportMetric(float64(placements)/s, "placements/s")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(placements), "ns/placement")
	}
}
