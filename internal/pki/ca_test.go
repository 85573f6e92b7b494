package pki

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/wharfhq/wharf/internal/store"
)

func openStore(t *testing.T, cfg store.Config) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ensure(t *testing.T) *CA {
	t.Helper()
	st := openStore(t, store.Config{DataDir: t.TempDir()})
	ca, err := Ensure(context.Background(), st, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

var apple = Identity{
	CommonName: "apple",
	DNSNames:   []string{"apple.ns", "apple"},
	URIs:       []*url.URL{{Scheme: "spiffe", Host: "wharf", Path: "/ns/apple"}},
}

// parseChain returns the certificates of a PEM chain.
func parseChain(t *testing.T, chain []byte) []*x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, chain = pem.Decode(chain)
		if b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	if len(bytes.TrimSpace(chain)) != 0 {
		t.Fatalf("chain has trailing bytes %q", chain)
	}
	return certs
}

func TestIssue(t *testing.T) {
	ca := ensure(t)
	now := time.Now().Truncate(time.Second)
	_, csr, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	const lifetime = 3 * time.Hour
	chain, notAfter, err := ca.Issue(csr, apple, now, lifetime)
	if err != nil {
		t.Fatal(err)
	}
	certs := parseChain(t, chain)
	if len(certs) != 2 {
		t.Fatalf("chain has %d certificates, want the leaf and the CA's", len(certs))
	}
	leaf := certs[0]
	if !bytes.Equal(certs[1].Raw, parseChain(t, ca.BundlePEM())[0].Raw) {
		t.Error("second certificate of the chain is not the CA's")
	}
	if !notAfter.Equal(now.Add(lifetime)) || !leaf.NotAfter.Equal(notAfter) {
		t.Errorf("NotAfter = %v, certificate's %v, want %v", notAfter, leaf.NotAfter, now.Add(lifetime))
	}
	if !leaf.NotBefore.Equal(now.Add(-time.Minute)) {
		t.Errorf("NotBefore = %v, want %v", leaf.NotBefore, now.Add(-time.Minute))
	}
	if leaf.Subject.CommonName != "apple" || len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://wharf/ns/apple" {
		t.Errorf("subject %q, URIs %v", leaf.Subject.CommonName, leaf.URIs)
	}
	if leaf.IsCA || leaf.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("IsCA %v, KeyUsage %v", leaf.IsCA, leaf.KeyUsage)
	}
	if leaf.SerialNumber.BitLen() > 128 || leaf.SerialNumber.Sign() < 0 {
		t.Errorf("serial %v is not a 128-bit number", leaf.SerialNumber)
	}
	for _, name := range apple.DNSNames {
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			_, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: ca.Pool(), CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}})
			if err != nil {
				t.Errorf("verify for %s, usage %v: %v", name, usage, err)
			}
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "banana.ns", Roots: ca.Pool(), CurrentTime: now}); err == nil {
		t.Error("certificate verifies for banana.ns")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), CurrentTime: now.Add(lifetime + time.Second)}); err == nil {
		t.Error("certificate verifies after its NotAfter")
	}

	_, notAfter, err = ca.Issue(csr, apple, now, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(7 * 24 * time.Hour); !notAfter.Equal(want) {
		t.Errorf("default NotAfter = %v, want %v", notAfter, want)
	}
}

func TestIssueAcceptsKeys(t *testing.T) {
	ca, err := newCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for name, gen := range map[string]func() (crypto.Signer, error){
		"P-256":    func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) },
		"P-384":    func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P384(), rand.Reader) },
		"Ed25519":  func() (crypto.Signer, error) { _, k, err := ed25519.GenerateKey(rand.Reader); return k, err },
		"RSA 2048": func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) },
	} {
		t.Run(name, func(t *testing.T) {
			key, err := gen()
			if err != nil {
				t.Fatal(err)
			}
			chain, _, err := ca.Issue(csrFor(t, key), apple, time.Now(), time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			leaf := parseChain(t, chain)[0]
			if pub := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !pub.Equal(key.Public()) {
				t.Error("certificate is not for the request's key")
			}
		})
	}
}

