package events

import "time"

// Channels an order or a member can come from.
const (
	ChannelTmall  = "tmall"
	ChannelTaobao = "taobao"
	ChannelDouyin = "douyin"
	ChannelJD     = "jd"
	ChannelWeChat = "wechat"
	ChannelYouzan = "youzan"
	ChannelApp    = "app"
	ChannelPOS    = "pos"
)

// Channels lists every sales channel in a stable order.
var Channels = []string{ChannelTmall, ChannelTaobao, ChannelDouyin, ChannelJD, ChannelWeChat, ChannelYouzan, ChannelApp, ChannelPOS}

// Identity is one channel identity of a person. Scope carries the shop or app id of store-scoped ids.
type Identity struct {
	Type  string `json:"type"`
	Value string `json:"value"`
	Scope string `json:"scope,omitempty"`
}

// OrderItem is one line of an order.
type OrderItem struct {
	SKU       string `json:"sku"`
	Name      string `json:"name,omitempty"`
	Category  string `json:"category,omitempty"`
	Quantity  int    `json:"quantity"`
	AmountFen int64  `json:"amountFen"`
}

// MemberRegisteredData is the data of omnimember.member.registered.
type MemberRegisteredData struct {
	Channel      string     `json:"channel"`
	ShopID       string     `json:"shopId"`
	RegisteredAt time.Time  `json:"registeredAt"`
	Identities   []Identity `json:"identities"`
}

// OrderPaidData is the data of omnimember.order.paid. AmountFen is what the buyer paid.
type OrderPaidData struct {
	OrderID    string      `json:"orderId"`
	Channel    string      `json:"channel"`
	ShopID     string      `json:"shopId"`
	AmountFen  int64       `json:"amountFen"`
	PaidAt     time.Time   `json:"paidAt"`
	Identities []Identity  `json:"identities"`
	Items      []OrderItem `json:"items,omitempty"`
}

// OrderRefundedData is the data of omnimember.order.refunded: one refund of AmountFen, idempotent per RefundID.
type OrderRefundedData struct {
	OrderID    string     `json:"orderId"`
	RefundID   string     `json:"refundId"`
	Channel    string     `json:"channel"`
	ShopID     string     `json:"shopId,omitempty"`
	AmountFen  int64      `json:"amountFen"`
	RefundedAt time.Time  `json:"refundedAt"`
	Identities []Identity `json:"identities"`
}

