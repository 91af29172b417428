// Package events is the omnimember contract: event types, their payloads, JSON Schemas and examples.
package events

import "strings"

// Prefix starts every omnimember CloudEvent type and every JetStream subject that carries one.
const Prefix = "omnimember."

// CloudEvent types of the public contract (MISSION §4). Extend, never rename.
const (
	MemberRegistered        = "omnimember.member.registered"
	OrderPaid               = "omnimember.order.paid"
	OrderRefunded           = "omnimember.order.refunded"
	InteractionRecorded     = "omnimember.interaction.recorded"
	IdentityResolved        = "omnimember.identity.resolved"
	MemberMerged            = "omnimember.member.merged"
	MemberSplit             = "omnimember.member.split"
	MemberErased            = "omnimember.member.erased"
	PoolChanged             = "omnimember.pool.changed"
	PointsAwarded           = "omnimember.points.awarded"
	PointsReversed          = "omnimember.points.reversed"
	PointsRedeemed          = "omnimember.points.redeemed"
	PointsExpired           = "omnimember.points.expired"
	PointsExpiring          = "omnimember.points.expiring"
	RedemptionReversed      = "omnimember.redemption.reversed"
	TierChanged             = "omnimember.tier.changed"
	CampaignTriggered       = "omnimember.campaign.triggered"
	CampaignRewarded        = "omnimember.campaign.rewarded"
	NotificationRequested   = "omnimember.notification.requested"
	NotificationSent        = "omnimember.notification.sent"
	NotificationSuppressed  = "omnimember.notification.suppressed"
	NotificationFailed      = "omnimember.notification.failed"
	schemaVersion           = "v1"
	dataContentTypeJSON     = "application/json"
	defaultSchemaURLPattern = "https://omnimember.dev/schemas/" + schemaVersion + "/"
)

// All lists every event type of the contract, in a stable order.
var All = []string{
	MemberRegistered, OrderPaid, OrderRefunded, InteractionRecorded,
	IdentityResolved, MemberMerged, MemberSplit, MemberErased, PoolChanged,
	PointsAwarded, PointsReversed, PointsRedeemed, PointsExpired, PointsExpiring, RedemptionReversed,
	TierChanged, CampaignTriggered, CampaignRewarded,
	NotificationRequested, NotificationSent, NotificationSuppressed, NotificationFailed,
}

// FromChannels lists the event types the channels (platforms, stores, the app) send in; every
// other type is produced inside the chain.
var FromChannels = []string{MemberRegistered, OrderPaid, OrderRefunded, InteractionRecorded}

// SourcePrefix starts the source of every event the chain produces itself (see Source).
const SourcePrefix = "omnimember/"

// Internal reports whether an event of this type from this source can only come from inside the
// chain: a type no channel sends, or a source under SourcePrefix. A sender outside needs a
// credential scoped for internal events to send one.
func Internal(eventType, source string) bool {
	for _, t := range FromChannels {
		if t == eventType {
			return strings.HasPrefix(source, SourcePrefix)
		}
	}
	return true
}

// Subject is the JetStream subject that carries events of the given type (`omnimember.<noun>.<verb>`).
func Subject(eventType string) string { return eventType }

// ShortName is the type without its prefix (`order.paid`), used for file names and metric labels.
func ShortName(eventType string) string { return strings.TrimPrefix(eventType, Prefix) }

// Known reports whether eventType belongs to the contract.
func Known(eventType string) bool {
	for _, t := range All {
		if t == eventType {
			return true
		}
	}
	return false
}

// SchemaURL is the dataschema attribute of events of the given type.
func SchemaURL(eventType string) string {
	return defaultSchemaURLPattern + ShortName(eventType) + ".json"
}

// ReceivedAtExtension is the extension attribute ingest stamps on every live event it accepts
// (RFC 3339, ingest's clock, overwriting what a sender put there): match copies it into
// identity.resolved as receivedAt, and the loyalty caps count the day it names, a day the
// server chose. History (backfill, the platform pollers) carries none and counts its paidAt.
const ReceivedAtExtension = "receivedat"
