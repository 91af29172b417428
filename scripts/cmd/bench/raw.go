package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnimember/omnimember/shared/broker"
	"github.com/omnimember/omnimember/shared/stream"
)

// The raw JetStream rate: what the broker does alone on this machine, the yardstick of every
// chain figure. Production runs three servers with every stream on each (deploy/base/nats.yaml);
// the cluster runs here put them in one process on the same two cores, so they show how the
// settings compare, not what separate machines would reach.

// rawVariants measures the raw rate under production's durability: fsync per message on one
// server and on three, one by one and in atomic batches. A fraction of the messages: it is slower.
func rawVariants(n int, raw float64) error {
	variants := []struct {
		label string
		run   rawRun
		share int
	}{
		{"  the same with sync_interval: always (fsync per message)", rawRun{syncAlways: true}, 10},
		{fmt.Sprintf("  atomic batches of %d, default interval", rawBatch), rawRun{batch: rawBatch}, 4},
		{fmt.Sprintf("  atomic batches of %d, sync_interval: always", rawBatch), rawRun{syncAlways: true, batch: rawBatch}, 4},
		{"  3 servers, 3 replicas, sync_interval: always", rawRun{syncAlways: true, servers: 3}, 10},
		{fmt.Sprintf("  3 servers, 3 replicas, always, atomic batches of %d", rawBatch), rawRun{syncAlways: true, servers: 3, batch: rawBatch}, 10},
	}
	for _, v := range variants {
		rate, err := rawJetStream(n/v.share, v.run)
		if err != nil {
			return fmt.Errorf("raw JetStream, %s: %w", strings.TrimSpace(v.label), err)
		}
		fmt.Printf("  %-58s %10.0f msg/s  (%.1f%% of the default)\n", v.label, rate, 100*rate/raw)
	}
	return nil
}

// rawBatch is the size of the raw benchmark's atomic batches: a webhook batch's worth.
const rawBatch = 100

// rawRun is one raw measurement: the broker's durability, its size, and how messages are published.
type rawRun struct {
	syncAlways bool
	servers    int // 1, or a cluster with every message on each (replicas = servers)
	batch      int // atomic batches of this size; 0 publishes one by one, asynchronously
}

func rawJetStream(n int, run rawRun) (float64, error) {
	dir, err := os.MkdirTemp("", "omnimember-bench-raw-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	nc, stop, err := startRawBroker(dir, run)
	if err != nil {
		return 0, err
	}
	defer stop()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return 0, err
	}
	ctx := context.Background()
	if err := createRawStream(ctx, js, max(1, run.servers)); err != nil {
		return 0, err
	}
	cons, err := js.CreateConsumer(ctx, "BENCH", jetstream.ConsumerConfig{Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 10000})
	if err != nil {
		return 0, err
	}
	var consumed atomic.Int64
	done := make(chan struct{})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		if consumed.Add(1) == int64(n) {
			close(done)
		}
	}, jetstream.PullMaxMessages(1000))
	if err != nil {
		return 0, err
	}
	defer cc.Stop()
	start := time.Now()
	if err := publishRaw(ctx, js, nc, n, run.batch); err != nil {
		return 0, err
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		return 0, fmt.Errorf("consumed %d of %d", consumed.Load(), n)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// publishRaw publishes n 400-byte messages, asynchronously one by one or in atomic batches, and
// returns once JetStream has stored them all.
func publishRaw(ctx context.Context, js jetstream.JetStream, nc *nats.Conn, n, batch int) error {
	payload := bytes.Repeat([]byte("x"), 400)
	if batch > 0 {
		return publishAtomicBatches(ctx, nc, n, batch, payload)
	}
	for i := range n {
		if _, err := js.PublishAsync(fmt.Sprintf("bench.%d", i%16), payload, jetstream.WithStallWait(time.Minute)); err != nil {
			return err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
		return nil
	case <-time.After(2 * time.Minute):
		return fmt.Errorf("publishes not acknowledged")
	}
}

// publishAtomicBatches publishes n messages in atomic batches of size from four publishers, as
// ingest's concurrent webhook batches do.
func publishAtomicBatches(ctx context.Context, nc *nats.Conn, n, size int, payload []byte) error {
	batches := make(chan int, n/size+1)
	for i := 0; i < n; i += size {
		batches <- min(size, n-i)
	}
	close(batches)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			for k := range batches {
				msgs := make([]*nats.Msg, k)
				for j := range msgs {
					msgs[j] = &nats.Msg{Subject: fmt.Sprintf("bench.%d", j%16), Data: payload, Header: nats.Header{}}
				}
				if err := stream.PublishAtomic(ctx, nc, msgs); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			return err
		}
	}
	return nil
}

// startRawBroker starts one embedded server, or a cluster of run.servers joined by routes, and
// connects to the first.
func startRawBroker(dir string, run rawRun) (*nats.Conn, func(), error) {
	if run.servers <= 1 {
		srv, err := broker.Start(broker.Options{Dir: dir, SyncAlways: run.syncAlways})
		if err != nil {
			return nil, nil, err
		}
		nc, err := srv.Connect("bench-raw")
		if err != nil {
			srv.Shutdown()
			return nil, nil, err
		}
		return nc, func() { nc.Close(); srv.Shutdown() }, nil
	}
	servers, err := startCluster(dir, run.servers, run.syncAlways)
	if err != nil {
		return nil, nil, err
	}
	stop := func() {
		for _, s := range servers {
			s.Shutdown()
			s.WaitForShutdown()
		}
	}
	nc, err := nats.Connect("", nats.InProcessServer(servers[0]), nats.Name("bench-raw"))
	if err != nil {
		stop()
		return nil, nil, err
	}
	return nc, func() { nc.Close(); stop() }, nil
}

func startCluster(dir string, n int, syncAlways bool) ([]*server.Server, error) {
	ports := make([]int, n)
	routes := make([]string, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", ports[i])
	}
	var servers []*server.Server
	for i := range n {
		name := fmt.Sprintf("bench-%d", i)
		srv, err := server.NewServer(&server.Options{ServerName: name, JetStream: true, StoreDir: filepath.Join(dir, name),
			Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true, SyncAlways: syncAlways,
			Cluster: server.ClusterOpts{Name: "bench", Host: "127.0.0.1", Port: ports[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ","))})
		if err != nil {
			return nil, err
		}
		srv.Start()
		servers = append(servers, srv)
	}
	for _, s := range servers {
		if !s.ReadyForConnections(10 * time.Second) {
			return nil, errors.New("cluster server not ready within 10s")
		}
	}
	return servers, nil
}

// createRawStream creates the benchmark's stream, waiting for a cluster to elect its leaders.
func createRawStream(ctx context.Context, js jetstream.JetStream, replicas int) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BENCH", Subjects: []string{"bench.>"},
			Storage: jetstream.FileStorage, Replicas: replicas, AllowAtomicPublish: true})
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond) // a JetStream cluster elects its meta leader first; no event to wait on
	}
}
