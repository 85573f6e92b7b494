package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// ServiceResult is what scaling one service from 0 to Desired tasks took.
// Times are seconds after UpdateService was sent.
type ServiceResult struct {
	Desired int `json:"desired"`
	// UpdateCallS is how long UpdateService itself took.
	UpdateCallS float64 `json:"update_call_s"`
	// Placed and Running count the service's tasks at the end, from their
	// own records: placed tasks were created (PENDING or later), running
	// ones have reported RUNNING.
	Placed  int `json:"placed"`
	Running int `json:"running"`
	// FirstPlacedS and LastPlacedS are the first and the last task's
	// createdAt; FirstRunningS and LastRunningS their startedAt.
	FirstPlacedS  float64 `json:"first_placed_s"`
	LastPlacedS   float64 `json:"last_placed_s"`
	FirstRunningS float64 `json:"first_running_s"`
	LastRunningS  float64 `json:"last_running_s"`
	// MeanPlacedPerS is Placed over the time from the update to the last
	// placement; PeakPlacedPerS the best one-second bucket; Peak10sPerS
	// the best ten-second window.
	MeanPlacedPerS float64 `json:"mean_placed_per_s"`
	PeakPlacedPerS float64 `json:"peak_placed_per_s"`
	Peak10sPerS    float64 `json:"peak_10s_placed_per_s"`
	// SteadyS is the createdAt of the service's "has reached a steady
	// state" event after the update; -1 when none came in time.
	SteadyS      float64 `json:"steady_s"`
	RolloutState string  `json:"rollout_state"`
	Completed    bool    `json:"completed"`
	// TasksPerAZ and AZSpread (max - min) give the zone balance;
	// InstanceMin and InstanceMax the tasks per instance.
	TasksPerAZ  map[string]int `json:"tasks_per_az"`
	AZSpread    int            `json:"az_spread"`
	InstanceMin int            `json:"instance_min"`
	InstanceMax int            `json:"instance_max"`
	// CPUSeconds is the process's CPU time (server, etcd, agents and this
	// client) from the update to the end of the phase.
	CPUSeconds     float64 `json:"cpu_s"`
	CPUsPer1000    float64 `json:"cpu_s_per_1000_placed"`
	PhaseS         float64 `json:"phase_s"`
	TimedOut       bool    `json:"timed_out"`
	Note           string  `json:"note,omitempty"`
	Curve          []Point `json:"curve"`   // from the tasks' timestamps, per second
	Samples        []Point `json:"samples"` // DescribeServices as the phase ran
	CollectErrorS  string  `json:"collect_error,omitempty"`
	SampleFailures int     `json:"sample_failures"`
	// WatchStall, taken when the phase ended, tells whether the server's
	// in-process etcd watch stream was deadlocked.
	WatchStall WatchStall `json:"watch_stall"`
	// SampleP50ms and SampleMaxMs are DescribeServices' latency as the
	// phase ran.
	SampleP50ms float64 `json:"describe_services_p50_ms"`
	SampleMaxMs float64 `json:"describe_services_max_ms"`
}

// Point is the service's task counts at T seconds after the update.
type Point struct {
	T       float64 `json:"t_s"`
	Placed  int     `json:"placed"` // pending + running
	Running int     `json:"running"`
	Rollout string  `json:"rollout,omitempty"`
}

