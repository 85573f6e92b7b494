package cloudmap

import (
	"context"
	"slices"
	"strings"

	sd "github.com/wharfhq/wharf/internal/api/servicediscovery"
	"github.com/wharfhq/wharf/internal/store"
)

// Namespaces and services carry tags, at most 50 each.

// tagged is a stored resource that carries tags.
type tagged struct {
	tags *[]sd.Tag
	save func(tx *store.Tx) error
}

// taggedResource finds the namespace or service an ARN names, inside tx.
func (s *Service) taggedResource(tx *store.Tx, c call, arn string) (*tagged, error) {
	kind, id, ok := s.parseARN(c, arn)
	if !ok {
		if strings.HasPrefix(arn, "arn:") {
			return nil, resourceNotFound(arn)
		}
		return nil, invalidInput("%q is not a Cloud Map namespace or service ARN.", arn)
	}
	switch kind {
	case "namespace":
		r, err := getRecord[NamespaceRecord](tx, NamespaceKey(c.region, id))
		if err != nil {
			return nil, err
		}
		if r == nil {
			return nil, resourceNotFound(arn)
		}
		return &tagged{tags: &r.Tags, save: func(tx *store.Tx) error { return tx.Put(NamespaceKey(c.region, id), r) }}, nil
	case "service":
		r, err := getRecord[ServiceRecord](tx, ServiceKey(c.region, id))
		if err != nil {
			return nil, err
		}
		if r == nil {
			return nil, resourceNotFound(arn)
		}
		return &tagged{tags: &r.Tags, save: func(tx *store.Tx) error { return tx.Put(ServiceKey(c.region, id), r) }}, nil
	}
	return nil, invalidInput("Resources of type %q can't be tagged; tag namespaces and services.", kind)
}

// TagResource adds or replaces tags.
func (s *Service) TagResource(ctx context.Context, in *sd.TagResourceRequest) (*sd.TagResourceResponse, error) {
	c := s.call(ctx)
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		r, err := s.taggedResource(tx, c, in.ResourceARN)
		if err != nil {
			return err
		}
		tags := slices.Clone(*r.tags)
		for _, t := range in.Tags {
			if i := slices.IndexFunc(tags, func(have sd.Tag) bool { return have.Key == t.Key }); i >= 0 {
				tags[i].Value = t.Value
			} else {
				tags = append(tags, t)
			}
		}
		if len(tags) > maxTags {
			return tooManyTags(in.ResourceARN, len(tags))
		}
		*r.tags = tags
		return r.save(tx)
	})
	if err != nil {
		return nil, err
	}
	return &sd.TagResourceResponse{}, nil
}

// UntagResource removes tags; keys the resource does not have are ignored.
func (s *Service) UntagResource(ctx context.Context, in *sd.UntagResourceRequest) (*sd.UntagResourceResponse, error) {
	c := s.call(ctx)
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		r, err := s.taggedResource(tx, c, in.ResourceARN)
		if err != nil {
			return err
		}
		*r.tags = slices.DeleteFunc(slices.Clone(*r.tags), func(t sd.Tag) bool { return slices.Contains(in.TagKeys, t.Key) })
		return r.save(tx)
	})
	if err != nil {
		return nil, err
	}
	return &sd.UntagResourceResponse{}, nil
}

// ListTagsForResource returns a resource's tags.
func (s *Service) ListTagsForResource(ctx context.Context, in *sd.ListTagsForResourceRequest) (*sd.ListTagsForResourceResponse, error) {
	c := s.call(ctx)
	var tags []sd.Tag
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		r, err := s.taggedResource(tx, c, in.ResourceARN)
		if err != nil {
			return err
		}
		tags = *r.tags
		return nil
	})
	if err != nil {
		return nil, err
	}
	if tags == nil {
		tags = []sd.Tag{}
	}
	return &sd.ListTagsForResourceResponse{Tags: tags}, nil
}
