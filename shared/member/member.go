// Package member describes the stored member — identities, points account, tier state — as the
// functions write it and the profile reads it. Each collection has one writer.
package member

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/ledger"
	"github.com/omnimember/omnimember/shared/loyalty"
	"github.com/omnimember/omnimember/shared/receipt"
	"github.com/omnimember/omnimember/shared/store"
)

// Collections and their single writer.
const (
	Members       = "members"            // match
	Identities    = "identities"         // match: identity key → OneID
	Accounts      = "accounts"           // points-award
	Orders        = "orders"             // points-award
	LedgerEntries = "ledger"             // points-award
	Tiers         = "tiers"              // tier-evaluate
	TierJobs      = "tier_jobs"          // tier-evaluate: what its evaluation job has done once (migrations)
	Notifications = "notifications"      // notify
	Outbox        = "outbox"             // notify's embedded sink
	Conflicts     = "identity_conflicts" // match: merges and identities refused by a limit
	Quarantine    = "quarantine"         // match: events held for an operator
	Tombstones    = "tombstones"         // match: tombstone ids (identity.Form.Tombstone) of identities erased on request
	Audit         = "audit"              // match: operator actions
	Activities    = "activity"           // profile: interactions by channel
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
	History    []HistoryEntry   `json:"history,omitempty"`
	ErasedAt   *time.Time       `json:"erasedAt,omitempty"`
}

// History kinds.
const (
	HistoryMerged   = "merged"   // other members were absorbed into this one
	HistoryAbsorbed = "absorbed" // this member was absorbed into MergedInto
	HistorySplit    = "split"    // identities left this member
	HistoryRestored = "restored" // this member came back from a split
	HistoryConflict = "conflict" // a merge or an identity was refused by a rule
	HistoryErased   = "erased"   // personal data erased on request
)

// HistoryEntry is one audited change of a member's identity.
type HistoryEntry struct {
	At       time.Time `json:"at"`
	Kind     string    `json:"kind"`
	OneIDs   []string  `json:"oneIds,omitempty"`
	Types    []string  `json:"types,omitempty"`
	SourceID string    `json:"sourceId,omitempty"`
	By       string    `json:"by,omitempty"`
	Detail   string    `json:"detail,omitempty"`
}

// StoredIdentity is one identity of a member, keyed (identity.Keyer): Key is its document key. A
// plaintext phone keeps only its sealed value and mask; a phone hash its keyed value (Value, the
// same as Key) and the platform's hash sealed (Sealed), so that a rekey can key it again under a new
// key. FormerKeys are the keys it had before rekeys (orders keep the keys they were resolved with).
type StoredIdentity struct {
	Type       string    `json:"type"`
	Scope      string    `json:"scope,omitempty"`
	Key        string    `json:"key"`
	FormerKeys []string  `json:"formerKeys,omitempty"`
	Value      string    `json:"value,omitempty"`
	Sealed     string    `json:"sealed,omitempty"`
	Masked     string    `json:"masked,omitempty"`
	Channel    string    `json:"channel"`
	FirstSeen  time.Time `json:"firstSeen"`
}

// Keys are the identity's key and former keys.
func (s StoredIdentity) Keys() []string { return append([]string{s.Key}, s.FormerKeys...) }

// IdentityLink is the identities collection's document: which member an identity key belongs to,
// and how many merges it has caused (the fan-in guard watches that).
type IdentityLink struct {
	OneID  string    `json:"oneId"`
	Type   string    `json:"type"`
	Since  time.Time `json:"since"`
	Merges int       `json:"merges,omitempty"`
}

// Conflict records a merge or an identity a rule refused.
type Conflict struct {
	OneID    string    `json:"oneId"`
	Others   []string  `json:"others,omitempty"`
	Reason   string    `json:"reason"`
	Types    []string  `json:"types,omitempty"`
	SourceID string    `json:"sourceId"`
	At       time.Time `json:"at"`
}

// Quarantine statuses.
const (
	QuarantinePending  = "pending"
	QuarantineReleased = "released"
	QuarantineRejected = "rejected"
)

// Quarantined is an event held back from merging until an operator releases or rejects it. The
// event may carry a plaintext phone, so it is kept sealed.
type Quarantined struct {
	ID        string     `json:"id"`
	Sealed    string     `json:"sealed"`
	EventType string     `json:"eventType"`
	EventID   string     `json:"eventId"`
	Reason    string     `json:"reason"`
	OneIDs    []string   `json:"oneIds"`
	Status    string     `json:"status"`
	At        time.Time  `json:"at"`
	DecidedAt *time.Time `json:"decidedAt,omitempty"`
	DecidedBy string     `json:"decidedBy,omitempty"`
}

