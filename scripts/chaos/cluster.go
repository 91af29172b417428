package chaos

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
)

// Functions are the processes of the chain, started in this order.
var Functions = []string{"ingest", "match", "points-award", "tier-evaluate", "notify", "profile"}

// Chained are the functions with a durable JetStream consumer.
var Chained = []string{"match", "points-award", "tier-evaluate", "notify", "profile"}

// Config says how to run the cluster.
type Config struct {
	Dir           string        // binaries, NATS' files and every process' log
	Repo          string        // the repository root (to build from)
	FirestoreHost string        // the emulator every function shares
	SyncAlways    bool          // nats-server fsyncs every write (sync_interval: always)
	AckWait       time.Duration // the functions' ack wait: how soon a paused function's messages come back
	AdminToken    string
}

// Cluster is a running nats-server and one process per function.
type Cluster struct {
	cfg       Config
	NATS      *Proc
	NATSURL   string
	Functions map[string]*Proc
	Addr      map[string]string // function → host:port of its HTTP server
}

// Build compiles nats-server (from the nats-server module the project already uses) and every
// function, as they deploy: each function alone, static.
func Build(ctx context.Context, repo, bin string) error {
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	builds := [][]string{{filepath.Join(repo, "scripts"), "-o", filepath.Join(bin, "nats-server"), "github.com/nats-io/nats-server/v2"}}
	for _, f := range Functions {
		builds = append(builds, []string{filepath.Join(repo, "functions", f), "-o", filepath.Join(bin, f), "./cmd/" + f})
	}
	for _, b := range builds {
		cmd := exec.CommandContext(ctx, "go", append([]string{"build"}, b[1:]...)...)
		cmd.Dir = b[0]
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", b[len(b)-1], err, out)
		}
	}
	return nil
}

// StartCluster starts nats-server, then every function, and waits until each is ready.
func StartCluster(cfg Config) (*Cluster, error) {
	c := &Cluster{cfg: cfg, Functions: map[string]*Proc{}, Addr: map[string]string{}}
	if err := c.startNATS(); err != nil {
		return nil, err
	}
	env, err := c.functionEnv()
	if err != nil {
		return nil, err
	}
	for _, f := range Functions {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		c.Addr[f] = addr
		p := &Proc{Name: f, Bin: filepath.Join(cfg.Dir, "bin", f), Log: filepath.Join(cfg.Dir, f+".log"),
			Env: append(env, "OMNIMEMBER_HTTP_ADDR="+addr)}
		c.Functions[f] = p
		if err := c.Restart(f); err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

func (c *Cluster) startNATS() error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(addr)
	sync := ""
	if c.cfg.SyncAlways {
		sync = "sync_interval: always"
	}
	conf := filepath.Join(c.cfg.Dir, "nats.conf")
	err = os.WriteFile(conf, fmt.Appendf(nil, "host: 127.0.0.1\nport: %s\nserver_name: chaos\njetstream {\n  store_dir: %q\n  %s\n}\n",
		port, filepath.Join(c.cfg.Dir, "jetstream"), sync), 0o644)
	if err != nil {
		return err
	}
	c.NATSURL = "nats://" + addr
	c.NATS = &Proc{Name: "nats-server", Bin: filepath.Join(c.cfg.Dir, "bin", "nats-server"), Args: []string{"-c", conf},
		Log: filepath.Join(c.cfg.Dir, "nats-server.log")}
	return c.RestartNATS()
}

// RestartNATS starts nats-server (again, on the same files) and waits until JetStream answers.
func (c *Cluster) RestartNATS() error {
	if err := c.NATS.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		nc, err := nats.Connect(c.NATSURL, nats.Timeout(time.Second))
		if err == nil {
			nc.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond) // polling a port: nothing to wait on
	}
	return fmt.Errorf("nats-server did not come up; see %s", c.NATS.Log)
}

func (c *Cluster) functionEnv() ([]string, error) {
	key := make([]byte, 32)
	project := make([]byte, 6)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if _, err := rand.Read(project); err != nil {
		return nil, err
	}
	return []string{
		"NATS_URL=" + c.NATSURL, "STORE=firestore", "FIRESTORE_EMULATOR_HOST=" + c.cfg.FirestoreHost,
		"FIRESTORE_PROJECT=chaos-" + hex.EncodeToString(project),
		"OMNIMEMBER_PII_KEYS=c1:" + base64.StdEncoding.EncodeToString(key),
		"OMNIMEMBER_ADMIN_TOKEN=" + c.cfg.AdminToken,
		"OMNIMEMBER_ACK_WAIT=" + c.cfg.AckWait.String(),
		// Under faults an event may need many attempts; the dead-letter stream is for poison, not for
		// a restarting neighbour. The harness counts dead letters as lost effects.
		"OMNIMEMBER_MAX_DELIVER=50", "OMNIMEMBER_BACKOFF=100ms,500ms,1s,2s",
		"OMNIMEMBER_CONCURRENCY=16", "OMNIMEMBER_LOG_LEVEL=warn", "OMNIMEMBER_SHUTDOWN_TIMEOUT=5s",
	}, nil
}

// Restart starts a function and waits for its /readyz.
func (c *Cluster) Restart(function string) error {
	p := c.Functions[function]
	if err := p.Start(); err != nil {
		return err
	}
	url := "http://" + c.Addr[function] + "/readyz"
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if !p.Running() {
			return fmt.Errorf("%s exited at start; see %s", function, p.Log)
		}
		time.Sleep(20 * time.Millisecond) // polling an HTTP endpoint: nothing to wait on
	}
	return fmt.Errorf("%s not ready in 60 s; see %s", function, p.Log)
}

// Stop drains every function, then nats-server.
func (c *Cluster) Stop() {
	for _, p := range c.Functions {
		p.Stop(10 * time.Second)
	}
	if c.NATS != nil {
		c.NATS.Stop(10 * time.Second)
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