func csrFor(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return encodePEM("CERTIFICATE REQUEST", der)
}

func TestIssueRejectsBadCSRs(t *testing.T) {
	ca, err := newCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, good, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(good)
	tampered := bytes.Clone(b.Bytes)
	tampered[len(tampered)-1] ^= 0x01 // last byte of the signature
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		csr  []byte
	}{
		{"empty", nil},
		{"garbage", []byte("not a certificate request")},
		{"certificate", ca.BundlePEM()},
		{"bad DER", encodePEM("CERTIFICATE REQUEST", []byte{0x30, 0x03, 0x02, 0x01})},
		{"tampered signature", encodePEM("CERTIFICATE REQUEST", tampered)},
		{"RSA 1024", csrFor(t, rsa1024)},
		{"P-224", csrFor(t, p224)},
		{"P-521", csrFor(t, p521)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chain, notAfter, err := ca.Issue(tc.csr, apple, time.Now(), time.Hour)
			if !errors.Is(err, ErrBadCSR) {
				t.Fatalf("Issue error = %v, want one wrapping ErrBadCSR", err)
			}
			if chain != nil || !notAfter.IsZero() {
				t.Errorf("Issue returned a chain or a NotAfter with error %v", err)
			}
			t.Log(err)
		})
	}
}

// tlsCert is a certificate for id issued by ca, with its key.
func tlsCert(t *testing.T, ca *CA, id Identity) tls.Certificate {
	t.Helper()
	key, csr, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	chain, _, err := ca.Issue(csr, id, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(chain, encodePEM("PRIVATE KEY", kder))
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// handshake runs a TLS handshake over loopback TCP and returns the
// client's and the server's results.
func handshake(t *testing.T, server, client *tls.Config) (clientErr, serverErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		conn := tls.Server(c, server)
		if err := conn.HandshakeContext(ctx); err != nil {
			done <- err
			return
		}
		if v := conn.ConnectionState().Version; v != tls.VersionTLS13 {
			done <- errors.New("server negotiated " + tls.VersionName(v))
			return
		}
		done <- nil
	}()
	var d tls.Dialer
	d.Config = client
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err == nil {
		c.Close()
	}
	select {
	case serverErr = <-done:
	case <-ctx.Done():
		t.Fatal("server handshake did not end within 10s")
	}
	return err, serverErr
}

func TestTLSHandshake(t *testing.T) {
	ca := ensure(t)
	server := &tls.Config{
		Certificates: []tls.Certificate{tlsCert(t, ca, apple)},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool(),
		MinVersion:   tls.VersionTLS13,
	}
	client := func(serverName string) *tls.Config {
		return &tls.Config{
			Certificates: []tls.Certificate{tlsCert(t, ca, Identity{CommonName: "banana", DNSNames: []string{"banana.ns"}})},
			RootCAs:      ca.Pool(),
			ServerName:   serverName,
			MinVersion:   tls.VersionTLS13,
		}
	}

	t.Run("apple.ns", func(t *testing.T) {
		cerr, serr := handshake(t, server, client("apple.ns"))
		if cerr != nil || serr != nil {
			t.Fatalf("client: %v; server: %v", cerr, serr)
		}
	})
	t.Run("banana.ns", func(t *testing.T) {
		cerr, serr := handshake(t, server, client("banana.ns"))
		var hostErr x509.HostnameError
		if !errors.As(cerr, &hostErr) {
			t.Fatalf("client error = %v, want a hostname mismatch", cerr)
		}
		if serr == nil {
			t.Error("server handshake succeeded after the client refused it")
		}
	})
	t.Run("client of another CA", func(t *testing.T) {
		other, err := newCA(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		cfg := client("apple.ns")
		cfg.Certificates = []tls.Certificate{tlsCert(t, other, apple)}
		_, serr := handshake(t, server, cfg)
		var unknown x509.UnknownAuthorityError
		if !errors.As(serr, &unknown) {
			t.Fatalf("server error = %v, want an unknown authority", serr)
		}
	})
}

func TestEnsureMakesOneCA(t *testing.T) {
	ctx := context.Background()
	st1 := openStore(t, store.Config{DataDir: t.TempDir()})
	// A second handle on the same etcd, as another control-plane replica.
	st2 := openStore(t, store.Config{Endpoints: st1.Client().Endpoints()})
	now := time.Now()

	const callers = 8
	bundles := make([][]byte, callers)
	var wg sync.WaitGroup
	for i := range callers {
		st := st1
		if i%2 == 1 {
			st = st2
		}
		wg.Go(func() {
			ca, err := Ensure(ctx, st, now)
			if err != nil {
				t.Error(err)
				return
			}
			bundles[i] = ca.BundlePEM()
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	again, err := Ensure(ctx, st2, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range append(bundles, again.BundlePEM()) {
		if !bytes.Equal(b, bundles[0]) {
			t.Fatalf("Ensure call %d returned another CA", i)
		}
	}

	root := parseChain(t, bundles[0])[0]
	if root.Subject.CommonName != "Wharf Service Connect CA" || !root.IsCA || root.MaxPathLen != 0 || !root.MaxPathLenZero {
		t.Errorf("root: subject %q, IsCA %v, MaxPathLen %d (zero %v)", root.Subject.CommonName, root.IsCA, root.MaxPathLen, root.MaxPathLenZero)
	}
	if root.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("root KeyUsage = %v", root.KeyUsage)
	}
	if pub, ok := root.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("root key is a %T, want ECDSA P-256", root.PublicKey)
	}
	if want := now.AddDate(10, 0, 0).Truncate(time.Second); !root.NotAfter.Equal(want) {
		t.Errorf("root NotAfter = %v, want %v", root.NotAfter, want)
	}
	if err := root.CheckSignatureFrom(root); err != nil {
		t.Errorf("root is not self-signed: %v", err)
	}

	// A CA loaded from the store signs certificates that verify.
	_, csr, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	chain, _, err := again.Issue(csr, apple, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseChain(t, chain)[0].Verify(x509.VerifyOptions{DNSName: "apple.ns", Roots: again.Pool(), CurrentTime: now}); err != nil {
		t.Error(err)
	}
}

func TestEnsureRejectsDamagedCA(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, store.Config{DataDir: t.TempDir()})
	a, err := newCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := newCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ra, err := a.stored()
	if err != nil {
		t.Fatal(err)
	}
	rb, err := b.stored()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		rec  stored
	}{
		{"empty", stored{}},
		{"key of another CA", stored{Certificate: ra.Certificate, PrivateKey: rb.PrivateKey}},
		{"key for certificate", stored{Certificate: ra.Certificate, PrivateKey: ra.Certificate}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := st.Update(ctx, func(tx *store.Tx) error { return tx.Put(StoreKey, tc.rec) }); err != nil {
				t.Fatal(err)
			}
			if _, err := Ensure(ctx, st, time.Now()); err == nil {
				t.Fatal("Ensure loaded a damaged CA")
			}
		})
	}
}

func FuzzIssue(f *testing.F) {
	ca, err := newCA(time.Now())
	if err != nil {
		f.Fatal(err)
	}
	_, csr, err := NewKey()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(csr)
	f.Add(ca.BundlePEM())
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, csrPEM []byte) {
		chain, _, err := ca.Issue(csrPEM, apple, time.Now(), time.Hour)
		if err != nil {
			if !errors.Is(err, ErrBadCSR) {
				t.Fatalf("error %v does not wrap ErrBadCSR", err)
			}
			return
		}
		b, _ := pem.Decode(chain)
		if b == nil {
			t.Fatal("chain without a PEM block")
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			t.Fatalf("issued an unparsable certificate: %v", err)
		}
	})
}
