// Package broker runs NATS with JetStream inside the process, on disk: the embedded default of
// `make run`, and the real broker of the tests.
package broker

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Options configure the embedded server.
type Options struct {
	// Dir holds JetStream's files.
	Dir string
	// Host and Port to listen on for other processes; Port -1 picks a free one, 0 does not listen.
	Host string
	Port int
	// SyncAlways fsyncs every message (survives an OS crash); otherwise the server syncs on its
	// interval and written messages survive a kill of any process in the OS page cache.
	SyncAlways bool
	// EncryptionKey, if set, encrypts JetStream's files at rest (AES-GCM): events before match carry
	// plaintext phones. Changing it needs the old key as OldEncryptionKey for one start.
	EncryptionKey    string
	OldEncryptionKey string
}

// Server is a running embedded NATS server.
type Server struct {
	srv *server.Server
}

// Start starts the server and waits until it accepts connections.
func Start(o Options) (*Server, error) {
	if o.Dir == "" {
		return nil, errors.New("broker: a JetStream directory is required")
	}
	opts := &server.Options{
		ServerName: "omnimember-embedded", JetStream: true, StoreDir: o.Dir,
		Host: o.Host, Port: o.Port, DontListen: o.Port == 0, NoSigs: true, NoLog: true,
		SyncAlways: o.SyncAlways, MaxPayload: 8 << 20,
		JetStreamKey: o.EncryptionKey, JetStreamOldKey: o.OldEncryptionKey, JetStreamCipher: server.AES,
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("configure embedded nats: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embedded nats did not become ready within 10s")
	}
	return &Server{srv: srv}, nil
}

// URL is the client URL for other processes (empty when not listening).
func (s *Server) URL() string {
	if s.srv.Addr() == nil {
		return ""
	}
	return s.srv.ClientURL()
}

// Connect opens an in-process client connection (no TCP).
func (s *Server) Connect(name string) (*nats.Conn, error) {
	return nats.Connect("", nats.InProcessServer(s.srv), nats.Name(name), nats.MaxReconnects(-1))
}

// Shutdown stops the server and waits for it.
func (s *Server) Shutdown() {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}
