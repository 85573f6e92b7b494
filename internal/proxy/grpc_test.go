package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// echoServer is a tiny gRPC service without generated code: Unary echoes a
// string (or fails with UNAVAILABLE for "fail"), Chat echoes every message
// of a bidirectional stream as it comes.
type echoServer struct {
	calls atomic.Int64
}

var echoDesc = grpc.ServiceDesc{
	ServiceName: "wharf.test.Echo",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Unary",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			srv.(*echoServer).calls.Add(1)
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			if in.Value == "fail" {
				return nil, status.Error(codes.Unavailable, "not now")
			}
			grpc.SetTrailer(ctx, metadata.Pairs("x-echo-trailer", "unary"))
			return wrapperspb.String("echo:" + in.Value), nil
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Chat",
		ServerStreams: true,
		ClientStreams: true,
		Handler: func(srv any, stream grpc.ServerStream) error {
			srv.(*echoServer).calls.Add(1)
			n := 0
			for {
				in := new(wrapperspb.StringValue)
				if err := stream.RecvMsg(in); err == io.EOF {
					stream.SetTrailer(metadata.Pairs("x-echo-count", fmt.Sprint(n)))
					return nil
				} else if err != nil {
					return err
				}
				n++
				if err := stream.SendMsg(wrapperspb.String("echo:" + in.Value)); err != nil {
					return err
				}
			}
		},
	}},
}

func startGRPC(t *testing.T) (*echoServer, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	impl := &echoServer{}
	s := grpc.NewServer()
	s.RegisterService(&echoDesc, impl)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return impl, ln.Addr().String()
}

