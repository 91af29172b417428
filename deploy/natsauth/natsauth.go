// Package natsauth makes the NATS credentials of a deployment: an nkey user per function and one
// for the operator's tools, and the JetStream encryption key, as the two Secrets the manifests read.
package natsauth

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/nats-io/nkeys"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Functions are the functions with a NATS user in base/nats.yaml (auth.conf), one per
// functions/<name>; Operator is the user of the tools run by hand (replay, backfill, renormalise).
var Functions = []string{"ingest", "match", "points-award", "tier-evaluate", "notify", "profile", "campaign"}

// Operator names the operator's user.
const Operator = "operator"

// Setup names the user of the deploy-time job (base/nats-setup.yaml) that makes the streams and
// every function's durable consumer before any function runs: it may create and update those and
// nothing else (no event, no pull, no delete).
const Setup = "nats-setup"

// Secret names and keys the manifests use.
const (
	// ServerSecret is read by the NATS servers: JETSTREAM_KEY and every user's public nkey.
	ServerSecret = "nats-server"
	// ClientSecret holds each user's seed; a function's pod mounts its own only.
	ClientSecret = "omnimember-nats"
	// JetStreamKeyKey is the encryption key's key in ServerSecret.
	JetStreamKeyKey = "jetstream-key"
)

// Users are every user of auth.conf.
func Users() []string { return append(append([]string(nil), Functions...), Setup, Operator) }

// PublicKeyKey is the key of user's public nkey in ServerSecret.
func PublicKeyKey(user string) string { return user + "-nkey" }

// SeedKey is the key of user's seed in ClientSecret.
func SeedKey(user string) string { return user + "-seed" }

// EnvName is the server's variable holding user's public nkey ($NKEY_POINTS_AWARD in auth.conf).
func EnvName(user string) string {
	return "NKEY_" + strings.ToUpper(strings.ReplaceAll(user, "-", "_"))
}

// InboxPrefix is where user's replies come: the only inbox auth.conf lets it read.
func InboxPrefix(user string) string { return "_INBOX_" + user }

// Generate makes a fresh nkey user for each of Users and a 256-bit JetStream key, as the Secrets
// of namespace: the server's (public keys and the key) and the clients' (seeds).
func Generate(namespace string) (server, clients corev1.Secret, err error) {
	meta := func(name string) corev1.Secret {
		return corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Type: corev1.SecretTypeOpaque, StringData: map[string]string{}}
	}
	server, clients = meta(ServerSecret), meta(ClientSecret)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return server, clients, fmt.Errorf("jetstream key: %w", err)
	}
	// Letters and digits only, starting with a letter: nats-server parses an environment
	// variable as a configuration value, where "//" or "#" would start a comment and digits a number.
	server.StringData[JetStreamKeyKey] = "k" + hex.EncodeToString(key)
	for _, u := range Users() {
		kp, err := nkeys.CreateUser()
		if err != nil {
			return server, clients, fmt.Errorf("nkey of %s: %w", u, err)
		}
		seed, err := kp.Seed()
		if err != nil {
			return server, clients, fmt.Errorf("seed of %s: %w", u, err)
		}
		public, err := kp.PublicKey()
		if err != nil {
			return server, clients, fmt.Errorf("public key of %s: %w", u, err)
		}
		server.StringData[PublicKeyKey(u)] = public
		clients.StringData[SeedKey(u)] = string(seed)
	}
	return server, clients, nil
}