// InteractionRecordedData is the data of omnimember.interaction.recorded (browse, live view, community...).
type InteractionRecordedData struct {
	Channel    string            `json:"channel"`
	Kind       string            `json:"kind"`
	OccurredAt time.Time         `json:"occurredAt"`
	Identities []Identity        `json:"identities"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// IdentityResolvedData is the data of omnimember.identity.resolved: the source event's data, with the
// OneID it resolved to. Identities are normalised and keyed: no plaintext phone (its mask instead)
// and no raw phone hash (its keyed value instead), here and in the source data. IdentityKeys are the
// document keys of the identities match resolved, for later functions to keep (a split moves orders
// by them).
type IdentityResolvedData struct {
	OneID      string `json:"oneId"`
	SourceType string `json:"sourceType"`
	SourceID   string `json:"sourceId"`
	// ReceivedAt is when ingest took the source event in (its ReceivedAtExtension); nil for
	// history (backfill, the platform pollers). The loyalty caps count this day when it is set.
	ReceivedAt   *time.Time               `json:"receivedAt,omitempty"`
	Identities   []Identity               `json:"identities"`
	IdentityKeys []string                 `json:"identityKeys,omitempty"`
	Order        *OrderPaidData           `json:"order,omitempty"`
	Refund       *OrderRefundedData       `json:"refund,omitempty"`
	Registration *MemberRegisteredData    `json:"registration,omitempty"`
	Interaction  *InteractionRecordedData `json:"interaction,omitempty"`
}

// MemberMergedData is the data of omnimember.member.merged: the absorbed OneIDs now live in the survivor.
type MemberMergedData struct {
	SurvivorOneID  string    `json:"survivorOneId"`
	AbsorbedOneIDs []string  `json:"absorbedOneIds"`
	LinkedBy       []string  `json:"linkedBy"`
	SourceID       string    `json:"sourceId"`
	MergedAt       time.Time `json:"mergedAt"`
}

// MemberSplitData is the data of omnimember.member.split: an operator undid a wrong merge; the
// identities with IdentityKeys left FromOneID for ToOneID (the member they came from, or a new one).
// An order moves with them when it carried a leaving key and none of RemainingKeys (the strong and
// scoped keys that stay); FormerOneIDs are the OneIDs whose orders FromOneID held.
type MemberSplitData struct {
	FromOneID     string    `json:"fromOneId"`
	ToOneID       string    `json:"toOneId"`
	FormerOneIDs  []string  `json:"formerOneIds"`
	IdentityKeys  []string  `json:"identityKeys"`
	RemainingKeys []string  `json:"remainingKeys"`
	Types         []string  `json:"types"`
	Reason        string    `json:"reason"`
	By            string    `json:"by"`
	RequestID     string    `json:"requestId"`
	SplitAt       time.Time `json:"splitAt"`
}

// MemberErasedData is the data of omnimember.member.erased: a member's identities and personal
// fields were erased on request (PIPL); aggregates stay under the OneID. FormerOneIDs are the
// OneIDs merged into it, whose orders and notifications are the member's too: functions that keep
// copies of identities drop them.
type MemberErasedData struct {
	OneID        string    `json:"oneId"`
	FormerOneIDs []string  `json:"formerOneIds,omitempty"`
	Identities   int       `json:"identities"`
	By           string    `json:"by"`
	RequestID    string    `json:"requestId"`
	ErasedAt     time.Time `json:"erasedAt"`
}

// PoolChangedData is the data of omnimember.pool.changed: a member became reachable (plaintext) or
// stopped being so. Reason names what caused it (an identity type, "merge", "split", "erasure").
type PoolChangedData struct {
	OneID     string    `json:"oneId"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	Reason    string    `json:"reason"`
	SourceID  string    `json:"sourceId"`
	ChangedAt time.Time `json:"changedAt"`
}

// PointsAwardedData is the data of omnimember.points.awarded. OrderNetAmountFen is the order's paid
// amount minus its refunds after this change; Points may be 0 for orders under one yuan.
type PointsAwardedData struct {
	OneID             string    `json:"oneId"`
	OrderID           string    `json:"orderId"`
	Channel           string    `json:"channel"`
	ShopID            string    `json:"shopId"`
	Points            int64     `json:"points"`
	Balance           int64     `json:"balance"`
	OrderNetAmountFen int64     `json:"orderNetAmountFen"`
	PaidAt            time.Time `json:"paidAt"`
	SourceID          string    `json:"sourceId"`
}

// PointsReversedData is the data of omnimember.points.reversed: Points (>= 0) taken back after a refund.
type PointsReversedData struct {
	OneID             string    `json:"oneId"`
	OrderID           string    `json:"orderId"`
	RefundID          string    `json:"refundId"`
	Channel           string    `json:"channel"`
	Points            int64     `json:"points"`
	Balance           int64     `json:"balance"`
	OrderNetAmountFen int64     `json:"orderNetAmountFen"`
	PaidAt            time.Time `json:"paidAt"`
	SourceID          string    `json:"sourceId"`
}

// PointsRedeemedData is the data of omnimember.points.redeemed.
type PointsRedeemedData struct {
	OneID          string    `json:"oneId"`
	RedemptionID   string    `json:"redemptionId"`
	Channel        string    `json:"channel"`
	Points         int64     `json:"points"`
	Balance        int64     `json:"balance"`
	RedeemedAt     time.Time `json:"redeemedAt"`
	IdempotencyKey string    `json:"idempotencyKey"`
}

