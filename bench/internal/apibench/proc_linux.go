package apibench

import "syscall"

// sysProcAttr puts a server in its own process group, so that Ctrl-C reaches
// only this program, which then stops the server; and kills the server
// should this program die without doing so.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
