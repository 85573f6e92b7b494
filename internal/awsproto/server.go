// Package awsproto serves AWS JSON 1.1 APIs: it routes requests by
// X-Amz-Target, verifies SigV4 signatures, bounds request sizes and rates,
// decodes inputs and encodes outputs and errors as AWS does on the wire.
package awsproto

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/wharfhq/wharf/internal/api"
)

// Service is one API served on the endpoint.
type Service struct {
	// TargetPrefix is the part of X-Amz-Target before the dot.
	TargetPrefix string
	// SigningName is the service in SigV4 credential scopes.
	SigningName string
	// Operations maps operation names to their implementations.
	Operations map[string]api.Operation
	// MessageField names the error message member: "message" (ECS) or
	// "Message" (Cloud Map).
	MessageField string
	// ThrottleCode is the error code for requests over the rate limit.
	ThrottleCode string
}

// Limits bounds what one caller may send.
type Limits struct {
	// MaxBodyBytes caps a request body. Default 1 MiB.
	MaxBodyBytes int64
	// ReadRate and WriteRate are sustained requests per second per access
	// key for read-only and mutating operations; 0 disables the limit.
	ReadRate, WriteRate float64
	// ReadBurst and WriteBurst are the bucket sizes.
	ReadBurst, WriteBurst int
}

// Config configures a Handler.
type Config struct {
	Services []Service
	Verifier *Verifier
	Limits   Limits
	Logger   *slog.Logger
}

// Handler is an http.Handler serving the configured services.
type Handler struct {
	services map[string]*Service
	verifier *Verifier
	limits   Limits
	log      *slog.Logger

	mu       sync.Mutex
	limiters map[string]*rate.Limiter // access key + "/r" or "/w"
}

