package main

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
)

// RunTaskResult is what clients calling RunTask(count=10) in a loop got.
type RunTaskResult struct {
	Nodes     int     `json:"nodes"`
	RegisterS float64 `json:"register_s"`
	Clients   int     `json:"clients"`
	DurationS float64 `json:"duration_s"`
	Calls     int     `json:"calls"`
	Errors    int     `json:"errors"`
	// Placed counts the tasks the calls returned; Failures the placement
	// failures they returned instead.
	Placed    int      `json:"placed"`
	Failures  int      `json:"failures"`
	PlacedPS  float64  `json:"placed_per_s"`
	P50ms     float64  `json:"call_p50_ms"`
	P99ms     float64  `json:"call_p99_ms"`
	MaxMs     float64  `json:"call_max_ms"`
	ErrorSeen []string `json:"errors_seen,omitempty"`
	// Running counts the placed tasks that reported RUNNING within the
	// wait after the loop; ToRunning* is their startedAt - createdAt.
	Running        int        `json:"running"`
	ToRunningP50ms float64    `json:"to_running_p50_ms"`
	ToRunningP99ms float64    `json:"to_running_p99_ms"`
	WatchStall     WatchStall `json:"watch_stall"`
}

// runTasks calls RunTask(count=10) from clients goroutines, each in a loop,
// for d or maxCalls calls in all, whichever comes first.
func runTasks(ctx context.Context, c *ecs.Client, cluster, taskDef string, clients int, d time.Duration, maxCalls int) *RunTaskResult {
	res := &RunTaskResult{Clients: clients}
	var (
		mu        sync.Mutex
		latencies []float64
		arns      []string
		calls     int
	)
	errs := map[string]bool{}
	deadline := time.Now().Add(d)
	lctx, cancel := context.WithDeadline(ctx, deadline.Add(30*time.Second))
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && lctx.Err() == nil {
				mu.Lock()
				if calls >= maxCalls {
					mu.Unlock()
					return
				}
				calls++
				mu.Unlock()
				t := time.Now()
				out, err := c.RunTask(lctx, &ecs.RunTaskInput{Cluster: aws.String(cluster), TaskDefinition: aws.String(taskDef), Count: aws.Int32(10)})
				ms := float64(time.Since(t).Microseconds()) / 1000
				mu.Lock()
				if err != nil {
					res.Errors++
					if len(errs) < 5 {
						errs[err.Error()] = true
					}
				} else {
					latencies = append(latencies, ms)
					res.Failures += len(out.Failures)
					for _, task := range out.Tasks {
						arns = append(arns, aws.ToString(task.TaskArn))
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.DurationS = time.Since(start).Seconds()
	res.Calls = calls
	res.Placed = len(arns)
	res.PlacedPS = float64(res.Placed) / res.DurationS
	slices.Sort(latencies)
	res.P50ms, res.P99ms = percentile(latencies, 50), percentile(latencies, 99)
	if len(latencies) > 0 {
		res.MaxMs = latencies[len(latencies)-1]
	}
	for e := range errs {
		res.ErrorSeen = append(res.ErrorSeen, e)
	}

	// Wait up to 15 s for the placed tasks to run, then take their times.
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var toRunning []float64
	for {
		toRunning = toRunning[:0]
		ok := true
		for i := 0; i < len(arns) && ok; i += 100 {
			out, err := c.DescribeTasks(wctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: arns[i:min(i+100, len(arns))]})
			if err != nil {
				ok = false
				break
			}
			for _, t := range out.Tasks {
				if t.StartedAt != nil && t.CreatedAt != nil {
					toRunning = append(toRunning, float64(t.StartedAt.Sub(*t.CreatedAt).Microseconds())/1000)
				}
			}
		}
		if (ok && len(toRunning) == len(arns)) || wctx.Err() != nil {
			break
		}
		sleepCtx(wctx, time.Second)
	}
	slices.Sort(toRunning)
	res.Running = len(toRunning)
	res.ToRunningP50ms, res.ToRunningP99ms = percentile(toRunning, 50), percentile(toRunning, 99)
	return res
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
