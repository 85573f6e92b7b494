package sidecar

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wharfhq/wharf/internal/proxy"
)

// testCA issues certificates as Wharf's certificate authority does: for
// server and client authentication, with the given DNS names.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der := must(x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key))
	return &testCA{cert: must(x509.ParseCertificate(der)), key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

func (ca *testCA) issue(t *testing.T, cn string, names ...string) *TLSMaterial {
	t.Helper()
	key := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der := must(x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key))
	kder := must(x509.MarshalECPrivateKey(key))
	return &TLSMaterial{
		Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) + ca.pem,
		Key:         string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})),
	}
}

// A client proxy calls a server proxy with mutual TLS, with the material
// and trust bundle the configuration documents carry.
func TestMutualTLSBetweenProxies(t *testing.T) {
	ca := newTestCA(t)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "banana") }))
	defer backend.Close()
	server, client := freeAddr(t), freeAddr(t)
	newSidecar := func() *sidecar {
		s := &sidecar{log: slog.New(slog.DiscardHandler), p: proxy.New(nil)}
		t.Cleanup(func() { s.p.Close() })
		return s
	}

	b := newSidecar()
	if err := b.apply(&Document{Index: 1, Config: Config{
		ServiceName: "banana", TLS: ca.issue(t, "banana", "banana", "banana.fruit"), TrustBundle: ca.pem,
		Listeners: []Listener{{Address: server, Ingress: &Ingress{DiscoveryName: "banana", Protocol: "http", AppAddress: strings.TrimPrefix(backend.URL, "http://"), TLS: true, Mutual: true}}},
	}}); err != nil {
		t.Fatalf("server proxy: %v", err)
	}
	a := newSidecar()
	cfg := Config{
		ServiceName: "front", TLS: ca.issue(t, "front"), TrustBundle: ca.pem,
		Listeners: []Listener{{Address: client, Upstream: "banana"}},
		Upstreams: []Upstream{{Name: "banana", Protocol: "http", Endpoints: []Endpoint{{Address: server}}, TLS: true, Mutual: true, ServerName: "banana.fruit"}},
	}
	if err := a.apply(&Document{Index: 1, Config: cfg}); err != nil {
		t.Fatalf("client proxy: %v", err)
	}
	if code, body := httpGet("http://" + client + "/"); code != 200 || body != "banana" {
		t.Fatalf("through both proxies: %d %q", code, body)
	}

	// A renewed certificate is applied without a hitch.
	cfg.TLS = ca.issue(t, "front")
	if err := a.apply(&Document{Index: 2, Config: cfg}); err != nil {
		t.Fatalf("renewal: %v", err)
	}
	if code, body := httpGet("http://" + client + "/"); code != 200 || body != "banana" {
		t.Fatalf("after the renewal: %d %q", code, body)
	}

	// A caller the server cannot verify is refused; so is a server whose
	// name does not match.
	c := newSidecar()
	other := freeAddr(t)
	if err := c.apply(&Document{Index: 1, Config: Config{
		TrustBundle: ca.pem,
		Listeners:   []Listener{{Address: other, Upstream: "banana"}},
		Upstreams:   []Upstream{{Name: "banana", Protocol: "http", Endpoints: []Endpoint{{Address: server}}, TLS: true, ServerName: "banana.fruit"}},
	}}); err != nil {
		t.Fatal(err)
	}
	if code, _ := httpGet("http://" + other + "/"); code != http.StatusServiceUnavailable {
		t.Fatalf("without a client certificate: %d, want 503", code)
	}
	cfg.Upstreams[0].ServerName = "apple.fruit"
	if err := a.apply(&Document{Index: 3, Config: cfg}); err != nil {
		t.Fatal(err)
	}
	if code, _ := httpGet("http://" + client + "/"); code != http.StatusServiceUnavailable {
		t.Fatalf("with the wrong server name: %d, want 503", code)
	}

	// A configuration asking for TLS without material is refused.
	if err := newSidecar().apply(&Document{Index: 1, Config: Config{Listeners: []Listener{{Address: freeAddr(t), Ingress: &Ingress{DiscoveryName: "x", AppAddress: "127.0.0.1:1", TLS: true}}}}}); err == nil {
		t.Fatal("a TLS ingress without a certificate was applied")
	}
}
