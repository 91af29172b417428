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
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/omnimember/omnimember/shared/credential"
	"github.com/omnimember/omnimember/shared/identity"
)

// Functions are the processes of the chain, started in this order.
var Functions = []string{"ingest", "match", "points-award", "tier-evaluate", "notify", "profile"}

// Chained are the functions with a durable JetStream consumer.
var Chained = []string{"match", "points-award", "tier-evaluate", "notify", "profile"}

// Stores the harness runs the chain on.
const (
	// StoreFirestore: every function its own process, sharing the Firestore emulator, as deployed.
	StoreFirestore = "firestore"
	// StoreEmbedded: the embedded store is one file one process opens, so the functions run together
	// in the all-in-one process (make run's) against the separate nats-server.
	StoreEmbedded = "embedded"
	allInOne      = "omnimember"
)

// Config says how to run the cluster.
type Config struct {
	Dir           string        // binaries, NATS' files and every process' log
	Repo          string        // the repository root (to build from and for the default rules)
	Store         string        // StoreFirestore or StoreEmbedded
	FirestoreHost string        // the emulator every function shares (StoreFirestore)
	SyncAlways    bool          // nats-server fsyncs every write (sync_interval: always)
	AckWait       time.Duration // the functions' ack wait: how soon a paused function's messages come back
	AdminToken    string
	// SenderToken posts the workload (any source); ReaderToken looks the people up at the end.
	SenderToken, ReaderToken string
}

// Cluster is a running nats-server and the processes that run the functions.
type Cluster struct {
	cfg     Config
	mu      sync.Mutex // addr changes when a restart finds its port taken
	env     []string   // every process' environment but its address
	NATS    *Proc
	NATSURL string
	Procs   map[string]*Proc  // by process name: a function's, or the all-in-one's
	addr    map[string]string // process → host:port of its HTTP server
	serves  map[string]string // function → the process that runs it
	// Pausable are the processes whose pause makes JetStream redeliver (they hold consumers).
	Pausable []string
}

// Addr is where a function's HTTP routes answer now.
func (c *Cluster) Addr(function string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if name, ok := c.serves[function]; ok {
		return c.addr[name]
	}
	return c.addr[function]
}

// SenderToken is the credential every process accepts at /v1/events.
func (c *Cluster) SenderToken() string { return c.cfg.SenderToken }

// ReaderToken is the credential every process accepts at the profile routes.
func (c *Cluster) ReaderToken() string { return c.cfg.ReaderToken }

// Names lists the processes (nats-server aside).
func (c *Cluster) Names() []string {
	names := make([]string, 0, len(c.Procs))
	for _, f := range append(Functions, allInOne) {
		if c.Procs[f] != nil {
			names = append(names, f)
		}
	}
	return names
}