func dialGRPC(t *testing.T, target string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// serviceConnect returns a config for the Service Connect path: an egress
// listener forwarding to the ingress listener of the same proxy, which
// forwards to the application.
func serviceConnect(protocol, app string, egress, ingress string) Config {
	return Config{
		ServiceName: "front", ClusterName: "prod", DiscoveryName: "self",
		Listeners: []Listener{
			{Address: egress, Upstream: "apple"},
			{Address: ingress, Ingress: &Ingress{DiscoveryName: "apple", Protocol: protocol, AppAddress: app}},
		},
		Upstreams: []Upstream{{Name: "apple", Protocol: protocol}},
	}
}

// proxyPath starts a proxy in front of app, one hop (egress to the app) or
// two (egress to ingress to the app), and returns the address to call.
func proxyPath(t *testing.T, hops int, protocol, app string, mod func(*Config)) (*Proxy, string) {
	t.Helper()
	var cfg Config
	if hops == 1 {
		cfg = Config{
			Listeners: []Listener{{Address: "127.0.0.1:0", Upstream: "apple"}},
			Upstreams: []Upstream{{Name: "apple", Protocol: protocol, Endpoints: []Endpoint{{Address: app}}}},
		}
	} else {
		cfg = serviceConnect(protocol, app, "127.0.0.1:0", "127.0.0.2:0")
	}
	if mod != nil {
		mod(&cfg)
	}
	p := startProxy(t, cfg)
	if hops == 2 {
		cfg.Upstreams[0].Endpoints = []Endpoint{{Address: addr(t, p, cfg.Listeners[1].Address)}}
		if err := p.Apply(cfg); err != nil {
			t.Fatal(err)
		}
	}
	return p, addr(t, p, cfg.Listeners[0].Address)
}

func TestGRPCThroughProxy(t *testing.T) {
	for _, hops := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d hops", hops), func(t *testing.T) {
			srv, app := startGRPC(t)
			_, front := proxyPath(t, hops, ProtocolGRPC, app, nil)
			conn := dialGRPC(t, front)
			ctx := ctxTimeout(t, 10*time.Second)

			t.Run("unary with trailers", func(t *testing.T) {
				out := new(wrapperspb.StringValue)
				var trailer metadata.MD
				if err := conn.Invoke(ctx, "/wharf.test.Echo/Unary", wrapperspb.String("hi"), out, grpc.Trailer(&trailer)); err != nil {
					t.Fatal(err)
				}
				if out.Value != "echo:hi" {
					t.Errorf("got %q", out.Value)
				}
				if got := trailer.Get("x-echo-trailer"); len(got) != 1 || got[0] != "unary" {
					t.Errorf("trailer %v, want x-echo-trailer: unary", trailer)
				}
			})

			t.Run("status passes through, not retried", func(t *testing.T) {
				before := srv.calls.Load()
				err := conn.Invoke(ctx, "/wharf.test.Echo/Unary", wrapperspb.String("fail"), new(wrapperspb.StringValue))
				if st := status.Convert(err); st.Code() != codes.Unavailable || st.Message() != "not now" {
					t.Errorf("got %v, want UNAVAILABLE \"not now\" from the server", err)
				}
				if n := srv.calls.Load() - before; n != 1 {
					t.Errorf("the call reached the server %d times, want 1 (gRPC calls are POSTs)", n)
				}
			})

			t.Run("bidirectional stream", func(t *testing.T) {
				cs, err := conn.NewStream(ctx, &echoDesc.Streams[0], "/wharf.test.Echo/Chat")
				if err != nil {
					t.Fatal(err)
				}
				// Each answer must come back before the next message is
				// sent: messages pass through as they come.
				for i := range 5 {
					msg := fmt.Sprint("m", i)
					if err := cs.SendMsg(wrapperspb.String(msg)); err != nil {
						t.Fatal(err)
					}
					in := new(wrapperspb.StringValue)
					if err := cs.RecvMsg(in); err != nil {
						t.Fatalf("message %d: %v", i, err)
					}
					if in.Value != "echo:"+msg {
						t.Fatalf("got %q, want echo:%s", in.Value, msg)
					}
				}
				if err := cs.CloseSend(); err != nil {
					t.Fatal(err)
				}
				if err := cs.RecvMsg(new(wrapperspb.StringValue)); err != io.EOF {
					t.Fatalf("end of stream: %v, want EOF", err)
				}
				if got := cs.Trailer().Get("x-echo-count"); len(got) != 1 || got[0] != "5" {
					t.Errorf("trailer %v, want x-echo-count: 5", cs.Trailer())
				}
			})
		})
	}
}

func TestGRPCRetryNonIdempotent(t *testing.T) {
	srv, app := startGRPC(t)
	_, front := proxyPath(t, 1, ProtocolGRPC, app, func(c *Config) { c.Upstreams[0].RetryNonIdempotent = true })
	conn := dialGRPC(t, front)
	err := conn.Invoke(ctxTimeout(t, 10*time.Second), "/wharf.test.Echo/Unary", wrapperspb.String("fail"), new(wrapperspb.StringValue))
	if status.Code(err) != codes.Unavailable {
		t.Errorf("got %v, want UNAVAILABLE", err)
	}
	if n := srv.calls.Load(); n != 3 {
		t.Errorf("server saw %d calls, want 3 (the call and 2 retries)", n)
	}
}

// TestGRPCNoEndpoint: a gRPC caller gets UNAVAILABLE with the reason.
func TestGRPCNoEndpoint(t *testing.T) {
	p := startProxy(t, Config{
		Listeners: []Listener{{Address: "127.0.0.1:0", Upstream: "apple"}},
		Upstreams: []Upstream{{Name: "apple", Protocol: ProtocolGRPC}},
	})
	conn := dialGRPC(t, addr(t, p, "127.0.0.1:0"))
	err := conn.Invoke(ctxTimeout(t, 10*time.Second), "/wharf.test.Echo/Unary", wrapperspb.String("x"), new(wrapperspb.StringValue))
	if st := status.Convert(err); st.Code() != codes.Unavailable || st.Message() == "" {
		t.Errorf("got %v, want UNAVAILABLE with a reason", err)
	}
}
