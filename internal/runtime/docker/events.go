package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/wharfhq/wharf/internal/runtime"
)

// engineAttributes are the keys the engine adds to a container event's
// attributes beside the container's labels. Events drops them, so a label
// of one of these names does not survive (the engine overwrites "image"
// and "name" anyway).
var engineAttributes = map[string]bool{
	"image":        true,
	"name":         true,
	"exitCode":     true,
	"execDuration": true,
	"signal":       true,
	"execID":       true,
}

// Events streams container events from now on. The engine subscribes a
// stream only after answering the request, so Events asks for events since
// the time of the call, which the engine replays from its buffer: none is
// lost in between (with a remote engine, only as far as the two clocks
// agree). Action is the engine's verb without its detail:
// "health_status: healthy" becomes "health_status" (Inspect tells the
// status), "exec_start: sh -c ..." becomes "exec_start". The event channel
// closes when ctx ends or the stream breaks, after the error channel has
// received the reason (ctx.Err() or the stream's error); the error channel
// is closed too.
func (d *Docker) Events(ctx context.Context) (<-chan runtime.Event, <-chan error) {
	out := make(chan runtime.Event)
	errc := make(chan error, 1)
	now := time.Now()
	msgs, errs := d.cli.Events(ctx, events.ListOptions{
		Since:   fmt.Sprintf("%d.%09d", now.Unix(), now.Nanosecond()),
		Filters: filters.NewArgs(filters.Arg("type", string(events.ContainerEventType))),
	})
	go func() {
		defer close(errc)
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				errc <- ctx.Err()
				return
			case err := <-errs:
				switch {
				case ctx.Err() != nil:
					err = ctx.Err()
				case err == nil, errors.Is(err, io.EOF):
					err = errors.New("docker event stream: the engine closed it")
				default:
					err = fmt.Errorf("docker event stream: %w", err)
				}
				errc <- err
				return
			case m := <-msgs:
				select {
				case out <- eventOf(m):
				case <-ctx.Done():
					errc <- ctx.Err()
					return
				}
			}
		}
	}()
	return out, errc
}

// eventOf converts an engine event.
func eventOf(m events.Message) runtime.Event {
	action, _, _ := strings.Cut(string(m.Action), ":")
	ev := runtime.Event{
		ContainerID: m.Actor.ID,
		Action:      action,
		Time:        time.Unix(0, m.TimeNano),
	}
	if m.TimeNano == 0 {
		ev.Time = time.Unix(m.Time, 0)
	}
	for k, v := range m.Actor.Attributes {
		if engineAttributes[k] {
			continue
		}
		if ev.Labels == nil {
			ev.Labels = make(map[string]string, len(m.Actor.Attributes))
		}
		ev.Labels[k] = v
	}
	return ev
}
