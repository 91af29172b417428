package runtime

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// NATSOptions are the connection options of a process with this configuration: its name,
// endless reconnects, its NATS user (NATS_CREDS, a JWT credentials file, or NATS_NKEY, an nkey
// seed file), the CA it verifies the server's certificate with (NATS_CA; TLS is then required)
// and the prefix of its reply inboxes (NATS_INBOX_PREFIX, the only inbox its user may read in
// production). Tools that connect outside a Runtime (dead letters, backfill) use them too.
func (c Config) NATSOptions(name string) ([]nats.Option, error) {
	opts := []nats.Option{nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second)}
	switch {
	case c.NATSCreds != "":
		opts = append(opts, nats.UserCredentials(c.NATSCreds))
	case c.NATSNKey != "":
		o, err := nats.NkeyOptionFromSeed(c.NATSNKey)
		if err != nil {
			return nil, fmt.Errorf("NATS_NKEY: %w", err)
		}
		opts = append(opts, o)
	}
	if c.NATSCA != "" {
		opts = append(opts, nats.RootCAs(c.NATSCA))
	}
	if c.NATSInboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(c.NATSInboxPrefix))
	}
	return opts, nil
}

// natsErrors checks the NATS settings that name files or subjects: one user at most, a seed
// that is a user's, a CA file that holds certificates, an inbox prefix NATS accepts.
func (c Config) natsErrors() []error {
	var errs []error
	if c.NATSCreds != "" && c.NATSNKey != "" {
		errs = append(errs, errors.New("NATS_CREDS and NATS_NKEY: set one user, not both"))
	}
	if c.NATSNKey != "" {
		if _, err := nats.NkeyOptionFromSeed(c.NATSNKey); err != nil {
			errs = append(errs, fmt.Errorf("NATS_NKEY: want a file holding a user nkey seed: %w", err))
		}
	}
	if c.NATSCA != "" {
		if err := checkCA(c.NATSCA); err != nil {
			errs = append(errs, fmt.Errorf("NATS_CA: %w", err))
		}
	}
	if p := c.NATSInboxPrefix; p != "" && (strings.ContainsAny(p, "*> \t\r\n") || strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".")) {
		errs = append(errs, fmt.Errorf("NATS_INBOX_PREFIX %q: want subject tokens without wildcards, spaces or outer dots", p))
	}
	return errs
}

// checkCA reads a PEM file and wants at least one certificate in it.
func checkCA(path string) error {
	pem, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		return fmt.Errorf("%s holds no PEM certificate", path)
	}
	return nil
}