// scaleService creates service with desired count 0 on cluster, waits for
// it to settle, then sets desired count to n in one UpdateService and
// follows it until it is steady with n tasks running or ctx ends.
func scaleService(ctx context.Context, c *ecs.Client, cluster, service, taskDef string, n int, sample, collect time.Duration, prof, late *phaseProfile, progress func(string)) (*ServiceResult, error) {
	res := &ServiceResult{Desired: n, SteadyS: -1, TasksPerAZ: map[string]int{}}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, err := c.CreateService(cctx, &ecs.CreateServiceInput{
		Cluster: aws.String(cluster), ServiceName: aws.String(service),
		TaskDefinition: aws.String(taskDef), DesiredCount: aws.Int32(0),
	})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("create service: %w", err)
	}
	// Let the empty service reach its own steady state first, so that the
	// event we wait for is the one after the update.
	settle, cancel := context.WithTimeout(ctx, 20*time.Second)
	for settle.Err() == nil {
		if s, err := describe(settle, c, cluster, service); err == nil && steadySince(s, time.Time{}) != nil {
			break
		}
		sleepCtx(settle, 200*time.Millisecond)
	}
	cancel()

	cpu0 := cpuTime()
	prof.start()
	t0 := time.Now()
	cctx, cancel = context.WithTimeout(ctx, 30*time.Second)
	_, err = c.UpdateService(cctx, &ecs.UpdateServiceInput{Cluster: aws.String(cluster), Service: aws.String(service), DesiredCount: aws.Int32(int32(n))})
	cancel()
	res.UpdateCallS = time.Since(t0).Seconds()
	if err != nil {
		prof.stop()
		return nil, fmt.Errorf("update service: %w", err)
	}

	// Follow the service once per sample interval; the loop ends with the
	// steady state or the phase's deadline, and makes at most one call
	// per interval.
	tick := time.NewTicker(sample)
	defer tick.Stop()
	lastLog := time.Now()
	var sampleMs []float64
	for done := false; !done; {
		select {
		case <-ctx.Done():
			res.TimedOut = true
			done = true
			continue
		case <-tick.C:
		}
		prof.maybeStop()
		if deadline, ok := ctx.Deadline(); ok && late != nil && !prof.active() && time.Until(deadline) <= late.window {
			late.start() // what the server does near the end of a phase that did not finish
		}
		sctx, cancel := context.WithTimeout(ctx, max(sample, 5*time.Second))
		ts := time.Now()
		s, err := describe(sctx, c, cluster, service)
		cancel()
		sampleMs = append(sampleMs, float64(time.Since(ts).Microseconds())/1000)
		if err != nil {
			res.SampleFailures++
			continue
		}
		p := Point{T: time.Since(t0).Seconds(), Placed: int(s.PendingCount + s.RunningCount), Running: int(s.RunningCount)}
		if len(s.Deployments) > 0 {
			p.Rollout = string(s.Deployments[0].RolloutState)
			res.RolloutState = p.Rollout
		}
		res.Samples = append(res.Samples, p)
		if time.Since(lastLog) >= 10*time.Second {
			progress(fmt.Sprintf("service: %4.0fs  placed %5d  running %5d  rollout %s", p.T, p.Placed, p.Running, p.Rollout))
			lastLog = time.Now()
		}
		if ev := steadySince(s, t0); ev != nil && int(s.RunningCount) == n && p.Rollout == string(types.DeploymentRolloutStateCompleted) {
			res.SteadyS = aws.ToTime(ev.CreatedAt).Sub(t0).Seconds()
			res.Completed = true
			done = true
		}
	}
	res.PhaseS = time.Since(t0).Seconds()
	res.WatchStall = watchStall()
	res.CPUSeconds = (cpuTime() - cpu0).Seconds()
	prof.stop()
	late.stop()
	slices.Sort(sampleMs)
	res.SampleP50ms, res.SampleMaxMs = percentile(sampleMs, 50), percentile(sampleMs, 100)

	// Read every task of the service for exact times and where it landed.
	collectCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), collect)
	defer cancel()
	tasks, instances, err := serviceTasks(collectCtx, c, cluster, service)
	if err != nil {
		res.CollectErrorS = err.Error()
		res.Note = "the final task listing failed; placed and running counts are from the last DescribeServices sample"
		if k := len(res.Samples); k > 0 {
			res.Placed, res.Running = res.Samples[k-1].Placed, res.Samples[k-1].Running
		}
	}
	res.fromTasks(tasks, instances, t0)
	if res.Placed > 0 {
		res.CPUsPer1000 = res.CPUSeconds / float64(res.Placed) * 1000
	}
	return res, nil
}

