package cloudmap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wharfhq/wharf/internal/api"
	sd "github.com/wharfhq/wharf/internal/api/servicediscovery"
	"github.com/wharfhq/wharf/internal/store"
)

// Operations are Cloud Map's asynchronous changes. A call that changes a
// namespace, a service's settings or an instance checks its input, then
// records an operation SUBMITTED together with the change to make, and
// returns the operation's id. The worker in Run moves it to PENDING, then
// makes the change and marks it SUCCESS in one transaction, or marks it
// FAIL when the change has become impossible (its namespace or service was
// deleted meanwhile). Changes become visible at SUCCESS, as in Cloud Map.
//
// An unfinished operation holds its targets (a namespace, service, instance
// or the namespace name it creates) through inflight keys: a second
// operation on a held target is refused with DuplicateRequest, which keeps
// the operations on one target in order without a single worker.

// submission describes an operation to start.
type submission struct {
	typ      sd.OperationType
	targets  map[string]string
	nsID     string
	change   *OperationChange
	inflight []string
	// request is the RequestKey hash of an idempotent request, with the
	// field and value that name it and the hash of its input.
	request, requestField, requestID, inputHash string
}

// submit starts an operation inside tx. An identical earlier request with
// the same request id gets the operation it started; a reused request id or
// a held target is refused with DuplicateRequest.
func (s *Service) submit(tx *store.Tx, c call, sub submission) (string, error) {
	if sub.request != "" {
		rr, err := getRecord[RequestRecord](tx, RequestKey(c.region, sub.request))
		if err != nil {
			return "", err
		}
		if rr != nil && c.now.Sub(rr.At) < s.retention {
			if rr.InputHash == sub.inputHash {
				return rr.OperationID, nil
			}
			return "", requestReused(sub.requestField, sub.requestID, rr.OperationID)
		}
	}
	for _, t := range sub.inflight {
		op, err := s.holder(tx, c.region, t)
		if err != nil {
			return "", err
		}
		if op != nil {
			return "", operationInProgress(op)
		}
	}
	op := OperationRecord{
		Operation: sd.Operation{
			Id:           newOperationID(),
			Type:         sub.typ,
			Status:       sd.OperationStatusSubmitted,
			CreateDate:   api.NewTime(c.now),
			UpdateDate:   api.NewTime(c.now),
			Targets:      sub.targets,
			OwnerAccount: s.account,
		},
		Region:      c.region,
		NamespaceID: sub.nsID,
		Change:      sub.change,
		Inflight:    sub.inflight,
	}
	for _, t := range sub.inflight {
		if err := tx.Put(InflightKey(c.region, t), InflightRecord{OperationID: op.Id}); err != nil {
			return "", err
		}
	}
	if sub.request != "" {
		if err := tx.Put(RequestKey(c.region, sub.request), RequestRecord{OperationID: op.Id, InputHash: sub.inputHash, At: c.now}); err != nil {
			return "", err
		}
	}
	if err := store.MarkRegion(tx, c.region); err != nil {
		return "", err
	}
	return op.Id, tx.Put(OperationKey(c.region, op.Id), &op)
}

// holder returns the unfinished operation holding target, or nil.
func (s *Service) holder(tx *store.Tx, region, target string) (*OperationRecord, error) {
	in, err := getRecord[InflightRecord](tx, InflightKey(region, target))
	if err != nil || in == nil {
		return nil, err
	}
	op, err := getRecord[OperationRecord](tx, OperationKey(region, in.OperationID))
	if err != nil || op == nil || finished(op.Status) {
		return nil, err
	}
	return op, nil
}

func finished(st sd.OperationStatus) bool {
	return st == sd.OperationStatusSuccess || st == sd.OperationStatusFail
}

// opFailure is why an operation FAILs.
type opFailure struct{ code, msg string }

func (f *opFailure) Error() string { return f.code + ": " + f.msg }

func failOp(code, format string, args ...any) error {
	return &opFailure{code: code, msg: fmt.Sprintf(format, args...)}
}

