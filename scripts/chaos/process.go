// Package chaos runs omnimember as it deploys — a real nats-server and every function as its own
// process — drives a generated workload through it while killing, pausing and restarting them, and
// checks every member against a ground truth computed independently from the input.
package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Proc is one OS process the harness starts, kills and restarts; its output goes to a log file.
type Proc struct {
	Name string
	Bin  string
	Args []string
	Env  []string
	Log  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	paused bool
	Starts int
}

// Start runs the process (again); output is appended to its log.
func (p *Proc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("%s is already running", p.Name)
	}
	log, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.Bin, p.Args...)
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); log.Close(); close(exited) }()
	p.cmd, p.exited, p.paused = cmd, exited, false
	p.Starts++
	return nil
}

// Running reports whether the process is up (it may be paused).
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		p.cmd = nil
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL, as an OOM killer or a node failure would, and waits for the process to go.
func (p *Proc) Kill() { p.signal(syscall.SIGKILL, true) }

// Stop asks the process to drain (SIGTERM) and waits up to grace before killing it.
func (p *Proc) Stop(grace time.Duration) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		p.mu.Lock()
		p.cmd = nil
		p.mu.Unlock()
	case <-time.After(grace):
		p.Kill()
	}
}

// Pause freezes the process (SIGSTOP): its consumers stop acking, so JetStream redelivers its
// messages after the ack wait; Resume lets it continue with acks that may now be late.
func (p *Proc) Pause()  { p.signal(syscall.SIGSTOP, false) }
func (p *Proc) Resume() { p.signal(syscall.SIGCONT, false) }

func (p *Proc) signal(sig syscall.Signal, wait bool) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	if sig == syscall.SIGSTOP {
		p.paused = cmd != nil
	}
	if sig == syscall.SIGCONT || sig == syscall.SIGKILL {
		p.paused = false
	}
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	if wait {
		<-exited
		p.mu.Lock()
		p.cmd = nil
		p.mu.Unlock()
	}
}
