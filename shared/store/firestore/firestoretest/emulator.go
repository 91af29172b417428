// Package firestoretest runs the Firestore emulator for tests: one per test binary, started on
// first use, or the one FIRESTORE_EMULATOR_HOST points at.
package firestoretest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireEnv, set to 1 (as .ci/run does), turns a missing gcloud from a skip into a failure.
const RequireEnv = "OMNIMEMBER_REQUIRE_FIRESTORE"

var (
	once     sync.Once
	host     string
	startErr error
	proc     *exec.Cmd
	logPath  string
)

// Main runs the tests of a package that uses the emulator and stops the emulator afterwards.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Host returns the emulator address and points FIRESTORE_EMULATOR_HOST at it. Without gcloud the
// test is skipped with one line, or fails when OMNIMEMBER_REQUIRE_FIRESTORE=1.
func Host(t testing.TB) string {
	t.Helper()
	once.Do(func() { host, startErr = start() })
	if startErr != nil {
		if _, missing := startErr.(gcloudMissing); missing && os.Getenv(RequireEnv) != "1" {
			t.Skipf("firestore emulator: %v (set %s=1 to make this a failure)", startErr, RequireEnv)
		}
		t.Fatalf("firestore emulator: %v", startErr)
	}
	return host
}

// Start starts the emulator (once) outside a test, for harnesses; Stop ends it.
func Start() (string, error) {
	once.Do(func() { host, startErr = start() })
	return host, startErr
}

// ProjectID is a fresh project id, so each test sees an empty database.
func ProjectID(t testing.TB) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "omnimember-test-" + hex.EncodeToString(b)
}

type gcloudMissing struct{ error }

func start() (string, error) {
	if h := os.Getenv("FIRESTORE_EMULATOR_HOST"); h != "" {
		return h, nil
	}
	gcloud, err := exec.LookPath("gcloud")
	if err != nil {
		return "", gcloudMissing{fmt.Errorf("the gcloud command is not installed")}
	}
	addr, err := freeAddr()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "firestore-emulator-")
	if err != nil {
		return "", err
	}
	logPath = filepath.Join(dir, "emulator.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	proc = exec.Command(gcloud, "emulators", "firestore", "start", "--host-port="+addr, "--quiet")
	proc.Stdout, proc.Stderr = logFile, logFile
	// A process group, so Stop also ends the Java server gcloud starts.
	proc.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := proc.Start(); err != nil {
		return "", fmt.Errorf("start gcloud emulators firestore: %w", err)
	}
	if err := waitReady(addr, 120*time.Second); err != nil {
		Stop()
		return "", fmt.Errorf("%w; emulator log:\n%s", err, tail(logPath))
	}
	_ = os.Setenv("FIRESTORE_EMULATOR_HOST", addr)
	return addr, nil
}

// Stop ends the emulator this binary started, if any.
func Stop() {
	if proc != nil && proc.Process != nil {
		_ = syscall.Kill(-proc.Process.Pid, syscall.SIGKILL)
		_ = proc.Wait()
		proc = nil
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitReady polls the emulator's root URL, which answers "Ok" once it serves.
func waitReady(addr string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("emulator on %s not ready within %s", addr, within)
		case <-tick.C:
		}
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}
