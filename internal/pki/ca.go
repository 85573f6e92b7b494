// Package pki is Wharf's certificate authority for Service Connect TLS: one
// root kept in the store and shared by every control-plane replica, which
// signs short-lived certificates for the proxies' own keys.
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
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"time"

	"github.com/wharfhq/wharf/internal/store"
)

// StoreKey is the store key of the CA's certificate and key.
const StoreKey = "pki/ca"

// ErrBadCSR is wrapped by Issue's errors about the certificate request.
var ErrBadCSR = errors.New("bad certificate request")

const (
	caName          = "Wharf Service Connect CA"
	caLifetime      = 10 // years
	defaultLifetime = 7 * 24 * time.Hour
	// backdate covers clocks a little behind the control plane's.
	backdate = time.Minute
)

// Identity is what a certificate says about its holder; the control plane
// decides it.
type Identity struct {
	CommonName string     // e.g. the ECS service name
	DNSNames   []string   // e.g. "apple.ns", "apple"
	URIs       []*url.URL // optional
}

// CA is a loaded certificate authority. Safe for concurrent use: nothing in
// it changes after loading.
type CA struct {
	cert    *x509.Certificate
	certPEM []byte
	key     crypto.Signer
}

// stored is the CA as kept under StoreKey.
type stored struct {
	Certificate string `json:"certificate"` // PEM
	PrivateKey  string `json:"privateKey"`  // PEM, PKCS #8
}

// Ensure returns the CA kept in st, creating it on first use. Concurrent
// callers, in this process or others sharing the store, all end with the
// same CA: a creator that loses the race re-reads the winner's.
func Ensure(ctx context.Context, st *store.Store, now time.Time) (*CA, error) {
	var rec stored
	err := st.Update(ctx, func(tx *store.Tx) error {
		rec = stored{}
		found, err := tx.Get(StoreKey, &rec)
		if err != nil || found {
			return err
		}
		ca, err := newCA(now)
		if err != nil {
			return err
		}
		if rec, err = ca.stored(); err != nil {
			return err
		}
		return tx.Put(StoreKey, rec)
	})
	if err != nil {
		return nil, fmt.Errorf("ensure certificate authority: %w", err)
	}
	ca, err := load(rec)
	if err != nil {
		return nil, fmt.Errorf("certificate authority in store key %s is unusable (deleting the key makes a new CA; every proxy certificate must then be reissued): %w", StoreKey, err)
	}
	return ca, nil
}

// newCA makes a new CA, outside any store: an ECDSA P-256 key and a
// self-signed root valid for ten years that signs end-entity certificates
// only.
func newCA(now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: caName},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.AddDate(caLifetime, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("self-sign CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse new CA certificate: %w", err)
	}
	return &CA{cert: cert, certPEM: encodePEM("CERTIFICATE", der), key: key}, nil
}

func (ca *CA) stored() (stored, error) {
	der, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return stored{}, fmt.Errorf("encode CA key: %w", err)
	}
	return stored{Certificate: string(ca.certPEM), PrivateKey: string(encodePEM("PRIVATE KEY", der))}, nil
}

// load checks a stored CA: a CA certificate and the private key of its
// public key.
func load(rec stored) (*CA, error) {
	cb, _ := pem.Decode([]byte(rec.Certificate))
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("certificate is not a CA's")
	}
	kb, _ := pem.Decode([]byte(rec.PrivateKey))
	if kb == nil || kb.Type != "PRIVATE KEY" {
		return nil, errors.New("no PEM private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	key, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key of type %T cannot sign", k)
	}
	if pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(key.Public()) {
		return nil, errors.New("private key does not match the certificate")
	}
	return &CA{cert: cert, certPEM: encodePEM("CERTIFICATE", cert.Raw), key: key}, nil
}

// Issue signs the public key of csrPEM, a PEM certificate request whose
// self-signature must verify, for id. The names in the request are ignored:
// the certificate says id. It is valid from a minute before now for
// lifetime (7 days when lifetime is not positive), for TLS servers and
// clients. Issue returns the certificate and then the CA's, PEM, and the
// certificate's NotAfter. A bad request gives an error wrapping ErrBadCSR.
func (ca *CA) Issue(csrPEM []byte, id Identity, now time.Time, lifetime time.Duration) (chainPEM []byte, notAfter time.Time, err error) {
	csr, err := parseCSR(csrPEM)
	if err != nil {
		return nil, time.Time{}, err
	}
	if lifetime <= 0 {
		lifetime = defaultLifetime
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, time.Time{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: id.CommonName},
		DNSNames:     id.DNSNames,
		URIs:         id.URIs,
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(lifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, csr.PublicKey, ca.key)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("sign certificate for %q: %w", id.CommonName, err)
	}
	chain := append(encodePEM("CERTIFICATE", der), ca.certPEM...)
	// The certificate holds whole seconds.
	return chain, tmpl.NotAfter.Truncate(time.Second), nil
}

// parseCSR decodes a PEM certificate request, checks its signature and that
// its key is one we accept.
func parseCSR(data []byte) (*x509.CertificateRequest, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrBadCSR)
	}
	if b.Type != "CERTIFICATE REQUEST" {
		return nil, fmt.Errorf("%w: PEM block is a %q, want a \"CERTIFICATE REQUEST\"", ErrBadCSR, b.Type)
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	if err := checkKey(csr.PublicKey); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: signature does not verify: %v", ErrBadCSR, err)
	}
	return csr, nil
}

func checkKey(pub any) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fmt.Errorf("ECDSA key on curve %s; use P-256 or P-384", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 {
			return fmt.Errorf("RSA key of %d bits; use 2048 bits or more", n)
		}
	default:
		return fmt.Errorf("key of type %T; use ECDSA P-256 or P-384, Ed25519 or RSA", pub)
	}
	return nil
}

// BundlePEM is the CA certificate, PEM: what callers verify against.
func (ca *CA) BundlePEM() []byte { return bytes.Clone(ca.certPEM) }

// Pool is the CA certificate as a pool; each call returns a new pool.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// NewKey returns a new ECDSA P-256 private key and a PEM certificate request
// for it, for agents to send to Issue.
func NewKey() (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate request: %w", err)
	}
	return key, encodePEM("CERTIFICATE REQUEST", der), nil
}

// randomSerial returns a random serial number of 128 bits.
func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("random serial number: %w", err)
	}
	return n, nil
}

func encodePEM(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
