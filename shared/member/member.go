// Package member describes the stored member — identities, points account, tier state — as the
// functions write it and the profile reads it. Each collection has one writer.
package member

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"
	"time"

	"github.com/omnimember/omnimember/shared/tier"
)

// Collections and their single writer.
const (
	Members       = "members"       // match
	Identities    = "identities"    // match: identity key → OneID
	Accounts      = "accounts"      // points-award
	Orders        = "orders"        // points-award
	LedgerEntries = "ledger"        // points-award
	Tiers         = "tiers"         // tier-evaluate
	Notifications = "notifications" // notify
	Outbox        = "outbox"        // notify's embedded sink
)

// Pools a member can be in.
const (
	PoolPlaintext  = "plaintext"  // reachable: a plaintext phone or a WeCom/mini-program binding
	PoolCiphertext = "ciphertext" // only hashes, masks and platform ids
)

// Member is the match function's record of a person.
type Member struct {
	OneID      string           `json:"oneId"`
	CreatedAt  time.Time        `json:"createdAt"`
	UpdatedAt  time.Time        `json:"updatedAt"`
	Identities []StoredIdentity `json:"identities"`
	Channels   []string         `json:"channels"`
	Pool       string           `json:"pool"`
	MergedInto string           `json:"mergedInto,omitempty"`
	MergedFrom []string         `json:"mergedFrom,omitempty"`
}

// StoredIdentity is one identity of a member. A plaintext phone keeps only its sealed value and mask.
type StoredIdentity struct {
	Type      string    `json:"type"`
	Scope     string    `json:"scope,omitempty"`
	Key       string    `json:"key"`
	Value     string    `json:"value,omitempty"`
	Sealed    string    `json:"sealed,omitempty"`
	Masked    string    `json:"masked,omitempty"`
	Channel   string    `json:"channel"`
	FirstSeen time.Time `json:"firstSeen"`
}

// IdentityLink is the identities collection's document: which member an identity key belongs to.
type IdentityLink struct {
	OneID string    `json:"oneId"`
	Type  string    `json:"type"`
	Since time.Time `json:"since"`
}

// Account is the points-award function's view of a member: balance and order totals.
type Account struct {
	OneID        string    `json:"oneId"`
	Balance      int64     `json:"balance"`
	OrderCount   int64     `json:"orderCount"`
	NetAmountFen int64     `json:"netAmountFen"`
	MergedInto   string    `json:"mergedInto,omitempty"`
	UpdatedAt    time.Time `json:"updatedAt"`
}

// TierState is the tier-evaluate function's view of a member.
type TierState struct {
	OneID       string                   `json:"oneId"`
	Level       string                   `json:"level"`
	NetSpendFen int64                    `json:"netSpendFen"`
	Purchases   map[string]tier.Purchase `json:"purchases"`
	EvaluatedAt time.Time                `json:"evaluatedAt"`
	MergedInto  string                   `json:"mergedInto,omitempty"`
}

// OneIDFor derives the OneID a new member gets from the event that first saw it, so a retried
// handler proposes the same id: `om_` and 20 base32 characters.
func OneIDFor(source, eventID string) string {
	sum := sha256.Sum256([]byte("oneid\x00" + source + "\x00" + eventID))
	enc := base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:])
	return "om_" + strings.ToLower(enc[:20])
}

// MaxMergeHops bounds how far readers follow MergedInto pointers.
const MaxMergeHops = 8
