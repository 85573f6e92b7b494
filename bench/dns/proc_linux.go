package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// sysProcAttr puts nsd in its own process group, so that Ctrl-C reaches
// only this program, which then stops it; and kills it should this program
// die without doing so.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func syscallKill(pid int)     { syscall.Kill(pid, syscall.SIGTERM) }
func syscallKillHard(pid int) { syscall.Kill(pid, syscall.SIGKILL) }

// groupRSS sums VmRSS of the processes in process group pgid, in bytes.
func groupRSS(pgid int) int64 {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var total int64
	for _, d := range dirs {
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces.
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 3 || fields[2] != strconv.Itoa(pgid) {
			continue
		}
		total += statusKB(filepath.Join(d, "status"), "VmRSS:") * 1024
	}
	return total
}

// selfRSS is this process's VmRSS and VmHWM in bytes.
func selfRSS() (rss, hwm int64) {
	return statusKB("/proc/self/status", "VmRSS:") * 1024, statusKB("/proc/self/status", "VmHWM:") * 1024
}

func statusKB(path, field string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}
