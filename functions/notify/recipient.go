package notify

import (
	"context"
	"errors"
	"fmt"

	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/store"
)

// ErrNoAddress says the member has no address on a channel (no WeCom external contact in the
// corp, no openid in the mini-program, no email): nothing was sent and retrying cannot change
// that. It wraps ErrRejected, so a handler that does not single it out fails the notification at
// once; the rules of contact turn it into `suppressed: no_address`.
var ErrNoAddress = fmt.Errorf("%w: member has no address on this channel", ErrRejected)

// Members reads member documents: the store's Get.
type Members interface {
	Get(ctx context.Context, collection, id string, dst any) error
}

// liveMember reads a member, following merges to its survivor.
func liveMember(ctx context.Context, members Members, oneID string) (member.Member, error) {
	for range member.MaxMergeHops + 1 {
		var m member.Member
		if err := members.Get(ctx, member.Members, oneID, &m); err != nil {
			return m, err
		}
		if m.MergedInto == "" {
			return m, nil
		}
		oneID = m.MergedInto
	}
	return member.Member{}, fmt.Errorf("member %s: merge chain too long", oneID)
}

// address is the value of the member's identity of type idType in scope (the corp or app id the
// identity belongs to): where a channel reaches the member.
func address(ctx context.Context, members Members, oneID, idType, scope string) (string, error) {
	m, err := liveMember(ctx, members, oneID)
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("%s of member %s (unknown member): %w", idType, oneID, ErrNoAddress)
	}
	if err != nil {
		return "", fmt.Errorf("read member %s for its %s: %w", oneID, idType, err)
	}
	for _, id := range m.Identities {
		if id.Type == idType && id.Scope == scope && id.Value != "" {
			return id.Value, nil
		}
	}
	return "", fmt.Errorf("%s in %s of member %s: %w", idType, scope, oneID, ErrNoAddress)
}