var errFailed = errors.New("operation failed")

// runOperations runs submitted operations as they appear, until ctx ends.
// Besides following the store, it looks for unfinished operations every few
// seconds, which also resumes those interrupted by a restart.
func (s *Service) runOperations(ctx context.Context) {
	tick := time.NewTicker(3 * time.Second)
	defer tick.Stop()
	events := s.st.Follow(ctx, Prefix)
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if ev.Restart {
				s.catchUp(ctx)
				continue
			}
			region, kind, id, ok := ParseKey(ev.Key)
			if !ok || kind != "operations" || ev.Value == nil {
				continue
			}
			var op struct {
				Status sd.OperationStatus `json:"Status"`
			}
			if json.Unmarshal(ev.Value, &op) == nil && !finished(op.Status) {
				s.advance(ctx, region, id)
			}
		case <-tick.C:
			s.catchUp(ctx)
		}
	}
}

// catchUp advances every unfinished operation: each holds an inflight key.
func (s *Service) catchUp(ctx context.Context) {
	regions, err := s.st.Regions(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("cloudmap: listing regions failed", "err", err)
		}
		return
	}
	for _, region := range regions {
		kvs, err := s.st.List(ctx, regionPrefix(region)+"inflight/")
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("cloudmap: listing operations in progress failed", "region", region, "err", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, kv := range kvs {
			var in InflightRecord
			if kv.Decode(&in) == nil && !seen[in.OperationID] {
				seen[in.OperationID] = true
				s.advance(ctx, region, in.OperationID)
			}
		}
	}
}

// advance moves an operation from SUBMITTED to PENDING and then applies
// it. Every step is a transaction on the operation's state, so servers
// running it at once do each step once.
func (s *Service) advance(ctx context.Context, region, id string) {
	key := OperationKey(region, id)
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		op, err := getRecord[OperationRecord](tx, key)
		if err != nil || op == nil || op.Status != sd.OperationStatusSubmitted {
			return err
		}
		op.Status, op.UpdateDate = sd.OperationStatusPending, api.NewTime(s.now())
		return tx.Put(key, op)
	})
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("cloudmap: starting an operation failed; retrying", "operation_id", id, "region", region, "err", err)
		}
		return
	}
	var failure *opFailure
	var done *OperationRecord
	err = s.st.Update(ctx, func(tx *store.Tx) error {
		failure, done = nil, nil
		op, err := getRecord[OperationRecord](tx, key)
		if err != nil || op == nil || op.Status != sd.OperationStatusPending {
			return err
		}
		if err := s.apply(tx, op); err != nil {
			if errors.As(err, &failure) {
				return errFailed
			}
			return err
		}
		done = op
		return s.finish(tx, op, nil)
	})
	if errors.Is(err, errFailed) {
		err = s.st.Update(ctx, func(tx *store.Tx) error {
			done = nil
			op, err := getRecord[OperationRecord](tx, key)
			if err != nil || op == nil || op.Status != sd.OperationStatusPending {
				return err
			}
			done = op
			return s.finish(tx, op, failure)
		})
	}
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("cloudmap: running an operation failed; retrying", "operation_id", id, "region", region, "err", err)
		}
		return
	}
	if done == nil {
		return
	}
	s.log.Debug("cloudmap operation done", "operation_id", id, "region", region, "type", done.Type, "status", done.Status, "message", done.ErrorMessage)
	if done.Type == sd.OperationTypeUpdateService && done.Status == sd.OperationStatusSuccess {
		if err := s.settleHealth(ctx, region, done.Targets["SERVICE"]); err != nil && ctx.Err() == nil {
			s.log.Warn("cloudmap: updating instance health after a service update failed; the health checker retries", "service_id", done.Targets["SERVICE"], "err", err)
		}
	}
}

