package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"

	"github.com/wharfhq/wharf/internal/runtime"
)

// EnsureImage makes ref available locally according to policy and returns
// the repo digest the engine recorded for ref's repository, or the image id
// when there is none (locally built or loaded images).
//
// PullOnce and PullPreferCached behave alike here: both use a local copy
// when there is one. (The ECS agent tells them apart by remembering which
// images it pulled; that memory belongs to the agent.)
func (d *Docker) EnsureImage(ctx context.Context, ref string, policy runtime.PullPolicy) (string, error) {
	switch policy {
	case runtime.PullOnce, runtime.PullPreferCached:
		id, err := d.localImage(ctx, ref)
		if !errors.Is(err, runtime.ErrNotFound) {
			return id, err
		}
		if err := d.pull(ctx, ref); err != nil {
			return "", err
		}
	case runtime.PullAlways:
		if err := d.pull(ctx, ref); err != nil {
			return "", err
		}
	case runtime.PullDefault, "":
		if err := d.pull(ctx, ref); err != nil {
			if ctx.Err() != nil {
				return "", err
			}
			id, lerr := d.localImage(ctx, ref)
			if lerr != nil {
				return "", err
			}
			d.log.Warn("pull failed; using the local copy", "image", ref, "image_id", id, "error", err)
			return id, nil
		}
	default:
		return "", fmt.Errorf("image %q: unknown pull policy %q; use one of %q, %q, %q, %q",
			ref, policy, runtime.PullDefault, runtime.PullAlways, runtime.PullOnce, runtime.PullPreferCached)
	}
	return d.localImage(ctx, ref)
}

// ImageExists reports whether ref is present locally.
func (d *Docker) ImageExists(ctx context.Context, ref string) (bool, error) {
	_, err := d.cli.ImageInspect(ctx, ref)
	switch {
	case err == nil:
		return true, nil
	case cerrdefs.IsNotFound(err):
		return false, nil
	default:
		return false, fmt.Errorf("inspect image %q: %w", ref, err)
	}
}

// localImage returns the digest or id of the local image ref; the error
// wraps runtime.ErrNotFound when there is none.
func (d *Docker) localImage(ctx context.Context, ref string) (string, error) {
	img, err := d.cli.ImageInspect(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("inspect image %q: %w", ref, classify(err))
	}
	if dg := repoDigest(ref, img.RepoDigests); dg != "" {
		return dg, nil
	}
	return img.ID, nil
}

// repoDigest picks the repo digest ("name@sha256:...") of ref's repository
// from digests, or the first one when ref names none of them.
func repoDigest(ref string, digests []string) string {
	if len(digests) == 0 {
		return ""
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return digests[0]
	}
	for _, dg := range digests {
		n, err := reference.ParseNormalizedNamed(dg)
		if err == nil && n.Name() == named.Name() {
			return dg
		}
	}
	return digests[0]
}

// pull pulls ref and reads the engine's progress stream to its end, since
// the pull only completes (and only reports failure) in that stream. A
// failure wraps runtime.ErrPull and carries the engine's message; a
// cancelled ctx does not wrap it.
func (d *Docker) pull(ctx context.Context, ref string) error {
	d.log.Debug("pulling image", "image", ref)
	body, err := d.cli.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("pull image %q: %w", ref, ctx.Err())
		}
		return fmt.Errorf("pull image %q: %w", ref, &classError{class: runtime.ErrPull, err: err})
	}
	defer body.Close()
	if _, err := readStream(body); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("pull image %q: %w", ref, ctx.Err())
		}
		return fmt.Errorf("pull image %q: %w", ref, &classError{class: runtime.ErrPull, err: err})
	}
	return nil
}

// BuildImage builds an image tagged tag with the classic builder from a tar
// build context holding a Dockerfile, removing intermediate containers even
// when the build fails, and labels it.
func (d *Docker) BuildImage(ctx context.Context, tag string, buildContext io.Reader, labels map[string]string) error {
	resp, err := d.cli.ImageBuild(ctx, buildContext, build.ImageBuildOptions{
		Tags:        []string{tag},
		Dockerfile:  "Dockerfile",
		Remove:      true,
		ForceRemove: true,
		Labels:      labels,
		Version:     build.BuilderV1,
	})
	if err != nil {
		return fmt.Errorf("build image %s: %w", tag, classify(err))
	}
	defer resp.Body.Close()
	out, err := readStream(resp.Body)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("build image %s: %w", tag, ctx.Err())
		}
		return fmt.Errorf("build image %s: %w; build output ends:\n%s", tag, err, out)
	}
	return nil
}

// streamMessage is one line of the engine's JSON progress stream (pull,
// build).
type streamMessage struct {
	Stream      string `json:"stream"`
	Status      string `json:"status"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
}

// streamTail is how many lines of output readStream keeps.
const streamTail = 20

// readStream reads a progress stream to its end. It returns the stream's
// last lines of output, and the error the stream reported, if any.
func readStream(r io.Reader) (string, error) {
	var tail []string
	keep := func(s string) {
		for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				tail = append(tail, l)
			}
		}
		if len(tail) > streamTail {
			tail = tail[len(tail)-streamTail:]
		}
	}
	dec := json.NewDecoder(r)
	for {
		var m streamMessage
		if err := dec.Decode(&m); err == io.EOF {
			return strings.Join(tail, "\n"), nil
		} else if err != nil {
			return strings.Join(tail, "\n"), fmt.Errorf("read engine progress stream: %w", err)
		}
		switch {
		case m.ErrorDetail != nil && m.ErrorDetail.Message != "":
			return strings.Join(tail, "\n"), errors.New(m.ErrorDetail.Message)
		case m.Error != "":
			return strings.Join(tail, "\n"), errors.New(m.Error)
		case m.Stream != "":
			keep(m.Stream)
		}
	}
}
