package awsproto

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestErrorHintStaysOffTheWire checks that a hint reaches the log and not
// the caller, whose message is AWS's text alone.
func TestErrorHintStaysOffTheWire(t *testing.T) {
	var logs bytes.Buffer
	h := NewHandler(Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"error", ClientError("ClusterNotFoundException", "Cluster not found.").WithHint("create it with %s", "aws ecs create-cluster")},
		{"wrapped", fmt.Errorf("describe: %w", ClientError("ClusterNotFoundException", "Cluster not found.").WithHint("create it with aws ecs create-cluster"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs.Reset()
			w := httptest.NewRecorder()
			h.writeError(w, &Request{ID: "r1", Operation: "ListTasks"}, "message", tc.err)
			var body map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if w.Code != 400 || body["__type"] != "ClusterNotFoundException" || body["message"] != "Cluster not found." || len(body) != 2 {
				t.Fatalf("wire: %d %v", w.Code, body)
			}
			if !strings.Contains(logs.String(), `hint="create it with aws ecs create-cluster"`) || !strings.Contains(logs.String(), "request_id=r1") {
				t.Fatalf("log: %s", logs.String())
			}
		})
	}
}