// finish marks op SUCCESS, or FAIL with f, and releases its targets.
func (s *Service) finish(tx *store.Tx, op *OperationRecord, f *opFailure) error {
	op.Status, op.UpdateDate, op.Change = sd.OperationStatusSuccess, api.NewTime(s.now()), nil
	if f != nil {
		op.Status, op.ErrorCode, op.ErrorMessage = sd.OperationStatusFail, f.code, f.msg
	}
	for _, t := range op.Inflight {
		k := InflightKey(op.Region, t)
		in, err := getRecord[InflightRecord](tx, k)
		if err != nil {
			return err
		}
		if in != nil && in.OperationID == op.Id {
			tx.Delete(k)
		}
	}
	op.Inflight = nil
	return tx.Put(OperationKey(op.Region, op.Id), op)
}

// apply makes op's change inside tx. An *opFailure means the operation
// fails; other errors are retried.
func (s *Service) apply(tx *store.Tx, op *OperationRecord) error {
	region, ch := op.Region, op.Change
	if ch == nil {
		ch = &OperationChange{}
	}
	switch op.Type {
	case sd.OperationTypeCreateNamespace:
		return s.applyCreateNamespace(tx, region, ch.Namespace)
	case sd.OperationTypeUpdateNamespace:
		ns, err := getRecord[NamespaceRecord](tx, NamespaceKey(region, op.Targets["NAMESPACE"]))
		if err != nil {
			return err
		}
		if ns == nil {
			return failOp("HOSTED_ZONE_NOT_FOUND", "Namespace %s was deleted before it could be updated.", op.Targets["NAMESPACE"])
		}
		if ch.Description != nil {
			ns.Description = *ch.Description
		}
		if ch.SOATTL != nil && ns.Properties != nil && ns.Properties.DnsProperties != nil {
			ns.Properties.DnsProperties.SOA = &sd.SOA{TTL: *ch.SOATTL}
		}
		return tx.Put(NamespaceKey(region, ns.Id), ns)
	case sd.OperationTypeDeleteNamespace:
		id := op.Targets["NAMESPACE"]
		ns, err := getRecord[NamespaceRecord](tx, NamespaceKey(region, id))
		if err != nil {
			return err
		}
		if ns == nil {
			return failOp("HOSTED_ZONE_NOT_FOUND", "Namespace %s was already deleted.", id)
		}
		n, err := servicesIn(tx, region, id)
		if err != nil {
			return err
		}
		if n > 0 {
			return failOp("INVALID_CHANGE_BATCH", "Namespace %s has %d services; delete them first.", id, n)
		}
		tx.Delete(NamespaceKey(region, id))
		return nil
	case sd.OperationTypeUpdateService:
		return s.applyUpdateService(tx, region, op.Targets["SERVICE"], ch.Service)
	case sd.OperationTypeRegisterInstance:
		srvID := op.Targets["SERVICE"]
		svc, err := getRecord[ServiceRecord](tx, ServiceKey(region, srvID))
		if err != nil {
			return err
		}
		if svc == nil || ch.Instance == nil {
			return failOp("INVALID_CHANGE_BATCH", "Service %s was deleted before the instance could be registered.", srvID)
		}
		old, err := getRecord[InstanceRecord](tx, InstanceKey(region, srvID, ch.Instance.Id))
		if err != nil {
			return err
		}
		inst := *ch.Instance
		inst.Health = initialHealth(svc, old, inst.Attributes)
		inst.UpdatedAt = s.now().UTC()
		return PutInstance(tx, region, &inst)
	case sd.OperationTypeDeregisterInstance:
		srvID, id := op.Targets["SERVICE"], op.Targets["INSTANCE"]
		found, err := DeleteInstance(tx, region, srvID, id)
		if err != nil {
			return err
		}
		if !found {
			return failOp("INVALID_CHANGE_BATCH", "Instance %s of service %s was already deregistered.", id, srvID)
		}
		return nil
	}
	return failOp("INTERNAL_FAILURE", "Unknown operation type %q.", op.Type)
}

