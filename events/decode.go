package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// NewData is a pointer to a zero value of the Go type of eventType's data, and false for a type
// outside the contract.
func NewData(eventType string) (any, bool) {
	switch eventType {
	case MemberRegistered:
		return new(MemberRegisteredData), true
	case OrderPaid:
		return new(OrderPaidData), true
	case OrderRefunded:
		return new(OrderRefundedData), true
	case InteractionRecorded:
		return new(InteractionRecordedData), true
	case IdentityResolved:
		return new(IdentityResolvedData), true
	case MemberMerged:
		return new(MemberMergedData), true
	case MemberSplit:
		return new(MemberSplitData), true
	case MemberErased:
		return new(MemberErasedData), true
	case PoolChanged:
		return new(PoolChangedData), true
	case PointsAwarded:
		return new(PointsAwardedData), true
	case PointsReversed:
		return new(PointsReversedData), true
	case PointsRedeemed:
		return new(PointsRedeemedData), true
	case PointsExpired:
		return new(PointsExpiredData), true
	case PointsExpiring:
		return new(PointsExpiringData), true
	case RedemptionReversed:
		return new(RedemptionReversedData), true
	case TierChanged:
		return new(TierChangedData), true
	case CampaignTriggered:
		return new(CampaignTriggeredData), true
	case CampaignRewarded:
		return new(CampaignRewardedData), true
	case NotificationRequested:
		return new(NotificationRequestedData), true
	case NotificationSent, NotificationSuppressed, NotificationFailed:
		return new(NotificationOutcomeData), true
	}
	return nil, false
}

// DecodeData decodes data strictly into the Go type of eventType, as the handlers decode it:
// JSON Schema's integer accepts 12.0 and 1e30, Go's int64 does not, so a value the schema lets
// through but a handler could not read fails here too, with the field named.
func DecodeData(eventType string, data []byte) (any, error) {
	v, ok := NewData(eventType)
	if !ok {
		return nil, &FieldError{Field: "type", Reason: fmt.Sprintf("unknown event type %q", eventType)}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return nil, decodeFieldError(err)
	}
	if dec.More() {
		return nil, &FieldError{Field: "data", Reason: "more than one JSON value"}
	}
	return v, nil
}

func decodeFieldError(err error) *FieldError {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return &FieldError{Field: "data." + typeErr.Field, Reason: fmt.Sprintf("%s does not fit %s", typeErr.Value, typeErr.Type)}
	}
	return &FieldError{Field: "data", Reason: err.Error()}
}