// Tombstone marks an identity erased on request: events that happened before ErasedAt never
// bring it back.
type Tombstone struct {
	Type     string    `json:"type"`
	ErasedAt time.Time `json:"erasedAt"`
	OneID    string    `json:"oneId"`
}

// Account is the points-award function's view of a member: the points ledger (balance, lots,
// debt), order totals, what was earned per day (for the daily cap) and the next expiry (indexed,
// so the expiry job finds the accounts it must look at).
type Account struct {
	OneID string `json:"oneId"`
	ledger.Account
	OrderCount   int64            `json:"orderCount"`
	NetAmountFen int64            `json:"netAmountFen"`
	DailyEarned  map[string]int64 `json:"dailyEarned,omitempty"`
	NextExpiryAt *time.Time       `json:"nextExpiryAt,omitempty"`
	// LastOrderAt is the latest payment time of the member's orders (indexed, UTC to the second):
	// segments find who has not bought for a while.
	LastOrderAt *time.Time `json:"lastOrderAt,omitempty"`
	// Windows are the points-multiplier windows campaigns gave the member (not yet over): orders paid
	// within one earn its multiplier. They move with the points on a merge.
	Windows    []loyalty.Window `json:"campaignWindows,omitempty"`
	MergedInto string           `json:"mergedInto,omitempty"`
	UpdatedAt  time.Time        `json:"updatedAt"`
}

// Lot is a points lot (see ledger.Lot).
type Lot = ledger.Lot

// Order is one order as the points ledger knows it (written by points-award, keyed by channel and
// order id): its payment, its refunds by refund id, the points it earned and the rate they were
// earned at. OneID is the member that first resolved it; after a merge, follow MergedInto.
type Order struct {
	OrderID string    `json:"orderId"`
	Channel string    `json:"channel"`
	ShopID  string    `json:"shopId,omitempty"`
	OneID   string    `json:"oneId"`
	PaidAt  time.Time `json:"paidAt"`
	// PaidAtUTC is PaidAt as indexed fields hold times (UTC, whole seconds), so segments select the
	// orders of a window with a range query.
	PaidAtUTC *time.Time `json:"paidAtUtc,omitempty"`
	// IdentityKeys are the keys of the identities the order's events carried: a split moves the
	// order with them.
	IdentityKeys []string `json:"identityKeys,omitempty"`
	ledger.Order
	// Rate is what the order earns, fixed at payment (nil: before payment).
	Rate *loyalty.Rate `json:"rate,omitempty"`
}

// MovesOnSplit says whether an order leaves with a split's identities: it carried one of the
// leaving keys and none of the strong or scoped keys that remain.
func (o Order) MovesOnSplit(leaving, remaining []string) bool {
	moves := false
	for _, k := range o.IdentityKeys {
		if slices.Contains(remaining, k) {
			return false
		}
		moves = moves || slices.Contains(leaving, k)
	}
	return moves
}

