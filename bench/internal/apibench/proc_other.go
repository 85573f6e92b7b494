//go:build !linux && !windows

package apibench

import "syscall"

// sysProcAttr puts a server in its own process group, so that Ctrl-C reaches
// only this program, which then stops the server.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