// GetOperation describes an operation.
func (s *Service) GetOperation(ctx context.Context, in *sd.GetOperationRequest) (*sd.GetOperationResponse, error) {
	c := s.call(ctx)
	if in.OwnerAccount != "" && in.OwnerAccount != s.account {
		return nil, operationNotFound(in.OperationId)
	}
	var op OperationRecord
	ok, err := s.st.Get(ctx, OperationKey(c.region, in.OperationId), &op)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, operationNotFound(in.OperationId)
	}
	out := op.Operation
	return &sd.GetOperationResponse{Operation: &out}, nil
}

// ListOperations lists operations matching the filters, all of which must
// hold.
func (s *Service) ListOperations(ctx context.Context, in *sd.ListOperationsRequest) (*sd.ListOperationsResponse, error) {
	c := s.call(ctx)
	match, err := operationFilter(in.Filters)
	if err != nil {
		return nil, err
	}
	scope := "ListOperations/" + c.region + "/" + hashOf(in.Filters)
	after, err := s.start(scope, in.NextToken)
	if err != nil {
		return nil, err
	}
	ops, last, more, err := store.Scan(ctx, s.st, regionPrefix(c.region)+"operations/", after, pageSize(in.MaxResults), func(kv store.KV) (sd.OperationSummary, bool, error) {
		var op OperationRecord
		if err := kv.Decode(&op); err != nil {
			return sd.OperationSummary{}, false, err
		}
		return sd.OperationSummary{Id: op.Id, Status: op.Status}, match(&op), nil
	})
	if err != nil {
		return nil, err
	}
	return &sd.ListOperationsResponse{Operations: ops, NextToken: s.tokens.Next(scope, last, more)}, nil
}

// operationFilter turns ListOperations filters into a predicate, checking
// each filter's condition and values as Cloud Map does.
func operationFilter(filters []sd.OperationFilter) (func(*OperationRecord) bool, error) {
	var preds []func(*OperationRecord) bool
	for _, f := range filters {
		cond := f.Condition
		if cond == "" {
			cond = sd.FilterConditionEq
		}
		allowed := []sd.FilterCondition{sd.FilterConditionEq}
		switch f.Name {
		case sd.OperationFilterNameStatus, sd.OperationFilterNameType:
			allowed = append(allowed, sd.FilterConditionIn)
		case sd.OperationFilterNameUpdateDate:
			allowed = []sd.FilterCondition{sd.FilterConditionBetween}
		}
		if !slices.Contains(allowed, cond) {
			return nil, invalidInput("Condition %s isn't supported for the %s filter; use %s.", cond, f.Name, joinConditions(allowed))
		}
		if err := checkValueCount(string(f.Name), cond, f.Values); err != nil {
			return nil, err
		}
		values := f.Values
		switch f.Name {
		case sd.OperationFilterNameNamespaceId:
			v := values[0]
			preds = append(preds, func(op *OperationRecord) bool { return op.NamespaceID == v || op.Targets["NAMESPACE"] == v })
		case sd.OperationFilterNameServiceId:
			v := values[0]
			preds = append(preds, func(op *OperationRecord) bool { return op.Targets["SERVICE"] == v })
		case sd.OperationFilterNameStatus:
			want := map[sd.OperationStatus]bool{}
			for _, v := range values {
				if v == "SUCCEED" { // the spelling of Cloud Map's documentation
					v = string(sd.OperationStatusSuccess)
				}
				if !slices.Contains(sd.OperationStatus("").Values(), v) {
					return nil, invalidInput("%q is not an operation status; use SUBMITTED, PENDING, SUCCESS or FAIL.", v)
				}
				want[sd.OperationStatus(v)] = true
			}
			preds = append(preds, func(op *OperationRecord) bool { return want[op.Status] })
		case sd.OperationFilterNameType:
			want := map[sd.OperationType]bool{}
			for _, v := range values {
				if !slices.Contains(sd.OperationType("").Values(), v) {
					return nil, invalidInput("%q is not an operation type; use one of %s.", v, strings.Join(sd.OperationType("").Values(), ", "))
				}
				want[sd.OperationType(v)] = true
			}
			preds = append(preds, func(op *OperationRecord) bool { return want[op.Type] })
		case sd.OperationFilterNameUpdateDate:
			from, err1 := parseEpoch(values[0])
			to, err2 := parseEpoch(values[1])
			if err1 != nil || err2 != nil {
				return nil, invalidInput("UPDATE_DATE takes two dates in Unix time (seconds), start first.")
			}
			if to.Before(from) {
				return nil, invalidInput("The UPDATE_DATE start %s is after its end %s.", values[0], values[1])
			}
			preds = append(preds, func(op *OperationRecord) bool {
				return op.UpdateDate != nil && !op.UpdateDate.Before(from) && !op.UpdateDate.After(to)
			})
		default:
			return nil, invalidInput("Filter %q isn't supported.", f.Name)
		}
	}
	return func(op *OperationRecord) bool {
		for _, p := range preds {
			if !p(op) {
				return false
			}
		}
		return true
	}, nil
}

