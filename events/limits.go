package events

// Bounds every stage agrees on. The JSON Schemas carry the same numbers (common.json's $defs fen,
// points, total, balance, quantity, items, identities and attributes); TestSchemaBoundsMatchGo
// proves they agree, so ingest, the handlers and the schemas refuse the same values.
//
// Why these numbers: MaxFen (¥100 000 000.00) is far above any real order, yet the largest order at
// the richest rate the loyalty rules allow (1 point per fen, a multiplier of 100) earns exactly
// MaxPoints. MaxTotal bounds every sum (a balance, a member's net spend): 100 000 maximum orders,
// and 9 000 times below int64's limit, so adding one bounded amount to a bounded total can never
// wrap before the check (shared/amount) refuses it.
const (
	// MaxFen bounds one amount in fen: an order, a refund, an item line, an order's net.
	MaxFen int64 = 10_000_000_000
	// MaxPoints bounds the points one event moves: an order's award or reversal, a bonus, a redemption.
	MaxPoints int64 = 1_000_000_000_000
	// MaxTotal bounds a sum of amounts or points: a balance (either sign), a member's net spend,
	// the points a job expires at once. ¥10 000 000 000 000.00, 1e15.
	MaxTotal int64 = 1_000_000_000_000_000
	// MaxQuantity bounds the units of one order line.
	MaxQuantity = 1_000_000
	// MaxItems bounds the lines of one order.
	MaxItems = 500
	// MaxIdentities bounds an event's identities, before and after normalisation (a plaintext
	// phone normalises into three: the phone and its two hashes).
	MaxIdentities = 64
	// MaxAttributes bounds an interaction's attributes; MaxAttributeKey and MaxAttributeValue
	// their keys and values (characters).
	MaxAttributes     = 64
	MaxAttributeKey   = 64
	MaxAttributeValue = 1024
	// MaxString bounds ids and names in data (characters; common.json's nonEmpty), and ingest
	// bounds the id, source, subject and dataschema attributes to as many bytes: an event id comes
	// back as the sourceId of what it causes.
	MaxString = 256
	// MaxExtensions and MaxExtensionBytes bound a channel event's extension attributes (W3C
	// tracestate, the longest one the chain uses, is at most 512 characters).
	MaxExtensions     = 16
	MaxExtensionBytes = 512
	// MaxDataBytes bounds one channel event's data, so that it and the identity.resolved that
	// carries it stay well under NATS's 1 MiB message limit (beyond it JetStream refuses to store,
	// which a sender would see as "retry" forever).
	MaxDataBytes = 256 << 10
)
