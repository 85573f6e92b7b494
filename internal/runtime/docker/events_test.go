package docker

import (
	"reflect"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"

	"github.com/wharfhq/wharf/internal/runtime"
)

func TestEventOf(t *testing.T) {
	now := time.Unix(1700000000, 123456789)
	for _, tc := range []struct {
		name string
		msg  events.Message
		want runtime.Event
	}{
		{
			name: "die drops the engine's attributes",
			msg: events.Message{Type: events.ContainerEventType, Action: events.ActionDie, TimeNano: now.UnixNano(), Actor: events.Actor{
				ID:         "c1",
				Attributes: map[string]string{"app": "web", "image": "busybox", "name": "web-1", "exitCode": "137", "execDuration": "3"},
			}},
			want: runtime.Event{ContainerID: "c1", Action: "die", Labels: map[string]string{"app": "web"}, Time: now},
		},
		{
			name: "health status loses its detail",
			msg: events.Message{Action: events.ActionHealthStatusUnhealthy, Time: now.Unix(), Actor: events.Actor{
				ID:         "c2",
				Attributes: map[string]string{"image": "busybox", "name": "web-2"},
			}},
			want: runtime.Event{ContainerID: "c2", Action: "health_status", Time: time.Unix(now.Unix(), 0)},
		},
		{
			name: "exec verbs lose their command",
			msg:  events.Message{Action: "exec_start: sh -c true", TimeNano: now.UnixNano(), Actor: events.Actor{ID: "c3"}},
			want: runtime.Event{ContainerID: "c3", Action: "exec_start", Time: now},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := eventOf(tc.msg)
			if !got.Time.Equal(tc.want.Time) {
				t.Errorf("time %v, want %v", got.Time, tc.want.Time)
			}
			got.Time = tc.want.Time
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("eventOf = %+v, want %+v", got, tc.want)
			}
		})
	}
}
