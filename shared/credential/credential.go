// Package credential holds the bearer tokens of the chain's senders and readers: who they are, what
// each may send or read, constant-time matching and per-reader lookup rate limits.
package credential

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Errors of Authenticate. ErrMissing and ErrUnknown answer 401; ErrClosed (no token configured)
// answers 403: no credential could open the route.
var (
	ErrMissing = errors.New("a bearer token is required (Authorization: Bearer <token>)")
	ErrUnknown = errors.New("the bearer token is not valid")
	ErrClosed  = errors.New("no token is configured for this route: it is closed")
)

// MinTokenLength is the shortest token accepted: a random token of 16 characters or more cannot
// be guessed online.
const MinTokenLength = 16

var (
	namePattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	tokenPattern = regexp.MustCompile(`^[\x21-\x7e]+$`) // printable ASCII, no space: it travels in a header
)

// Bearer reads `Authorization: Bearer <token>` (the scheme in any case, RFC 7235).
func Bearer(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// tokenSet finds which configured token a presented one is, in a time that depends neither on
// which token matched nor on any token's length: every configured token is compared, as its
// SHA-256 against the presented token's, and the loop never stops early.
type tokenSet [][sha256.Size]byte

func newTokenSet(tokens []string) tokenSet {
	s := make(tokenSet, len(tokens))
	for i, t := range tokens {
		s[i] = sha256.Sum256([]byte(t))
	}
	return s
}

// find returns the index of the presented token, or -1.
func (s tokenSet) find(presented string) int {
	h := sha256.Sum256([]byte(presented))
	found := -1
	for i := range s {
		eq := subtle.ConstantTimeCompare(h[:], s[i][:])
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	return found
}

// Same says whether a presented token is the configured one, in a time that depends on neither's
// length or content (both compared as SHA-256 digests): the single-token routes' check (operator,
// API and marketer tokens).
func Same(presented, configured string) bool {
	return newTokenSet([]string{configured}).find(presented) == 0
}

// authenticate maps an Authorization header to the index of its token.
func (s tokenSet) authenticate(header string) (int, error) {
	token, ok := Bearer(header)
	if !ok {
		return -1, ErrMissing
	}
	if len(s) == 0 {
		return -1, ErrClosed
	}
	if i := s.find(token); i >= 0 {
		return i, nil
	}
	return -1, ErrUnknown
}

// checkIdentity validates the name and token every credential has, and that neither repeats.
func checkIdentity(kind, name, token string, names, tokens map[string]bool) []error {
	var errs []error
	where := fmt.Sprintf("%s %q", kind, name)
	if !namePattern.MatchString(name) {
		errs = append(errs, fmt.Errorf("%s: want a name of letters, digits, dots, dashes and underscores", where))
	}
	if names[name] {
		errs = append(errs, fmt.Errorf("%s appears twice", where))
	}
	switch {
	case len(token) < MinTokenLength:
		errs = append(errs, fmt.Errorf("%s: token shorter than %d characters", where, MinTokenLength))
	case !tokenPattern.MatchString(token):
		errs = append(errs, fmt.Errorf("%s: token must be printable ASCII without spaces", where))
	case tokens[token]:
		errs = append(errs, fmt.Errorf("%s: token is used by another %s", where, kind))
	}
	names[name], tokens[token] = true, true
	return errs
}

// decodeList reads a JSON array strictly: an unknown field (a misspelt scope) fails.
func decodeList[T any](raw []byte, what string) ([]T, error) {
	var list []T
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&list); err != nil {
		return nil, fmt.Errorf("%s: want a JSON array of objects: %w", what, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: trailing data after the JSON array", what)
	}
	return list, nil
}

// fromEnv reads a list from the file named by fileVar (a mounted Kubernetes secret; it wins) or
// from the variable itself; neither set gives nil.
func fromEnv(getenv func(string) string, envVar, fileVar string) ([]byte, string, error) {
	if path := getenv(fileVar); path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fileVar, fmt.Errorf("%s: %w", fileVar, err)
		}
		return raw, fileVar + " " + path, nil
	}
	if v := getenv(envVar); v != "" {
		return []byte(v), envVar, nil
	}
	return nil, "", nil
}