// fromTasks fills the counts, times, curve and balance from the tasks.
func (res *ServiceResult) fromTasks(tasks []types.Task, instances []string, t0 time.Time) {
	if len(tasks) == 0 {
		return
	}
	var placed, running []float64
	perInstance := map[string]int{}
	for _, a := range instances {
		perInstance[a] = 0
	}
	for _, t := range tasks {
		if t.CreatedAt != nil {
			placed = append(placed, t.CreatedAt.Sub(t0).Seconds())
		}
		if t.StartedAt != nil {
			running = append(running, t.StartedAt.Sub(t0).Seconds())
		}
		res.TasksPerAZ[aws.ToString(t.AvailabilityZone)]++
		perInstance[aws.ToString(t.ContainerInstanceArn)]++
	}
	slices.Sort(placed)
	slices.Sort(running)
	res.Placed, res.Running = len(placed), len(running)
	if len(placed) > 0 {
		res.FirstPlacedS, res.LastPlacedS = placed[0], placed[len(placed)-1]
		res.MeanPlacedPerS = float64(len(placed)) / math.Max(res.LastPlacedS, 1e-3)
	}
	if len(running) > 0 {
		res.FirstRunningS, res.LastRunningS = running[0], running[len(running)-1]
	}
	lo, hi := math.MaxInt, 0
	for _, k := range res.TasksPerAZ {
		lo, hi = min(lo, k), max(hi, k)
	}
	res.AZSpread = hi - lo
	res.InstanceMin, res.InstanceMax = math.MaxInt, 0
	for _, k := range perInstance {
		res.InstanceMin, res.InstanceMax = min(res.InstanceMin, k), max(res.InstanceMax, k)
	}

	// Per-second buckets of placements, and the cumulative curves.
	end := int(math.Ceil(math.Max(res.LastPlacedS, res.LastRunningS))) + 1
	perSec := make([]int, end)
	for _, t := range placed {
		perSec[min(max(int(t), 0), end-1)]++
	}
	window := min(10, len(perSec))
	for s, k := range perSec {
		res.PeakPlacedPerS = math.Max(res.PeakPlacedPerS, float64(k))
		if s+window <= len(perSec) {
			sum := 0
			for _, x := range perSec[s : s+window] {
				sum += x
			}
			res.Peak10sPerS = math.Max(res.Peak10sPerS, float64(sum)/float64(window))
		}
	}
	for s := 1; s <= end; s++ {
		at := float64(s)
		res.Curve = append(res.Curve, Point{T: at, Placed: countBelow(placed, at), Running: countBelow(running, at)})
	}
}

// countBelow counts the sorted values below x.
func countBelow(sorted []float64, x float64) int {
	i, _ := slices.BinarySearch(sorted, x)
	return i
}

func describe(ctx context.Context, c *ecs.Client, cluster, service string) (*types.Service, error) {
	out, err := c.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{service}})
	if err != nil {
		return nil, err
	}
	if len(out.Services) != 1 {
		return nil, fmt.Errorf("service %s not found", service)
	}
	return &out.Services[0], nil
}

// steadySince returns the service's newest steady-state event created
// after t, if any.
func steadySince(s *types.Service, t time.Time) *types.ServiceEvent {
	for i := range s.Events {
		ev := &s.Events[i]
		if strings.Contains(aws.ToString(ev.Message), "has reached a steady state") && !aws.ToTime(ev.CreatedAt).Before(t) {
			return ev
		}
	}
	return nil
}

// serviceTasks describes every task of a service, and lists the cluster's
// instances.
func serviceTasks(ctx context.Context, c *ecs.Client, cluster, service string) ([]types.Task, []string, error) {
	var tasks []types.Task
	p := ecs.NewListTasksPaginator(c, &ecs.ListTasksInput{Cluster: aws.String(cluster), ServiceName: aws.String(service), MaxResults: aws.Int32(100)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return tasks, nil, fmt.Errorf("list tasks: %w", err)
		}
		if len(page.TaskArns) == 0 {
			continue
		}
		out, err := c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: page.TaskArns})
		if err != nil {
			return tasks, nil, fmt.Errorf("describe tasks: %w", err)
		}
		tasks = append(tasks, out.Tasks...)
	}
	var instances []string
	ip := ecs.NewListContainerInstancesPaginator(c, &ecs.ListContainerInstancesInput{Cluster: aws.String(cluster), MaxResults: aws.Int32(100)})
	for ip.HasMorePages() {
		page, err := ip.NextPage(ctx)
		if err != nil {
			return tasks, nil, fmt.Errorf("list container instances: %w", err)
		}
		instances = append(instances, page.ContainerInstanceArns...)
	}
	return tasks, instances, nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