// Build compiles nats-server (from the nats-server module the project already uses), every
// function as it deploys (each alone, static) and the all-in-one.
func Build(ctx context.Context, repo, bin string) error {
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	scripts := filepath.Join(repo, "scripts")
	builds := [][]string{{scripts, "-o", filepath.Join(bin, "nats-server"), "github.com/nats-io/nats-server/v2"},
		{scripts, "-o", filepath.Join(bin, allInOne), "./cmd/omnimember"}}
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

// StartCluster starts nats-server, then the functions' processes, and waits until each is ready.
func StartCluster(cfg Config) (*Cluster, error) {
	c := &Cluster{cfg: cfg, Procs: map[string]*Proc{}, addr: map[string]string{}, serves: map[string]string{}}
	if err := c.startNATS(); err != nil {
		return nil, err
	}
	var err error
	if c.env, err = c.functionEnv(); err != nil {
		return nil, err
	}
	procs := Functions
	c.Pausable = Chained
	if cfg.Store == StoreEmbedded {
		procs, c.Pausable = []string{allInOne}, []string{allInOne}
	}
	for _, f := range Functions {
		c.serves[f] = f
		if cfg.Store == StoreEmbedded {
			c.serves[f] = allInOne
		}
	}
	for _, name := range procs {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		c.addr[name] = addr
		c.Procs[name] = &Proc{Name: name, Bin: filepath.Join(cfg.Dir, "bin", name), Log: filepath.Join(cfg.Dir, name+".log")}
		if err := c.Restart(name); err != nil {
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
	env := []string{
		"NATS_URL=" + c.NATSURL, "OMNIMEMBER_PII_KEYS=c1:" + base64.StdEncoding.EncodeToString(key),
		"OMNIMEMBER_IDENTITY_KEYS=" + identity.NewKey("c1"),
		"OMNIMEMBER_ADMIN_TOKEN=" + c.cfg.AdminToken,
		credential.SendersEnv + `=[{"name":"chaos","token":"` + c.cfg.SenderToken + `","sources":["*"]}]`,
		// The verification looks every person up at once: a reader with a rate to match.
		credential.ReadersEnv + `=[{"name":"chaos","token":"` + c.cfg.ReaderToken + `","scopes":["lookup"],"lookupsPerMinute":600000,"lookupBurst":10000}]`,
		"OMNIMEMBER_ACK_WAIT=" + c.cfg.AckWait.String(),
		// Under faults an event may need many attempts; the dead-letter stream is for poison, not for
		// a restarting neighbour. The harness counts dead letters as lost effects.
		"OMNIMEMBER_MAX_DELIVER=50", "OMNIMEMBER_BACKOFF=100ms,500ms,1s,2s",
		"OMNIMEMBER_CONCURRENCY=16", "OMNIMEMBER_LOG_LEVEL=warn", "OMNIMEMBER_SHUTDOWN_TIMEOUT=5s",
		// Webhook batches as atomic batches (what a lone server with sync_interval always wants),
		// so the faults also hit that path: a batch retried after one goes again event by event.
		"OMNIMEMBER_ATOMIC_BATCHES=true",
		// The ground truth follows MISSION §5's defaults; make run would load the richer example.
		"LOYALTY_RULES_FILE=" + filepath.Join(c.cfg.Repo, "shared", "loyalty", "defaults.yaml"),
	}
	if c.cfg.Store == StoreEmbedded {
		return append(env, "OMNIMEMBER_EXTERNAL_NATS="+c.NATSURL, "OMNIMEMBER_DATA="+filepath.Join(c.cfg.Dir, "data"),
			"OMNIMEMBER_DEMO=0", "OMNIMEMBER_NATS_PORT=0"), nil
	}
	return append(env, "STORE=firestore", "FIRESTORE_EMULATOR_HOST="+c.cfg.FirestoreHost,
		"FIRESTORE_PROJECT=chaos-"+hex.EncodeToString(project)), nil
}

// Restart starts a process and waits for its /readyz. A process that exits while starting (NATS
// is down at that moment, say) is started again with backoff, as the kubelet would.
func (c *Cluster) Restart(name string) error {
	p := c.Procs[name]
	deadline := time.Now().Add(90 * time.Second)
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		if !p.Running() {
			time.Sleep(backoff(attempt)) // CrashLoopBackOff, shortened
			if err := c.start(p); err != nil {
				return err
			}
		}
		if resp, err := http.Get("http://" + c.Addr(name) + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond) // polling an HTTP endpoint: nothing to wait on
	}
	return fmt.Errorf("%s not ready in 90 s; see %s", name, p.Log)
}

// start starts a process on its address, or on a new one if another program took the port
// while it was down (the machine runs other tests).
func (c *Cluster) start(p *Proc) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, err := net.Listen("tcp", c.addr[p.Name]); err == nil {
		l.Close()
	} else if c.addr[p.Name], err = freeAddr(); err != nil {
		return err
	}
	p.Env = append(c.env[:len(c.env):len(c.env)], "OMNIMEMBER_HTTP_ADDR="+c.addr[p.Name])
	return p.Start()
}

// Stop drains every function, then nats-server.
func (c *Cluster) Stop() {
	for _, p := range c.Procs {
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
