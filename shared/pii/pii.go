// Package pii seals personal data (plaintext phone numbers) with AES-256-GCM under named keys, so
// stored values never show the number and keys can rotate: the key id travels with the ciphertext.
package pii

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
)

// Keyring seals with its current key and opens with any key it holds.
type Keyring struct {
	current string
	keys    map[string]cipher.AEAD
}

var keyID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// ParseKeyring reads `id:base64key[,id:base64key...]` (OMNIMEMBER_PII_KEYS); the first key seals,
// the others only open values sealed before a rotation. Keys are 32 random bytes.
func ParseKeyring(spec string) (*Keyring, error) {
	k := &Keyring{keys: map[string]cipher.AEAD{}}
	for i, part := range strings.Split(spec, ",") {
		id, b64, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok || !keyID.MatchString(id) {
			return nil, fmt.Errorf("pii key %d: want id:base64key with a short alphanumeric id", i+1)
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("pii key %q: want 32 bytes in standard base64", id)
		}
		if _, dup := k.keys[id]; dup {
			return nil, fmt.Errorf("pii key %q appears twice", id)
		}
		block, _ := aes.NewCipher(raw)
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		k.keys[id] = aead
		if i == 0 {
			k.current = id
		}
	}
	return k, nil
}

// NewKey returns a fresh `id:base64key` entry, for a development keyring or a rotation.
func NewKey(id string) string {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	return id + ":" + base64.StdEncoding.EncodeToString(raw)
}

// CurrentKeyID names the key new values are sealed with.
func (k *Keyring) CurrentKeyID() string { return k.current }

// Seal encrypts plaintext as `keyid:base64(nonce|ciphertext)`; purpose is bound as associated
// data, so a sealed phone cannot be passed off as another field.
func (k *Keyring) Seal(plaintext, purpose string) (string, error) {
	aead := k.keys[k.current]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	sealed := aead.Seal(nonce, nonce, []byte(plaintext), []byte(purpose))
	return k.current + ":" + base64.RawStdEncoding.EncodeToString(sealed), nil
}

// Open decrypts a value Seal produced under any key of the ring.
func (k *Keyring) Open(sealed, purpose string) (string, error) {
	id, b64, ok := strings.Cut(sealed, ":")
	if !ok {
		return "", errors.New("open: not a sealed value")
	}
	aead, ok := k.keys[id]
	if !ok {
		return "", fmt.Errorf("open: unknown key %q", id)
	}
	raw, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil || len(raw) < aead.NonceSize() {
		return "", errors.New("open: malformed sealed value")
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(purpose))
	if err != nil {
		return "", fmt.Errorf("open with key %q: %w", id, err)
	}
	return string(plain), nil
}

// KeysEnv names the variable holding the keyring.
const KeysEnv = "OMNIMEMBER_PII_KEYS"

// FromEnv reads the keyring from OMNIMEMBER_PII_KEYS.
func FromEnv() (*Keyring, error) {
	spec := os.Getenv(KeysEnv)
	if spec == "" {
		return nil, fmt.Errorf("%s is not set: give id:base64key (32 bytes), e.g. from a Kubernetes secret", KeysEnv)
	}
	k, err := ParseKeyring(spec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", KeysEnv, err)
	}
	return k, nil
}

// LogValue names the keys, never their bytes.
func (k *Keyring) LogValue() slog.Value {
	return slog.GroupValue(slog.String("current", k.current), slog.Int("keys", len(k.keys)))
}
