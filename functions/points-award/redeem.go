package pointsaward

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/ledger"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
)

// Redemptions is the collection of redemptions, keyed by member and idempotency key.
const Redemptions = "redemptions"

// Redemption statuses.
const (
	RedemptionActive   = "active"
	RedemptionReversed = "reversed"
)

// Redemption is points spent on a channel, with the lots they came from so it can be reversed.
type Redemption struct {
	ID             string         `json:"id"`
	OneID          string         `json:"oneId"`
	Channel        string         `json:"channel"`
	Points         int64          `json:"points"`
	Spent          []ledger.Spent `json:"spent"`
	IdempotencyKey string         `json:"idempotencyKey"`
	Note           string         `json:"note,omitempty"`
	Status         string         `json:"status"`
	BalanceAfter   int64          `json:"balanceAfter"`
	At             time.Time      `json:"at"`
	ReversedAt     *time.Time     `json:"reversedAt,omitempty"`
	Reason         string         `json:"reason,omitempty"`
}

type redemptionRequest struct {
	IdempotencyKey string `json:"idempotencyKey"`
	Channel        string `json:"channel"`
	Points         int64  `json:"points"`
	Note           string `json:"note"`
}

// Routes registers redemptions (channel systems, API token) and the expiry job (operators).
func (h *Handler) Routes(mux runtime.Mux, pub *runtime.Publisher) {
	mux.Handle("POST /v1/members/{oneId}/redemptions", runtime.RequireBearer(h.APIToken,
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.redeem(w, r, pub) })))
	mux.Handle("POST /v1/members/{oneId}/redemptions/{target}", runtime.RequireBearer(h.APIToken,
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.reverse(w, r, pub) })))
	mux.Handle("POST /v1/admin/points:expire", runtime.RequireBearer(h.AdminToken, runtime.LongRunning(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.expireJob(w, r, pub) }))))
}

func redemptionID(oneID, key string) string {
	sum := sha256.Sum256([]byte(oneID + "\x00" + key))
	return "rdm-" + hex.EncodeToString(sum[:12])
}

func (h *Handler) decodeRedemption(w http.ResponseWriter, r *http.Request) (redemptionRequest, bool) {
	var req redemptionRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		runtime.WriteError(w, runtime.BodyStatus(err), "body", `want {"idempotencyKey","channel","points","note"}: %v`, err)
		return req, false
	}
	if req.IdempotencyKey == "" {
		req.IdempotencyKey = r.Header.Get("Idempotency-Key")
	}
	switch {
	case req.IdempotencyKey == "" || len(req.IdempotencyKey) > 200:
		runtime.WriteError(w, http.StatusBadRequest, "idempotencyKey", "required (1..200 characters): the same key never redeems twice")
	case !slices.Contains(events.Channels, req.Channel):
		runtime.WriteError(w, http.StatusBadRequest, "channel", "%q: want one of %v", req.Channel, events.Channels)
	case req.Points < h.Rules.Redemption.MinPoints || req.Points > events.MaxPoints:
		runtime.WriteError(w, http.StatusBadRequest, "points", "%d: want %d..%d", req.Points, h.Rules.Redemption.MinPoints, events.MaxPoints)
	default:
		return req, true
	}
	return req, false
}

// redeem spends points earned anywhere on any channel, oldest expiry first, once per idempotency key.
func (h *Handler) redeem(w http.ResponseWriter, r *http.Request, pub *runtime.Publisher) {
	req, ok := h.decodeRedemption(w, r)
	if !ok {
		return
	}
	oneID, now := r.PathValue("oneId"), h.Now()
	var red Redemption
	var fresh bool
	err := h.Store.RunTransaction(r.Context(), func(_ context.Context, tx store.Tx) error {
		var err error
		red, fresh, err = h.redeemTx(tx, oneID, req, now)
		return err
	})
	var insufficient *insufficientError
	switch {
	case errors.As(err, &insufficient):
		runtime.WriteJSON(w, http.StatusConflict, map[string]any{"error": "insufficient points", "field": "points",
			"balance": insufficient.balance, "requested": req.Points})
		return
	case errors.Is(err, store.ErrInvalidName):
		runtime.WriteError(w, http.StatusNotFound, "", "member %s not found", oneID)
		return
	case err != nil:
		runtime.WriteError(w, http.StatusServiceUnavailable, "", "redeem: %v", err)
		return
	}
	ev, err := events.New(events.PointsRedeemed, events.DerivedID(Name, red.ID, 0), events.Source(Name), red.At, events.PointsRedeemedData{
		OneID: red.OneID, RedemptionID: red.ID, Channel: red.Channel, Points: red.Points, Balance: red.BalanceAfter,
		RedeemedAt: red.At, IdempotencyKey: red.IdempotencyKey})
	if err == nil {
		err = pub.Publish(r.Context(), nil, []cloudevents.Event{ev})
	}
	if err != nil {
		runtime.WriteError(w, http.StatusServiceUnavailable, "", "redeemed, not yet announced (retry with the same key): %v", err)
		return
	}
	status := http.StatusOK
	if fresh {
		status = http.StatusCreated
	}
	runtime.WriteJSON(w, status, red)
}

