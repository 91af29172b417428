package identity

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"

	"github.com/omnimember/omnimember/events"
)

// KeysEnv names the variable holding the identity keys: `id:base64key[,older...]`.
const KeysEnv = "OMNIMEMBER_IDENTITY_KEYS"

// Keyer computes the keyed forms of normalised identities with HMAC-SHA256 under named secrets, so
// nothing stored or published from match on can be turned back into a phone by hashing guesses: an
// 11-digit mobile number's plain SHA-256 or MD5 is reversed in seconds. The first secret is
// current; older ones stay listed after a rotation so lookups still find what they keyed, until a
// rekey has moved every stored identity to the current one.
type Keyer struct {
	ids     []string // current first
	secrets map[string][]byte
}

var (
	keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)
	// keyedPattern is a keyed value: the key id, a colon and 40 hex digits (160 bits of HMAC).
	keyedPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}:[0-9a-f]{40}$`)
)

// ParseKeys reads `id:base64key[,id:base64key...]`: 32-byte secrets in standard base64 under short
// alphanumeric ids, the first one current.
func ParseKeys(spec string) (*Keyer, error) {
	k := &Keyer{secrets: map[string][]byte{}}
	for i, part := range strings.Split(spec, ",") {
		id, b64, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok || !keyIDPattern.MatchString(id) {
			return nil, fmt.Errorf("identity key %d: want id:base64key with a short alphanumeric id", i+1)
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("identity key %q: want 32 bytes in standard base64", id)
		}
		if _, dup := k.secrets[id]; dup {
			return nil, fmt.Errorf("identity key %q appears twice", id)
		}
		k.ids = append(k.ids, id)
		k.secrets[id] = raw
	}
	return k, nil
}

// KeysFromEnv reads the identity keys from OMNIMEMBER_IDENTITY_KEYS.
func KeysFromEnv() (*Keyer, error) {
	spec := os.Getenv(KeysEnv)
	if spec == "" {
		return nil, fmt.Errorf("%s is not set: give id:base64key (32 bytes), e.g. from a Kubernetes secret", KeysEnv)
	}
	k, err := ParseKeys(spec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", KeysEnv, err)
	}
	return k, nil
}

// NewKey returns a fresh `id:base64key` entry, for a development key or a rotation.
func NewKey(id string) string {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	return id + ":" + base64.StdEncoding.EncodeToString(raw)
}

// CurrentKeyID names the key new identities are keyed with.
func (k *Keyer) CurrentKeyID() string { return k.ids[0] }

// Holds reports whether the keyer holds the key of that id.
func (k *Keyer) Holds(kid string) bool {
	_, ok := k.secrets[kid]
	return ok
}

// LogValue names the keys, never their bytes.
func (k *Keyer) LogValue() slog.Value {
	return slog.GroupValue(slog.String("current", k.ids[0]), slog.Int("keys", len(k.ids)))
}

// Form is one normalised identity under one key.
type Form struct {
	// Identity is what may be stored and published: a phone hash's value replaced by its keyed
	// value; a plaintext phone is left for match to seal and mask; other types unchanged.
	Identity events.Identity
	// Key is the identity's document key (a phone and its SHA-256 share one); for a phone hash it
	// is also its keyed value.
	Key string
	// Tombstone is the id of the tombstone an erasure leaves for it: keyed apart from Key, so what
	// an erasure leaves cannot be joined with what other documents or events carried.
	Tombstone string
}

// Current is the form of a normalised identity under the current key.
func (k *Keyer) Current(id events.Identity) Form { return k.form(k.ids[0], id) }

// Forms are the forms of a normalised identity under every key, current first: a lookup during a
// rotation tries each.
func (k *Keyer) Forms(id events.Identity) []Form {
	out := make([]Form, len(k.ids))
	for i, kid := range k.ids {
		out[i] = k.form(kid, id)
	}
	return out
}

// Key is the document key of a normalised identity under the current key.
func (k *Keyer) Key(id events.Identity) string { return k.Current(id).Key }

// Keys are the document keys of a normalised identity under every key, current first.
func (k *Keyer) Keys(id events.Identity) []string {
	out := make([]string, len(k.ids))
	for i, kid := range k.ids {
		out[i] = k.form(kid, id).Key
	}
	return out
}

// ErrUnknownKey says a keyed value names a key the keyer does not hold (retired, or never given).
var ErrUnknownKey = errors.New("identity key not held")

// Tombstone is the tombstone id of a document key, under the key that made it.
func (k *Keyer) Tombstone(key string) (string, error) {
	kid := KeyID(key)
	if _, ok := k.secrets[kid]; !ok {
		return "", fmt.Errorf("tombstone of %s: %w: %q", key, ErrUnknownKey, kid)
	}
	return k.mac(kid, "tombstone", key), nil
}

func (k *Keyer) form(kid string, id events.Identity) Form {
	base := id // a phone keys as its SHA-256, so that a platform's hash meets it
	if id.Type == Phone {
		base = events.Identity{Type: PhoneSHA256Type, Value: PhoneSHA256(id.Value)}
	}
	key := k.mac(kid, "key", base.Type, base.Scope, base.Value)
	if IsPhoneHash(id.Type) {
		id.Value = key
	}
	return Form{Identity: id, Key: key, Tombstone: k.mac(kid, "tombstone", key)}
}

// mac is `kid:` and the first 40 hex digits of HMAC-SHA256 over the purpose and parts.
func (k *Keyer) mac(kid string, purpose string, parts ...string) string {
	m := hmac.New(sha256.New, k.secrets[kid])
	m.Write([]byte(purpose))
	for _, p := range parts {
		m.Write([]byte{0})
		m.Write([]byte(p))
	}
	return kid + ":" + hex.EncodeToString(m.Sum(nil))[:40]
}

// IsPhoneHash reports whether an identity type is a hash of the phone, which only travels keyed
// after match.
func IsPhoneHash(idType string) bool { return idType == PhoneSHA256Type || idType == PhoneMD5Type }

// IsKeyed reports whether a value is a keyed value (`keyid:` and 40 hex digits).
func IsKeyed(value string) bool { return keyedPattern.MatchString(value) }

// KeyID is the id of the key a keyed value or document key was made with ("" if none).
func KeyID(keyed string) string {
	if !IsKeyed(keyed) {
		return ""
	}
	kid, _, _ := strings.Cut(keyed, ":")
	return kid
}
