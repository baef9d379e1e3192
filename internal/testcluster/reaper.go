package testcluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ownerFile in a cluster's directory holds the PID of the process that
// started it, so a later start can clean up after a process that was killed
// before it could stop its cluster.
const ownerFile = "owner.pid"

// reapOrphans kills the processes and removes the directories of clusters
// whose owner no longer runs.
func reapOrphans(log io.Writer) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "glc-*"))
	for _, dir := range dirs {
		data, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || processAlive(pid) {
			continue
		}
		if n := killProcessesUsing(dir); n > 0 {
			fmt.Fprintf(log, "testcluster: stopped %d processes left by an earlier cluster in %s\n", n, dir)
		}
		_ = os.RemoveAll(dir)
	}
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// ProcessesUsing lists the PIDs of processes whose command line names dir:
// the control-plane processes of the cluster living there.
func ProcessesUsing(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	needle := []byte(dir + string(filepath.Separator))
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if bytes.Contains(cmdline, needle) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func killProcessesUsing(dir string) int {
	pids := ProcessesUsing(dir)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return len(pids)
}
