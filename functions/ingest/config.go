package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/omnimember/omnimember/shared/platform"
)

// Secrets are the webhook credentials of every platform: platform → shop key → name → value.
type Secrets map[string]platform.Credentials

// Environment variables holding the webhook secrets (the file wins when both are set: a mounted
// Kubernetes secret is the production path).
const (
	EnvWebhookSecrets     = "OMNIMEMBER_WEBHOOK_SECRETS"
	EnvWebhookSecretsFile = "OMNIMEMBER_WEBHOOK_SECRETS_FILE"
)

var platformName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// ParseSecrets reads `{"<platform>": {"<shop key>": {"secret": "...", ...}}}` and checks that every
// platform is named like a path segment and every shop has at least one non-empty value.
func ParseSecrets(raw []byte) (Secrets, error) {
	var s Secrets
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("webhook secrets: want {\"<platform>\": {\"<shop key>\": {\"<name>\": \"<value>\"}}}: %w", err)
	}
	if dec.More() {
		return nil, errors.New("webhook secrets: trailing data after the JSON object")
	}
	var errs []error
	for name, shops := range s {
		if !platformName.MatchString(name) {
			errs = append(errs, fmt.Errorf("webhook secrets: platform %q: want lowercase letters, digits and dashes", name))
		}
		for key, shop := range shops {
			if strings.TrimSpace(key) == "" {
				errs = append(errs, fmt.Errorf("webhook secrets: %s has an empty shop key", name))
			}
			if !hasValue(shop) {
				errs = append(errs, fmt.Errorf("webhook secrets: %s shop %q has no non-empty value", name, key))
			}
		}
	}
	return s, errors.Join(errs...)
}

func hasValue(shop platform.Shop) bool {
	for _, v := range shop {
		if v != "" {
			return true
		}
	}
	return false
}

// SecretsFromEnv reads OMNIMEMBER_WEBHOOK_SECRETS_FILE or OMNIMEMBER_WEBHOOK_SECRETS; neither set,
// or the file absent (an optional Kubernetes secret not created), means no shop is configured
// (every push then gets 404 unknown shop).
func SecretsFromEnv(getenv func(string) string) (Secrets, error) {
	if path := getenv(EnvWebhookSecretsFile); path != "" {
		raw, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			// deploy/ mounts the secret as optional: absent, no shop is configured (404 unknown
			// shop), as the start line's empty webhookSecrets shows; ingest still serves /v1/events.
			return Secrets{}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvWebhookSecretsFile, err)
		}
		s, err := ParseSecrets(raw)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", EnvWebhookSecretsFile, path, err)
		}
		return s, nil
	}
	if v := getenv(EnvWebhookSecrets); v != "" {
		s, err := ParseSecrets([]byte(v))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvWebhookSecrets, err)
		}
		return s, nil
	}
	return Secrets{}, nil
}

// Check refuses secrets for a platform no adapter serves (a typo would otherwise 404 silently).
func (s Secrets) Check(adapters map[string]platform.Adapter) error {
	var errs []error
	for name := range s {
		if _, ok := adapters[name]; !ok {
			errs = append(errs, fmt.Errorf("webhook secrets name platform %q, served are %v", name, adapterNames(adapters)))
		}
	}
	return errors.Join(errs...)
}

func adapterNames(adapters map[string]platform.Adapter) []string {
	names := make([]string, 0, len(adapters))
	for n := range adapters {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// LogValue shows platforms, shop keys and the names of their settings, never a value.
func (s Secrets) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, len(s))
	for _, name := range slices.Sorted(maps.Keys(s)) {
		shops := make([]slog.Attr, 0, len(s[name]))
		for _, key := range slices.Sorted(maps.Keys(s[name])) {
			shops = append(shops, slog.String(key, strings.Join(slices.Sorted(maps.Keys(s[name][key])), ",")+"=***"))
		}
		attrs = append(attrs, slog.Attr{Key: name, Value: slog.GroupValue(shops...)})
	}
	return slog.GroupValue(attrs...)
}