// PointsExpiredData is the data of omnimember.points.expired.
type PointsExpiredData struct {
	OneID     string    `json:"oneId"`
	Points    int64     `json:"points"`
	Balance   int64     `json:"balance"`
	LotIDs    []string  `json:"lotIds"`
	ExpiredAt time.Time `json:"expiredAt"`
}

// PointsExpiringData is the data of omnimember.points.expiring: a reminder that Points expire at ExpiresAt.
type PointsExpiringData struct {
	OneID     string    `json:"oneId"`
	Points    int64     `json:"points"`
	Balance   int64     `json:"balance"`
	LotIDs    []string  `json:"lotIds"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// RedemptionReversedData is the data of omnimember.redemption.reversed: a redemption was undone and
// its points went back to the lots they came from.
type RedemptionReversedData struct {
	OneID        string    `json:"oneId"`
	RedemptionID string    `json:"redemptionId"`
	Points       int64     `json:"points"`
	Balance      int64     `json:"balance"`
	Reason       string    `json:"reason,omitempty"`
	ReversedAt   time.Time `json:"reversedAt"`
}

// TierChangedData is the data of omnimember.tier.changed.
type TierChangedData struct {
	OneID       string    `json:"oneId"`
	From        string    `json:"from"`
	To          string    `json:"to"`
	Direction   string    `json:"direction"`
	NetSpendFen int64     `json:"netSpendFen"`
	EvaluatedAt time.Time `json:"evaluatedAt"`
	SourceID    string    `json:"sourceId"`
}

// CampaignTriggeredData is the data of omnimember.campaign.triggered.
type CampaignTriggeredData struct {
	CampaignID  string    `json:"campaignId"`
	Segment     string    `json:"segment"`
	Channel     string    `json:"channel"`
	Template    string    `json:"template"`
	TriggeredBy string    `json:"triggeredBy"`
	TriggeredAt time.Time `json:"triggeredAt"`
}

// CampaignRewardedData is the data of omnimember.campaign.rewarded: what a campaign gives one member it
// targeted, for points-award to credit — BonusPoints once (0: none), and/or a Multiplier window for
// the member's orders paid within it. SourceID is the campaign id.
type CampaignRewardedData struct {
	CampaignID  string            `json:"campaignId"`
	OneID       string            `json:"oneId"`
	BonusPoints int64             `json:"bonusPoints"`
	Multiplier  *PointsMultiplier `json:"multiplier,omitempty"`
	SourceID    string            `json:"sourceId"`
}

// PointsMultiplier is a points-multiplier window: orders paid within [From, To) earn Factor times
// (a decimal with at most four places, above 1 and at most 10, as the campaign API accepts it).
type PointsMultiplier struct {
	Factor string    `json:"factor"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
}

// Notification categories: transactional messages are exempt from marketing caps.
const (
	CategoryTransactional = "transactional"
	CategoryMarketing     = "marketing"
)

// NotificationRequestedData is the data of omnimember.notification.requested.
type NotificationRequestedData struct {
	NotificationID string            `json:"notificationId"`
	OneID          string            `json:"oneId"`
	Category       string            `json:"category"`
	Channel        string            `json:"channel"`
	Template       string            `json:"template"`
	Locale         string            `json:"locale,omitempty"`
	Vars           map[string]string `json:"vars,omitempty"`
	CampaignID     string            `json:"campaignId,omitempty"`
	SourceID       string            `json:"sourceId"`
}

// NotificationOutcomeData is the data of omnimember.notification.sent, .suppressed and .failed.
// Reason says why a notification was suppressed or failed; Attempts counts delivery attempts.
type NotificationOutcomeData struct {
	NotificationID string    `json:"notificationId"`
	OneID          string    `json:"oneId"`
	Channel        string    `json:"channel"`
	Template       string    `json:"template"`
	SourceID       string    `json:"sourceId"`
	Reason         string    `json:"reason,omitempty"`
	Attempts       int       `json:"attempts"`
	At             time.Time `json:"at"`
}