// TierState is the tier-evaluate function's view of a member: its standing on the ladder, the
// purchases its score counts, and the last decision with its inputs. Score and NetSpendFen are as
// of EvaluatedAt, over the rules' one window.
type TierState struct {
	OneID       string                      `json:"oneId"`
	Level       string                      `json:"level"`
	LevelSince  time.Time                   `json:"levelSince"`
	BelowSince  *time.Time                  `json:"belowSince,omitempty"`
	Score       int64                       `json:"score"`
	NetSpendFen int64                       `json:"netSpendFen"`
	Purchases   map[string]loyalty.Purchase `json:"purchases"`
	Decision    *loyalty.Decision           `json:"decision,omitempty"`
	EvaluatedAt time.Time                   `json:"evaluatedAt"`
	// RollsAt is the next moment time alone changes the score (a purchase leaving the window;
	// indexed, UTC, rounded up to the second): the evaluation job re-scores the members it has passed.
	RollsAt    *time.Time `json:"rollsAt,omitempty"`
	MergedInto string     `json:"mergedInto,omitempty"`
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

// Activity is the profile function's record of a member's interactions (browse, live views,
// community), per channel and kind.
type Activity struct {
	OneID     string                      `json:"oneId"`
	ByChannel map[string]*ChannelActivity `json:"byChannel"`
	// LastAt is the latest interaction on any channel (indexed, UTC to the second) and Daily the
	// interactions per UTC day of the last ActivityDays days: segments count interactions in a window.
	LastAt *time.Time       `json:"lastAt,omitempty"`
	Daily  map[string]int64 `json:"daily,omitempty"`
}

// ActivityDays is how many days of daily interaction counts an Activity keeps.
const ActivityDays = 180

// Record counts one interaction at the given time in LastAt and Daily, forgetting days older than
// ActivityDays before now.
func (a *Activity) Record(at, now time.Time) {
	at = IndexTime(at)
	if a.LastAt == nil || at.After(*a.LastAt) {
		a.LastAt = &at
	}
	if a.Daily == nil {
		a.Daily = map[string]int64{}
	}
	oldest := now.UTC().AddDate(0, 0, -ActivityDays).Format(time.DateOnly)
	if day := at.Format(time.DateOnly); day >= oldest {
		a.Daily[day]++
	}
	for day := range a.Daily {
		if day < oldest {
			delete(a.Daily, day)
		}
	}
}

// IndexTime is a time as indexed fields hold it: UTC, whole seconds (rounded down), so the stored
// text sorts like the time in both stores.
func IndexTime(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// ChannelActivity counts one channel's interactions.
type ChannelActivity struct {
	Count  int64            `json:"count"`
	LastAt time.Time        `json:"lastAt"`
	Kinds  map[string]int64 `json:"kinds"`
}

// Indexes are the fields the functions query by, per collection: the embedded store keeps an
// index for each (Firestore indexes single fields itself; composite ones live in deploy/).
var Indexes = map[string][]string{
	Orders:                    {"oneId", "paidAtUtc"},
	Accounts:                  {"nextExpiryAt", "lastOrderAt", "netAmountFen", "orderCount", "balance"},
	Tiers:                     {"belowSince", "rollsAt", "level"},
	Members:                   {"pool", "mergedInto", "erasedAt"},
	Activities:                {"lastAt"},
	Tags:                      {"tag"},
	receipt.PendingCollection: {"function"},
	receipt.Collection:        {receipt.OneIDField},
	Outbox:                    {"oneId"},
	Quarantine:                {"status"},
	Conflicts:                 {"oneId"},
}

// Querier runs store queries.
type Querier interface {
	Query(ctx context.Context, q store.Query) ([]store.Document, error)
}

// OrderKey is the document id of an order: channel and order id, hashed.
func OrderKey(channel, orderID string) string {
	sum := sha256.Sum256([]byte(channel + "\x00" + orderID))
	return hex.EncodeToString(sum[:20])
}

// SplitOrders finds the orders a split moves: among the orders of the split member's OneIDs (and
// of the target, for a split announced twice), those MovesOnSplit selects. Both points-award and
// tier-evaluate use it, so they move the same orders.
func SplitOrders(ctx context.Context, q Querier, d events.MemberSplitData) (map[string]Order, error) {
	out := map[string]Order{}
	for _, oneID := range append([]string{d.FromOneID, d.ToOneID}, d.FormerOneIDs...) {
		docs, err := q.Query(ctx, store.Query{Collection: Orders, Filters: []store.Filter{{Field: "oneId", Op: store.OpEq, Value: oneID}}})
		if err != nil {
			return nil, fmt.Errorf("orders of %s: %w", oneID, err)
		}
		for _, doc := range docs {
			var o Order
			if err := doc.DataTo(&o); err != nil {
				return nil, err
			}
			if o.MovesOnSplit(d.IdentityKeys, d.RemainingKeys) {
				out[doc.ID] = o
			}
		}
	}
	return out, nil
}

// ErrUnkeyedStore says a store holds identity documents written before identity keys were keyed
// with OMNIMEMBER_IDENTITY_KEYS: their keys are unkeyed hashes of phones and ids, and the events
// and receipts beside them carry raw phone hashes.
var ErrUnkeyedStore = errors.New("the store holds identity documents keyed without OMNIMEMBER_IDENTITY_KEYS " +
	"(written by an older version): they and the events beside them hold unkeyed phone hashes; " +
	"start from an empty store (make run: make clean) and replay the history")

// CheckKeyed returns ErrUnkeyedStore when the store's identity documents predate keyed identity
// keys, and an error when they were keyed with a key keys does not hold (a lost or replaced key:
// nothing stored would be found again). It reads one document.
func CheckKeyed(ctx context.Context, q Querier, keys *identity.Keyer) error {
	ids, err := store.QueryIDs(ctx, q, store.Query{Collection: Identities, Limit: 1})
	if err != nil {
		return fmt.Errorf("read an identity document: %w", err)
	}
	switch {
	case len(ids) == 0:
		return nil
	case !identity.IsKeyed(ids[0]):
		return ErrUnkeyedStore
	case !keys.Holds(identity.KeyID(ids[0])):
		return fmt.Errorf("the store's identity documents are keyed with key %q, which %s does not list: "+
			"give the keys they were written with (a rotation lists the new key first and keeps the old one until a rekey)",
			identity.KeyID(ids[0]), identity.KeysEnv)
	}
	return nil
}