type insufficientError struct{ balance int64 }

func (e *insufficientError) Error() string {
	return fmt.Sprintf("insufficient points: balance %d", e.balance)
}

func (h *Handler) redeemTx(tx store.Tx, oneID string, req redemptionRequest, now time.Time) (Redemption, bool, error) {
	id := redemptionID(oneID, req.IdempotencyKey)
	var red Redemption
	if err := tx.Get(Redemptions, id, &red); err == nil {
		return red, false, nil // the same request again: the same answer
	} else if !errors.Is(err, store.ErrNotFound) {
		return red, false, err
	}
	acct, err := h.liveAccount(tx, oneID)
	if err != nil {
		return red, false, err
	}
	acct.Policy = h.Rules.Refunds.AfterRedemption
	before := acct.Balance
	spent, err := acct.Redeem(req.Points)
	if errors.Is(err, ledger.ErrInsufficient) {
		return red, false, &insufficientError{balance: acct.Balance}
	}
	if err != nil {
		return red, false, err
	}
	red = Redemption{ID: id, OneID: acct.OneID, Channel: req.Channel, Points: req.Points, Spent: spent, IdempotencyKey: req.IdempotencyKey,
		Note: req.Note, Status: RedemptionActive, BalanceAfter: acct.Balance, At: now}
	line := entry{OneID: acct.OneID, Delta: acct.Balance - before, BalanceAfter: acct.Balance, Points: -req.Points, Cause: "redemption",
		Channel: req.Channel, SourceID: id, At: now}
	if err := h.writeAccount(tx, acct, now); err != nil {
		return red, false, err
	}
	if err := tx.Set(member.LedgerEntries, events.DerivedID(Name, id, 0), line); err != nil {
		return red, false, err
	}
	return red, true, tx.Set(Redemptions, id, red)
}

// reverse undoes a redemption (POST .../redemptions/{id}:reverse): its points go back to the lots
// they came from. Reversing twice answers the same.
func (h *Handler) reverse(w http.ResponseWriter, r *http.Request, pub *runtime.Publisher) {
	id, ok := strings.CutSuffix(r.PathValue("target"), ":reverse")
	if !ok {
		runtime.WriteError(w, http.StatusNotFound, "", "no such action; POST .../redemptions/{id}:reverse")
		return
	}
	var body struct {
		Reason string `json:"reason"`
	}
	// The body is optional (no reason): only an empty body may go without one.
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
		runtime.WriteError(w, runtime.BodyStatus(err), "body", `want {"reason"} or no body: %v`, err)
		return
	}
	now := h.Now()
	var red Redemption
	var balance int64
	err := h.Store.RunTransaction(r.Context(), func(_ context.Context, tx store.Tx) error {
		var err error
		red, balance, err = h.reverseTx(tx, id, body.Reason, now)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalidName):
		runtime.WriteError(w, http.StatusNotFound, "", "no redemption %s", id)
		return
	case err != nil:
		runtime.WriteError(w, http.StatusServiceUnavailable, "", "reverse: %v", err)
		return
	}
	ev, err := events.New(events.RedemptionReversed, events.DerivedID(Name, red.ID, 1), events.Source(Name), *red.ReversedAt,
		events.RedemptionReversedData{OneID: red.OneID, RedemptionID: red.ID, Points: red.Points, Balance: balance, Reason: red.Reason, ReversedAt: *red.ReversedAt})
	if err == nil {
		err = pub.Publish(r.Context(), nil, []cloudevents.Event{ev})
	}
	if err != nil {
		runtime.WriteError(w, http.StatusServiceUnavailable, "", "reversed, not yet announced (retry): %v", err)
		return
	}
	runtime.WriteJSON(w, http.StatusOK, red)
}

func (h *Handler) reverseTx(tx store.Tx, id, reason string, now time.Time) (Redemption, int64, error) {
	var red Redemption
	if err := tx.Get(Redemptions, id, &red); err != nil {
		return red, 0, err
	}
	acct, err := h.liveAccount(tx, red.OneID)
	if err != nil || red.Status == RedemptionReversed {
		return red, acct.Balance, err
	}
	acct.Policy = h.Rules.Refunds.AfterRedemption
	before := acct.Balance
	if err := acct.Restore(red.Spent); err != nil {
		return red, 0, err
	}
	red.Status, red.ReversedAt, red.Reason = RedemptionReversed, &now, reason
	line := entry{OneID: acct.OneID, Delta: acct.Balance - before, BalanceAfter: acct.Balance, Points: red.Points,
		Cause: "redemption reversal", Channel: red.Channel, SourceID: id, At: now}
	if err := h.writeAccount(tx, acct, now); err != nil {
		return red, 0, err
	}
	if err := tx.Set(member.LedgerEntries, events.DerivedID(Name, id, 1), line); err != nil {
		return red, 0, err
	}
	return red, acct.Balance, tx.Set(Redemptions, id, red)
}
