// Package apibench is what the benchmarks of Wharf's API against moto share:
// the servers, the load driver and the report.
package apibench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// process is a server this program started.
type Process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// start runs cmd in its own process group with its output in logPath.
func start(name string, cmd *exec.Cmd, logPath string) (*Process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// stop asks the process to end, and kills it after 10 s.
func (p *Process) Stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		fmt.Fprintf(os.Stderr, "%s stopped: %v\n", p.name, p.cmd.ProcessState)
	case <-time.After(10 * time.Second):
		fmt.Fprintf(os.Stderr, "%s did not stop within 10s of SIGTERM; killing it\n", p.name)
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *Process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func BuildWharf(ctx context.Context, bin string) error {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(gomod)) == "" || strings.TrimSpace(string(gomod)) == os.DevNull {
		return fmt.Errorf("find the Wharf module (run from inside it, or give -wharf): %v", err)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/wharf")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build wharf: %w", err)
	}
	return nil
}

type WharfEnv struct{ Endpoint, KeyID, Secret string }

// StartWharf runs `wharf dev` on a free loopback port without rate limits,
// with extra flags, and waits until it has written its endpoint and key.
func StartWharf(ctx context.Context, bin, dir string, extra ...string) (*Process, WharfEnv, error) {
	data := filepath.Join(dir, "wharf-data")
	cmd := exec.Command(bin, append([]string{"dev", "--data-dir", data, "--listen", "127.0.0.1:0",
		"--read-rate", "0", "--write-rate", "0"}, extra...)...)
	cmd.Env = withoutWharfEnv(os.Environ())
	logPath := filepath.Join(dir, "wharf.log")
	p, err := start("wharf", cmd, logPath)
	if err != nil {
		return nil, WharfEnv{}, err
	}
	var env WharfEnv
	err = waitFor(ctx, p, logPath, 60*time.Second, "wharf to write "+filepath.Join(data, "env"), func() bool {
		b, err := os.ReadFile(filepath.Join(data, "env"))
		if err != nil {
			return false
		}
		vars := map[string]string{}
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "="); ok {
				vars[k] = v
			}
		}
		env = WharfEnv{vars["AWS_ENDPOINT_URL"], vars["AWS_ACCESS_KEY_ID"], vars["AWS_SECRET_ACCESS_KEY"]}
		return env.Endpoint != "" && env.KeyID != "" && env.Secret != ""
	})
	if err != nil {
		return p, env, err
	}
	if err := onLoopback(env.Endpoint); err != nil {
		return p, env, err
	}
	return p, env, nil
}

// withoutWharfEnv drops WHARF_* variables, which would set flags the
// benchmark leaves at their defaults, and AWS_* ones, which could point
// moto elsewhere.
func withoutWharfEnv(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		return strings.HasPrefix(kv, "WHARF_") || strings.HasPrefix(kv, "AWS_")
	})
}

func onLoopback(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("endpoint %s is not on loopback", endpoint)
	}
	return nil
}

// StartMoto runs moto's server on a free loopback port and waits until it
// answers.
func StartMoto(ctx context.Context, python, dir string) (*Process, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(python, "-m", "moto.server", "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.Env = withoutWharfEnv(os.Environ())
	logPath := filepath.Join(dir, "moto.log")
	p, err := start("moto", cmd, logPath)
	if err != nil {
		return nil, "", err
	}
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
	err = waitFor(ctx, p, logPath, 60*time.Second, "moto to answer on "+endpoint, func() bool {
		resp, err := http.Get(endpoint + "/moto-api/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
	return p, endpoint, err
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitFor polls ready until it holds, the process exits, ctx ends or the
// timeout passes.
func waitFor(ctx context.Context, p *Process, logPath string, timeout time.Duration, what string, ready func() bool) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for !ready() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return fmt.Errorf("timed out after %v waiting for %s; see %s", timeout, what, logPath)
		case <-tick.C:
			if p.exited() {
				return fmt.Errorf("%s exited while waiting for %s: %v; see %s", p.name, what, p.cmd.ProcessState, logPath)
			}
		}
	}
	return nil
}