// NewHandler returns a handler for cfg.
func NewHandler(cfg Config) *Handler {
	if cfg.Limits.MaxBodyBytes == 0 {
		cfg.Limits.MaxBodyBytes = 1 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{services: map[string]*Service{}, verifier: cfg.Verifier, limits: cfg.Limits, log: cfg.Logger, limiters: map[string]*rate.Limiter{}}
	for i := range cfg.Services {
		s := &cfg.Services[i]
		if s.MessageField == "" {
			s.MessageField = "message"
		}
		if s.ThrottleCode == "" {
			s.ThrottleCode = "ThrottlingException"
		}
		h.services[s.TargetPrefix] = s
	}
	return h
}

// Request describes the call being served; handlers find it in their context.
type Request struct {
	ID          string
	Operation   string
	Region      string
	AccessKeyID string
	// Endpoint is the base URL the caller reached the server on, such as
	// http://127.0.0.1:4566.
	Endpoint string
	Received time.Time
}

type ctxKey struct{}

// RequestFrom returns the request a context belongs to.
func RequestFrom(ctx context.Context) (*Request, bool) {
	r, ok := ctx.Value(ctxKey{}).(*Request)
	return r, ok
}

// RegionOf is the region the request in ctx was signed for, or def for a
// call that carries none (an in-process caller).
func RegionOf(ctx context.Context, def string) string {
	if r, ok := RequestFrom(ctx); ok && r.Region != "" {
		return r.Region
	}
	return def
}

// WithRequest returns ctx carrying r; for callers that invoke operations
// without HTTP, such as tests and in-process agents.
func WithRequest(ctx context.Context, r *Request) context.Context {
	return context.WithValue(ctx, ctxKey{}, r)
}

func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	req := &Request{ID: newRequestID(), Received: time.Now(), Endpoint: scheme + "://" + r.Host}
	w.Header().Set("x-amzn-RequestId", req.ID)

	svc, op, perr := h.route(r)
	msgField := "message"
	if svc != nil {
		msgField = svc.MessageField
		req.Operation = op
	}
	if perr != nil {
		h.writeError(w, req, msgField, perr)
		return
	}
	if r.Method != http.MethodPost {
		h.writeError(w, req, msgField, &Error{Status: http.StatusMethodNotAllowed, Code: "UnknownOperationException", Message: "AWS JSON APIs take POST requests"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.limits.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.writeError(w, req, msgField, &Error{Status: http.StatusRequestEntityTooLarge, Code: "RequestEntityTooLargeException",
				Message: fmt.Sprintf("Request body is larger than the limit of %d bytes", h.limits.MaxBodyBytes)})
			return
		}
		h.writeError(w, req, msgField, ClientError("SerializationException", "could not read the request body"))
		return
	}
	id, err := h.verifier.Verify(r, body, svc.SigningName)
	if err != nil {
		h.writeError(w, req, msgField, err)
		return
	}
	req.Region, req.AccessKeyID = id.Region, id.AccessKeyID
	operation := svc.Operations[op]
	if !h.allow(id.AccessKeyID, operation.ReadOnly) {
		h.writeError(w, req, msgField, ClientError(svc.ThrottleCode, "Rate exceeded"))
		return
	}

	ctx := WithRequest(r.Context(), req)
	out, err := operation.Invoke(ctx, func(v any) error { return decode(body, v) })
	if err != nil {
		h.writeError(w, req, msgField, err)
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		h.writeError(w, req, msgField, fmt.Errorf("encode %s output: %w", op, err))
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Write(b)
	h.log.Debug("request", "request_id", req.ID, "operation", op, "region", req.Region, "access_key_id", req.AccessKeyID, "duration", time.Since(req.Received))
}

// route finds the service and operation named by X-Amz-Target.
func (h *Handler) route(r *http.Request) (*Service, string, error) {
	target := r.Header.Get("X-Amz-Target")
	if target == "" {
		if r.Header.Get("Authorization") == "" && r.URL.Query().Get("X-Amz-Signature") == "" {
			return nil, "", &Error{Status: http.StatusForbidden, Code: "MissingAuthenticationTokenException", Message: "Missing Authentication Token"}
		}
		return nil, "", ClientError("UnknownOperationException", "missing X-Amz-Target header")
	}
	prefix, op, ok := strings.Cut(target, ".")
	svc := h.services[prefix]
	if !ok || svc == nil {
		return nil, "", ClientError("UnknownOperationException", fmt.Sprintf("unknown service in X-Amz-Target %q", target))
	}
	if _, ok := svc.Operations[op]; !ok {
		return svc, "", ClientError("UnknownOperationException", fmt.Sprintf("unknown operation %q", op))
	}
	return svc, op, nil
}

func (h *Handler) allow(key string, readOnly bool) bool {
	r, burst, suffix := h.limits.WriteRate, h.limits.WriteBurst, "/w"
	if readOnly {
		r, burst, suffix = h.limits.ReadRate, h.limits.ReadBurst, "/r"
	}
	if r <= 0 {
		return true
	}
	h.mu.Lock()
	l, ok := h.limiters[key+suffix]
	if !ok {
		l = rate.NewLimiter(rate.Limit(r), max(burst, 1))
		h.limiters[key+suffix] = l
	}
	h.mu.Unlock()
	return l.Allow()
}

// decode reads a JSON request body into v. An empty body is an empty input.
func decode(body []byte, v any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(body))
	if err := d.Decode(v); err != nil {
		return ClientError("SerializationException", serializationMessage(err))
	}
	if d.More() {
		return ClientError("SerializationException", "unexpected data after the JSON input")
	}
	return nil
}

func serializationMessage(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "input"
		}
		return fmt.Sprintf("Cannot deserialize value of type %s into %s at '%s'", te.Value, te.Type, field)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("Malformed JSON at offset %d: %v", se.Offset, se)
	}
	return "Malformed input: " + err.Error()
}

func (h *Handler) writeError(w http.ResponseWriter, req *Request, msgField string, err error) {
	status, code, msg := http.StatusInternalServerError, "ServerException", "An internal error occurred; the request id identifies it in the server log."
	var fields map[string]any
	var hint string
	if c, ok := AsCoded(err); ok {
		status, code, msg = c.HTTPStatus(), c.ErrorCode(), c.Error()
		var e *Error
		if errors.As(err, &e) {
			msg, fields, hint = e.Message, e.Fields, e.Hint
		} else {
			msg = strings.TrimPrefix(msg, code+": ")
		}
	} else if errors.Is(err, context.Canceled) {
		h.log.Debug("request canceled by the caller", "request_id", req.ID, "operation", req.Operation)
	} else {
		h.log.Error("request failed", "request_id", req.ID, "operation", req.Operation, "region", req.Region, "err", err)
	}
	switch {
	case hint != "":
		// AWS's message stays exact on the wire; what to do next is Wharf's
		// and goes to the log.
		h.log.Info("request refused", "request_id", req.ID, "operation", req.Operation, "code", code, "message", msg, "hint", hint)
	case status >= 400 && status < 500:
		h.log.Debug("request refused", "request_id", req.ID, "operation", req.Operation, "code", code, "message", msg)
	}
	body := map[string]any{"__type": code, msgField: msg}
	for k, v := range fields {
		body[k] = v
	}
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	w.Write(b)
}
