// Command chaos proves the chain under faults: nats-server and every function as their own
// processes on a shared Firestore (emulator), a generated multi-channel workload, kill -9 of random
// functions, pauses past the ack wait and nats-server restarts while it runs; then, once quiet,
// every member is compared with a ground truth computed from the input. Exit 1 on any lost,
// doubled or wrong effect.
//
//	chaos -people 500 -orders 5000 -fault-every 2s
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/omnimember/omnimember/scripts/chaos"
	"github.com/omnimember/omnimember/shared/store/firestore/firestoretest"
)

type config struct {
	people, orders, clients int
	faultEvery, ackWait     time.Duration
	faultFor                time.Duration
	seed                    uint64
	dir                     string
	syncAlways, keep        bool
	store                   string
}

func main() {
	var c config
	flag.IntVar(&c.people, "people", 400, "people in the workload")
	flag.IntVar(&c.orders, "orders", 4000, "orders in the workload (refunds, duplicates and re-sends come on top)")
	flag.IntVar(&c.clients, "clients", 4, "concurrent webhook senders")
	flag.DurationVar(&c.faultEvery, "fault-every", 2*time.Second, "mean time between faults (0: none)")
	flag.DurationVar(&c.faultFor, "fault-for", time.Minute, "keep injecting faults this long from the first event sent")
	// Firestore (and its emulator) lock documents in transactions: under contention on one member a
	// transaction can wait seconds, so the ack wait must stay well above that (production: 30 s).
	flag.DurationVar(&c.ackWait, "ack-wait", 30*time.Second, "the functions' ack wait (a pause lasts one second longer)")
	flag.Uint64Var(&c.seed, "seed", uint64(time.Now().UnixNano()), "workload and fault seed (printed; rerun with it)")
	flag.StringVar(&c.dir, "dir", "", "working directory for binaries, NATS files and logs (default: a temp dir)")
	flag.BoolVar(&c.syncAlways, "sync-always", false, "nats-server fsyncs every write")
	flag.BoolVar(&c.keep, "keep", false, "keep the working directory")
	flag.StringVar(&c.store, "store", chaos.StoreFirestore, "firestore: each function its own process on the emulator; embedded: the all-in-one process on its embedded store")
	flag.Parse()
	ok, err := run(c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

func run(c config) (bool, error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := workDir(c)
	if err != nil {
		return false, err
	}
	if !c.keep {
		defer os.RemoveAll(dir)
	}
	fmt.Printf("chaos: %s store, seed %d, %d people, %d orders, a fault every ~%s, logs in %s\n", c.store, c.seed, c.people, c.orders, c.faultEvery, dir)
	var host string
	switch c.store {
	case chaos.StoreFirestore:
		if host, err = firestoretest.Start(); err != nil {
			return false, fmt.Errorf("firestore emulator: %w", err)
		}
		defer firestoretest.Stop()
	case chaos.StoreEmbedded:
	default:
		return false, fmt.Errorf("-store %q: want %s or %s", c.store, chaos.StoreFirestore, chaos.StoreEmbedded)
	}
	repo, err := repoRoot()
	if err != nil {
		return false, err
	}
	if err := chaos.Build(ctx, repo, filepath.Join(dir, "bin")); err != nil {
		return false, err
	}
	cluster, err := chaos.StartCluster(chaos.Config{Dir: dir, Repo: repo, Store: c.store, FirestoreHost: host, SyncAlways: c.syncAlways, AckWait: c.ackWait,
		AdminToken: "chaos", SenderToken: "chaos-sender-" + rand.Text(), ReaderToken: "chaos-reader-" + rand.Text()})
	if err != nil {
		return false, err
	}
	defer cluster.Stop()
	return drive(ctx, c, cluster)
}

func drive(ctx context.Context, c config, cluster *chaos.Cluster) (bool, error) {
	w := chaos.Generate(c.people, c.orders, c.seed)
	// Faults go on while the chain works through the backlog, not only while webhooks arrive.
	faultCtx, stopFaults := context.WithTimeout(ctx, c.faultFor)
	faults := make(chan *chaos.Faults, 1)
	go func() {
		if c.faultEvery <= 0 {
			faults <- &chaos.Faults{}
			return
		}
		faults <- cluster.Inject(faultCtx, c.faultEvery, c.seed)
	}()
	start := time.Now()
	retries, err := chaos.Send(ctx, func() string { return cluster.Addr("ingest") }, cluster.SenderToken(), w.Events, c.clients, 25, c.faultFor/2)
	if err != nil {
		stopFaults()
		return false, err
	}
	fmt.Printf("sent %d events in %s (%d batches retried)\n", len(w.Events), time.Since(start).Round(time.Millisecond), retries)
	f := <-faults
	stopFaults()
	fmt.Printf("faults: %s\n", f)
	if len(f.Errors) > 0 {
		fmt.Printf("fault loop errors: %s\n", strings.Join(f.Errors, "; "))
	}
	if err := cluster.Heal(); err != nil {
		return false, err
	}
	quiet, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := cluster.Quiesce(quiet); err != nil {
		return false, err
	}
	fmt.Printf("quiet after %s\n", time.Since(start).Round(time.Millisecond))
	return report(ctx, cluster, w)
}

func report(ctx context.Context, cluster *chaos.Cluster, w *chaos.Workload) (bool, error) {
	r, err := chaos.Verify(ctx, cluster.Addr("profile"), cluster.ReaderToken(), w)
	if err != nil {
		return false, err
	}
	if r.DeadLetters, err = cluster.DeadLetters(ctx); err != nil {
		return false, err
	}
	notices, err := cluster.Notices(ctx)
	if err != nil {
		return false, err
	}
	r.CheckNotifications(w, notices)
	for i, p := range r.Problems {
		if i == 20 {
			fmt.Printf("  ... and %d more\n", len(r.Problems)-20)
			break
		}
		fmt.Println("  " + p)
	}
	verdict := "PASS"
	if !r.OK() {
		verdict = "FAIL"
	}
	fmt.Printf("%s: %d people and %d member notifications checked: %d lost, %d doubled, %d wrong, %d dead letters\n",
		verdict, r.People, r.Notifications, r.Lost, r.Doubled, r.Wrong, r.DeadLetters)
	return r.OK(), nil
}

func workDir(c config) (string, error) {
	if c.dir != "" {
		return c.dir, os.MkdirAll(c.dir, 0o755)
	}
	return os.MkdirTemp("", "omnimember-chaos-")
}

// repoRoot is the directory with go.work, from here upwards.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.work above the working directory: run from the repository")
		}
		dir = parent
	}
}
