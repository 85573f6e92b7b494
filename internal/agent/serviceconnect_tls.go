package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/wharfhq/wharf/internal/api/agentapi"
	"github.com/wharfhq/wharf/internal/sidecar"
)

// Service Connect TLS: a task whose services serve TLS, or that calls a
// service requiring mutual TLS, gets a certificate from Wharf's certificate
// authority (IssueCertificate), for a key the agent makes; the agent hands
// both to the task's proxy with its configuration and renews the
// certificate when the control plane says to (five sevenths into its
// life). The key never leaves the node.

// needsCertificate reports whether a task's proxy needs a certificate: it
// serves TLS, or calls a service that requires mutual TLS.
func needsCertificate(sc *agentapi.TaskServiceConnect, view *agentapi.NamespaceView) bool {
	for _, in := range sc.Services {
		if in.TLS != nil {
			return true
		}
	}
	return view != nil && slices.ContainsFunc(view.Services, func(s agentapi.ServiceView) bool { return s.TLS != nil && s.TLS.Mutual })
}

// obtainCertificate gets the task's first certificate, trying until it has
// one, the task is to stop, or ctx ends.
func (sc *scTask) obtainCertificate(ctx context.Context) error {
	delay := 500 * time.Millisecond
	for {
		err := sc.issue(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		sc.m.log.Warn("getting the task's Service Connect certificate failed; retrying", "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sc.m.wake:
			return errStopRequested
		case <-time.After(delay):
		}
		delay = min(delay*2, 10*time.Second)
	}
}

// issue asks the control plane for a certificate for a new key and keeps
// it; the caller renders the configuration again.
func (sc *scTask) issue(ctx context.Context) error {
	key, csr, err := newKeyAndCSR()
	if err != nil {
		return err
	}
	var out agentapi.IssueCertificateResponse
	in := &agentapi.IssueCertificateRequest{Cluster: sc.m.cluster(), Task: sc.m.task.TaskArn, CSR: string(csr)}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := sc.m.a.cp.Call(cctx, "IssueCertificate", in, &out); err != nil {
		return err
	}
	if out.Certificate == "" {
		return errors.New("the control plane answered without a certificate")
	}
	renew := out.RenewAfter.Time
	if renew.IsZero() {
		renew = time.Now().Add(time.Hour)
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.cert = &sidecar.TLSMaterial{Certificate: out.Certificate, Key: string(key)}
	sc.renewAt, sc.retryAt, sc.retryDelay = renew, time.Time{}, 0
	if sc.trust == "" {
		sc.trust = out.TrustBundle
	}
	sc.m.log.Info("Service Connect certificate issued", "renew_at", renew.UTC().Format(time.RFC3339), "not_after", out.NotAfter.Time.UTC().Format(time.RFC3339))
	return nil
}

// renewCertificates gives Service Connect tasks that need one a
// certificate, and renews certificates when due, until ctx ends.
func (a *Agent) renewCertificates(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		tasks := a.sc.all()
		now := time.Now()
		for _, sc := range tasks {
			sc.mu.Lock()
			due := sc.prepared && needsCertificate(&sc.conf, sc.view) && (sc.cert == nil || !now.Before(sc.renewAt)) && !now.Before(sc.retryAt)
			sc.mu.Unlock()
			if !due || sc.m.stopWanted() {
				continue
			}
			if err := sc.issue(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				sc.mu.Lock()
				sc.retryDelay = min(max(2*sc.retryDelay, time.Second), 30*time.Second)
				sc.retryAt = now.Add(sc.retryDelay)
				sc.mu.Unlock()
				sc.m.log.Warn("renewing the task's Service Connect certificate failed; the proxy keeps the one it has", "err", err, "retry_in", sc.retryDelay)
				continue
			}
			sc.mu.Lock()
			sc.render()
			sc.mu.Unlock()
		}
	}
}

// newKeyAndCSR makes an ECDSA P-256 key and a certificate request for it;
// the certificate authority decides the names.
func newKeyAndCSR() (keyPEM, csrPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate a key: %w", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create a certificate request: %w", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}
