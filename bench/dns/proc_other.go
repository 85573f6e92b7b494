//go:build !linux

package main

import (
	"os"
	"syscall"
)

// sysProcAttr: on other systems nsd shares this program's process group.
func sysProcAttr() *syscall.SysProcAttr { return nil }

func syscallKill(pid int) {
	if p, err := os.FindProcess(-pid); err == nil {
		p.Signal(os.Interrupt)
	}
}

func syscallKillHard(pid int) {
	if p, err := os.FindProcess(-pid); err == nil {
		p.Kill()
	}
}

func groupRSS(int) int64        { return 0 }
func selfRSS() (rss, hwm int64) { return 0, 0 }