// checkValueCount checks a filter's number of values against its
// condition: one for EQ and BEGINS_WITH, at least one for IN, two for
// BETWEEN.
func checkValueCount(name string, cond sd.FilterCondition, values []string) error {
	switch cond {
	case sd.FilterConditionEq, sd.FilterConditionBeginsWith:
		if len(values) != 1 {
			return invalidInput("The %s filter with condition %s takes exactly one value; %d were given.", name, cond, len(values))
		}
	case sd.FilterConditionIn:
		if len(values) == 0 {
			return invalidInput("The %s filter with condition IN takes at least one value.", name)
		}
	case sd.FilterConditionBetween:
		if len(values) != 2 {
			return invalidInput("The %s filter with condition BETWEEN takes two values, start and end; %d were given.", name, len(values))
		}
	}
	return nil
}

func joinConditions(cs []sd.FilterCondition) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = string(c)
	}
	return strings.Join(s, " or ")
}

// parseEpoch reads Unix time in seconds, with or without a fraction, or
// RFC 3339.
func parseEpoch(v string) (time.Time, error) {
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), nil
	}
	return time.Parse(time.RFC3339Nano, v)
}

// runSweeper removes finished operations and remembered request ids older
// than the retention, and inflight keys whose operation has ended, until
// ctx ends.
func (s *Service) runSweeper(ctx context.Context) {
	every := min(s.retention/4, 10*time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("cloudmap: sweep failed; retrying at the next interval", "err", err)
		}
	}
}

func (s *Service) sweep(ctx context.Context) error {
	regions, err := s.st.Regions(ctx)
	if err != nil {
		return err
	}
	now := s.now()
	for _, region := range regions {
		steps := map[string]func(tx *store.Tx, kv store.KV) (bool, error){
			"operations/": func(tx *store.Tx, kv store.KV) (bool, error) {
				var op OperationRecord
				err := kv.Decode(&op)
				return err == nil && finished(op.Status) && op.UpdateDate != nil && now.Sub(op.UpdateDate.Time) > s.retention, err
			},
			"requests/": func(tx *store.Tx, kv store.KV) (bool, error) {
				var r RequestRecord
				err := kv.Decode(&r)
				return err == nil && now.Sub(r.At) > s.retention, err
			},
			"inflight/": func(tx *store.Tx, kv store.KV) (bool, error) {
				var in InflightRecord
				if err := kv.Decode(&in); err != nil {
					return false, err
				}
				op, err := getRecord[OperationRecord](tx, OperationKey(region, in.OperationID))
				return err == nil && (op == nil || finished(op.Status)), err
			},
		}
		for _, prefix := range slices.Sorted(maps.Keys(steps)) {
			if err := s.st.Sweep(ctx, regionPrefix(region)+prefix, steps[prefix]); err != nil {
				return err
			}
		}
	}
	return nil
}
