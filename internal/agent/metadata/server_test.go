package metadata_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wharfhq/wharf/internal/agent/metadata"
	"github.com/wharfhq/wharf/internal/runtime"
)

// fakeTask is a task of two containers, app (created) and log (not yet).
type fakeTask struct {
	arn   string
	proxy string // the name of its proxy container; "" for none
	doc   []byte // what the proxy is served
	asked chan int64
}

func (f *fakeTask) TaskMetadata(ctx context.Context) metadata.Task {
	return metadata.Task{TaskARN: f.arn, Containers: []metadata.Container{f.ContainerMetadata(ctx, "app")}}
}

func (f *fakeTask) ContainerMetadata(_ context.Context, name string) metadata.Container {
	return metadata.Container{Name: name, DockerID: f.ContainerID(name)}
}

func (f *fakeTask) ContainerID(name string) string {
	if name == "app" {
		return "id-app"
	}
	return ""
}

func (f *fakeTask) ContainerIDs() []string { return []string{"id-app", "id-gone"} }

func (f *fakeTask) ProxyConfig(_ context.Context, name string, index int64) ([]byte, bool) {
	if name != f.proxy || f.proxy == "" {
		return nil, false
	}
	if f.asked != nil {
		f.asked <- index
	}
	return f.doc, true
}

// stater has stats for id-app only.
type stater struct{}

func (stater) Stats(_ context.Context, id string) (runtime.Stats, error) {
	if id != "id-app" {
		return nil, fmt.Errorf("%w: no such container %s", runtime.ErrNotFound, id)
	}
	return runtime.Stats(`{"id":"id-app"}`), nil
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("GET %s: Content-Type %q", url, ct)
	}
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// TestServer: each path answers for the container its token stands for,
// in both versions; unknown and forgotten tokens get 404.
func TestServer(t *testing.T) {
	s := metadata.New(stater{})
	srv := httptest.NewServer(s)
	defer srv.Close()
	task := &fakeTask{arn: "arn:task/1"}
	s.Add("tok-app", task, "app")
	s.Add("tok-log", task, "log")

	for _, v := range []string{"v3", "v4"} {
		t.Run(v, func(t *testing.T) {
			for _, tc := range []struct {
				path   string
				status int
				want   string
			}{
				{"/tok-app", 200, `"Name":"app"`},
				{"/tok-log", 200, `"Name":"log"`},
				{"/tok-app/task", 200, `"TaskARN":"arn:task/1"`},
				{"/tok-app/stats", 200, `{"id":"id-app"}`},
				{"/tok-log/stats", 200, `null`},
				{"/tok-app/task/stats", 200, `{"id-app":{"id":"id-app"},"id-gone":null}`},
				{"/nope", 404, `ECS_CONTAINER_METADATA_URI_V4`},
				{"/nope/task", 404, `unknown container`},
			} {
				status, body := get(t, srv.URL+"/"+v+tc.path)
				if status != tc.status || !strings.Contains(body, tc.want) {
					t.Errorf("GET /%s%s = %d %s; want %d with %s", v, tc.path, status, body, tc.status, tc.want)
				}
			}
		})
	}
	var doc metadata.Container
	if _, body := get(t, srv.URL+"/v4/tok-app"); json.Unmarshal([]byte(body), &doc) != nil || doc.DockerID != "id-app" {
		t.Errorf("container metadata %s", body)
	}

	s.Remove("tok-log")
	if status, _ := get(t, srv.URL+"/v4/tok-log"); status != 404 {
		t.Errorf("a removed token answers %d", status)
	}
	if status, _ := get(t, srv.URL+"/v4/tok-app"); status != 200 {
		t.Errorf("removing another token lost tok-app: %d", status)
	}
	s.RemoveSource(task)
	if status, _ := get(t, srv.URL+"/v4/tok-app"); status != 404 {
		t.Errorf("a removed task's token answers %d", status)
	}
}

// TestProxyConfig: the proxy's token gets its configuration, asked with
// the index it applied; other containers' tokens are refused, and a
// configuration not rendered yet is "not ready".
func TestProxyConfig(t *testing.T) {
	s := metadata.New(stater{})
	srv := httptest.NewServer(s)
	defer srv.Close()
	task := &fakeTask{arn: "arn:task/1", proxy: "ecs-service-connect-1", asked: make(chan int64, 1)}
	s.Add("tok-app", task, "app")
	s.Add("tok-proxy", task, "ecs-service-connect-1")

	if status, body := get(t, srv.URL+"/wharf/proxy/tok-app"); status != 404 || !strings.Contains(body, "not a Service Connect proxy") {
		t.Errorf("an application's token: %d %s", status, body)
	}
	if status, body := get(t, srv.URL+"/wharf/proxy/tok-proxy?index=7"); status != 503 || !strings.Contains(body, "not ready") {
		t.Errorf("before the first configuration: %d %s", status, body)
	}
	if got := <-task.asked; got != 7 {
		t.Errorf("the task was asked with index %d, want 7", got)
	}
	task.doc = []byte(`{"index":8}`)
	if status, body := get(t, srv.URL+"/wharf/proxy/tok-proxy?index=7"); status != 200 || body != `{"index":8}` {
		t.Errorf("configuration: %d %s", status, body)
	}
	<-task.asked
	if status, _ := get(t, srv.URL+"/wharf/proxy/unknown"); status != 404 {
		t.Errorf("an unknown token: %d", status)
	}
}

// TestListen: Listen serves on the port it returns until Close.
func TestListen(t *testing.T) {
	s := metadata.New(stater{})
	s.Add("tok", &fakeTask{arn: "arn:task/1"}, "app")
	port, err := s.Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	if port == 0 {
		t.Fatal("Listen(0) returned port 0")
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/v4/tok", port)
	if status, _ := get(t, url); status != 200 {
		t.Fatalf("GET %s = %d", url, status)
	}
	if _, err := s.Listen(port); err == nil {
		t.Error("a second Listen on a taken port succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.Get(url); err == nil {
		resp.Body.Close()
		t.Fatal("the endpoint answers after Close")
	}
}
