package ecs

import (
	"context"
	"strings"

	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/ecs/state"
	"github.com/wharfhq/wharf/internal/store"
)

const maxTags = 50

// checkTags applies ECS's tag rules beyond the model's length limits.
func checkTags(tags []ecsapi.Tag) error {
	seen := map[string]bool{}
	for _, t := range tags {
		if t.Key == "" {
			return invalidParameter("Tag keys must not be empty.")
		}
		if strings.HasPrefix(strings.ToLower(t.Key), "aws:") {
			return invalidParameter("Tag key %q uses the reserved prefix aws:.", t.Key)
		}
		if seen[t.Key] {
			return invalidParameter("Tag key %q appears more than once.", t.Key)
		}
		seen[t.Key] = true
	}
	if len(tags) > maxTags {
		return invalidParameter("A resource can have at most %d tags; %d were given.", maxTags, len(tags))
	}
	return nil
}

func removeTags(have []state.Tag, keys []string) []state.Tag {
	var out []state.Tag
	for _, t := range have {
		if !contains(keys, t.Key) {
			out = append(out, t)
		}
	}
	return out
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// tagged is a stored resource that carries tags.
type tagged struct {
	get  func() []state.Tag
	set  func([]state.Tag)
	save func(tx *store.Tx) error
}

// taggedResource finds the record a resource ARN names, inside tx.
func (s *Service) taggedResource(tx *store.Tx, c call, arn string) (*tagged, error) {
	res, ok := s.ResourceOf(c, arn)
	if !ok {
		return nil, invalidParameter("The ARN %q is not an ECS resource ARN of account %s in region %s.", arn, s.Account, c.Region)
	}
	kind, rest, _ := strings.Cut(res, "/")
	switch kind {
	case "cluster":
		var r clusterRecord
		k := c.Keys().Cluster(rest)
		ok, err := tx.Get(k, &r)
		if err != nil || !ok {
			return nil, orNotFound(err, "The specified cluster could not be found.")
		}
		if r.Status != "ACTIVE" {
			return nil, invalidParameter("The specified cluster is inactive. Specify an active cluster and try again.")
		}
		return &tagged{get: func() []state.Tag { return r.Tags }, set: func(t []state.Tag) { r.Tags = t }, save: func(tx *store.Tx) error { return tx.Put(k, &r) }}, nil
	case "service":
		var r serviceRecord
		k := c.Keys().Service(split(rest))
		if ok, err := tx.Get(k, &r); err != nil || !ok || r.Status == "INACTIVE" {
			return nil, orNotFound(err, "The specified service could not be found.")
		}
		return &tagged{get: func() []state.Tag { return r.Tags }, set: func(t []state.Tag) { r.Tags = t }, save: func(tx *store.Tx) error { return tx.Put(k, &r) }}, nil
	case "task":
		var r taskRecord
		k := c.Keys().Task(split(rest))
		if ok, err := tx.Get(k, &r); err != nil || !ok {
			return nil, orNotFound(err, "The specified task could not be found.")
		}
		return &tagged{get: func() []state.Tag { return r.Tags }, set: func(t []state.Tag) { r.Tags = t }, save: func(tx *store.Tx) error { return tx.Put(k, &r) }}, nil
	case "container-instance":
		var r instanceRecord
		k := c.Keys().Instance(split(rest))
		if ok, err := tx.Get(k, &r); err != nil || !ok || r.Status == "INACTIVE" {
			return nil, orNotFound(err, "The specified container instance could not be found.")
		}
		return &tagged{get: func() []state.Tag { return r.Tags }, set: func(t []state.Tag) { r.Tags = t }, save: func(tx *store.Tx) error { return tx.Put(k, &r) }}, nil
	case "task-definition":
		family, rev, ok := strings.Cut(rest, ":")
		if !ok {
			return nil, invalidParameter("A task definition ARN must end in family:revision.")
		}
		var r taskDefRecord
		k := c.Keys().TaskDefRevision(family, rev)
		if ok, err := tx.Get(k, &r); err != nil || !ok {
			return nil, orNotFound(err, "The specified task definition could not be found.")
		}
		return &tagged{get: func() []state.Tag { return r.Tags }, set: func(t []state.Tag) { r.Tags = t }, save: func(tx *store.Tx) error { return tx.Put(k, &r) }}, nil
	}
	return nil, invalidParameter("Resources of type %q cannot be tagged.", kind)
}

func orNotFound(err error, msg string) error {
	if err != nil {
		return err
	}
	return notFound(msg)
}

// TagResource adds tags to a resource.
func (s *Service) TagResource(ctx context.Context, in *ecsapi.TagResourceRequest) (*ecsapi.TagResourceResponse, error) {
	c := s.call(ctx)
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	err := s.Store.Update(ctx, func(tx *store.Tx) error {
		r, err := s.taggedResource(tx, c, in.ResourceArn)
		if err != nil {
			return err
		}
		tags := state.MergeTags(r.get(), in.Tags)
		if len(tags) > maxTags {
			return invalidParameter("A resource can have at most %d tags; this would make %d.", maxTags, len(tags))
		}
		r.set(tags)
		return r.save(tx)
	})
	if err != nil {
		return nil, err
	}
	return &ecsapi.TagResourceResponse{}, nil
}

// UntagResource removes tags from a resource.
func (s *Service) UntagResource(ctx context.Context, in *ecsapi.UntagResourceRequest) (*ecsapi.UntagResourceResponse, error) {
	c := s.call(ctx)
	err := s.Store.Update(ctx, func(tx *store.Tx) error {
		r, err := s.taggedResource(tx, c, in.ResourceArn)
		if err != nil {
			return err
		}
		r.set(removeTags(r.get(), in.TagKeys))
		return r.save(tx)
	})
	if err != nil {
		return nil, err
	}
	return &ecsapi.UntagResourceResponse{}, nil
}

// ListTagsForResource returns a resource's tags.
func (s *Service) ListTagsForResource(ctx context.Context, in *ecsapi.ListTagsForResourceRequest) (*ecsapi.ListTagsForResourceResponse, error) {
	c := s.call(ctx)
	var tags []ecsapi.Tag
	err := s.Store.Update(ctx, func(tx *store.Tx) error {
		r, err := s.taggedResource(tx, c, in.ResourceArn)
		if err != nil {
			return err
		}
		tags = state.WireTags(r.get())
		return nil
	})
	if err != nil {
		return nil, err
	}
	if tags == nil {
		tags = []ecsapi.Tag{}
	}
	return &ecsapi.ListTagsForResourceResponse{Tags: tags}, nil
}
