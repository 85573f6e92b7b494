package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/servicediscovery"
	"github.com/aws/aws-sdk-go-v2/service/servicediscovery/types"

	"github.com/wharfhq/wharf/bench/internal/apibench"
)

const (
	namespace  = "bench.discover"
	service    = "app"
	maxResults = 100
	// setupTimeout bounds registering the instances and waiting for their
	// operations, per system.
	setupTimeout = 5 * time.Minute
)

// system is one server under test.
type system struct {
	name string
	sd   *servicediscovery.Client
}

// attributes are instance i's attributes: stage alternates prod and test,
// version counts 1 to 5.
func attributes(i int) map[string]string {
	stage := "prod"
	if i%2 == 1 {
		stage = "test"
	}
	return map[string]string{
		"AWS_INSTANCE_IPV4": fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff),
		"AWS_INSTANCE_PORT": strconv.Itoa(8000 + i%1000),
		"stage":             stage,
		"version":           strconv.Itoa(i%5 + 1),
	}
}

func instanceID(i int) string { return fmt.Sprintf("inst-%06d", i) }

// setup creates the HTTP namespace and the service, registers n instances
// from workers goroutines, waits until every RegisterInstance operation has
// succeeded and checks that the service lists n instances.
func (s *system) setup(ctx context.Context, n, workers int) error {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	ns, err := s.sd.CreateHttpNamespace(ctx, &servicediscovery.CreateHttpNamespaceInput{Name: aws.String(namespace)})
	if err != nil {
		return fmt.Errorf("create namespace: %w", err)
	}
	op, err := s.waitOperation(ctx, aws.ToString(ns.OperationId))
	if err != nil {
		return fmt.Errorf("create namespace: %w", err)
	}
	svc, err := s.sd.CreateService(ctx, &servicediscovery.CreateServiceInput{
		Name: aws.String(service), NamespaceId: aws.String(op.Targets["NAMESPACE"]),
	})
	if err != nil {
		return fmt.Errorf("create service: %w", err)
	}
	serviceID := aws.ToString(svc.Service.Id)

	start := time.Now()
	ops := make([]string, n)
	err = forEach(ctx, n, workers, func(i int) error {
		out, err := s.sd.RegisterInstance(ctx, &servicediscovery.RegisterInstanceInput{
			ServiceId: aws.String(serviceID), InstanceId: aws.String(instanceID(i)), Attributes: attributes(i),
		})
		if err != nil {
			return fmt.Errorf("register %s: %w", instanceID(i), err)
		}
		ops[i] = aws.ToString(out.OperationId)
		return nil
	})
	if err != nil {
		return err
	}
	submitted := time.Since(start)
	err = forEach(ctx, n, workers, func(i int) error {
		_, err := s.waitOperation(ctx, ops[i])
		if err != nil {
			return fmt.Errorf("register %s: %w", instanceID(i), err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	logf("%s: %d RegisterInstance calls in %v, all SUCCESS after %v", s.name, n, submitted.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	listed := 0
	p := servicediscovery.NewListInstancesPaginator(s.sd, &servicediscovery.ListInstancesInput{
		ServiceId: aws.String(serviceID), MaxResults: aws.Int32(maxResults),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list instances: %w", err)
		}
		listed += len(page.Instances)
	}
	if listed != n {
		return fmt.Errorf("service lists %d instances, want %d", listed, n)
	}
	return nil
}

// waitOperation polls an operation until it has finished, and returns it
// if it succeeded.
func (s *system) waitOperation(ctx context.Context, id string) (*types.Operation, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		out, err := s.sd.GetOperation(ctx, &servicediscovery.GetOperationInput{OperationId: aws.String(id)})
		if err != nil {
			return nil, fmt.Errorf("get operation %s: %w", id, err)
		}
		switch op := out.Operation; op.Status {
		case types.OperationStatusSuccess:
			return op, nil
		case types.OperationStatusFail:
			return nil, fmt.Errorf("operation %s failed: %s: %s", id, aws.ToString(op.ErrorCode), aws.ToString(op.ErrorMessage))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for operation %s to succeed: %w", id, ctx.Err())
		case <-tick.C:
		}
	}
}

// forEach calls fn for 0..n-1 from workers goroutines and returns the first
// error; after an error no further calls start.
func forEach(ctx context.Context, n, workers int, fn func(i int) error) error {
	var (
		mu       sync.Mutex
		next     int
		firstErr error
		wg       sync.WaitGroup
	)
	claim := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if next >= n || firstErr != nil || ctx.Err() != nil {
			return 0, false
		}
		next++
		return next - 1, true
	}
	for range workers {
		wg.Go(func() {
			for {
				i, ok := claim()
				if !ok {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// query is one DiscoverInstances request and what a correct answer holds.
type query struct {
	name     string
	params   map[string]string            // QueryParameters
	optional map[string]string            // OptionalParameters
	want     int                          // instances in the answer
	match    func(map[string]string) bool // every returned instance's attributes satisfy it
}

// queries are the DiscoverInstances requests measured, with the answers
// expected for n instances. Each asks for at most maxResults instances:
// Cloud Map's default, which moto does not apply (it returns every match).
func queries(n int) []query {
	prod, prodV3 := 0, 0
	for i := range n {
		if a := attributes(i); a["stage"] == "prod" {
			prod++
			if a["version"] == "3" {
				prodV3++
			}
		}
	}
	isProd := func(a map[string]string) bool { return a["stage"] == "prod" }
	preferred := func(a map[string]string) bool { return isProd(a) && (prodV3 == 0 || a["version"] == "3") }
	if prodV3 == 0 {
		prodV3 = prod // no instance has the optional parameters: all query matches come back
	}
	return []query{
		{name: "DiscoverInstances all", want: min(n, maxResults), match: func(map[string]string) bool { return true }},
		{name: "DiscoverInstances stage=prod", params: map[string]string{"stage": "prod"}, want: min(prod, maxResults), match: isProd},
		{
			name:   "DiscoverInstances stage=prod +version=3",
			params: map[string]string{"stage": "prod"}, optional: map[string]string{"version": "3"},
			want: min(prodV3, maxResults), match: preferred,
		},
	}
}

// discover returns an iteration that makes q's request and checks the
// answer.
func (s *system) discover(q query) apibench.Iteration {
	return func(ctx context.Context, _ int, rec apibench.Recorder) {
		in := &servicediscovery.DiscoverInstancesInput{
			NamespaceName: aws.String(namespace), ServiceName: aws.String(service),
			MaxResults: aws.Int32(maxResults), QueryParameters: q.params, OptionalParameters: q.optional,
		}
		start := time.Now()
		out, err := s.sd.DiscoverInstances(ctx, in)
		d := time.Since(start)
		if err == nil {
			err = q.check(out)
		}
		rec(q.name, d, err)
	}
}

func (q query) check(out *servicediscovery.DiscoverInstancesOutput) error {
	if len(out.Instances) != q.want {
		return fmt.Errorf("%d instances, want %d", len(out.Instances), q.want)
	}
	for _, inst := range out.Instances {
		if !q.match(inst.Attributes) {
			return fmt.Errorf("instance %s does not match: %v", aws.ToString(inst.InstanceId), inst.Attributes)
		}
	}
	return nil
}

const revisionOp = "DiscoverInstancesRevision"

// revision is an iteration that asks for the service's revision.
func (s *system) revision(ctx context.Context, _ int, rec apibench.Recorder) {
	start := time.Now()
	out, err := s.sd.DiscoverInstancesRevision(ctx, &servicediscovery.DiscoverInstancesRevisionInput{
		NamespaceName: aws.String(namespace), ServiceName: aws.String(service),
	})
	d := time.Since(start)
	if err == nil && aws.ToInt64(out.InstancesRevision) <= 0 {
		err = errors.New("revision 0 with instances registered")
	}
	rec(revisionOp, d, err)
}
