package campaign

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/segment"
	"github.com/omnimember/omnimember/shared/store"
)

// CreateRequest is the body of POST /v1/campaigns (and of the preview).
type CreateRequest struct {
	Name        string            `json:"name"`
	Segment     string            `json:"segment,omitempty"`
	Rule        *segment.Rule     `json:"rule,omitempty"`
	Channel     string            `json:"channel"`
	Template    string            `json:"template"`
	Vars        map[string]string `json:"vars,omitempty"`
	Coupon      *Coupon           `json:"coupon,omitempty"`
	BonusPoints int64             `json:"bonusPoints,omitempty"`
	Multiplier  *Multiplier       `json:"multiplier,omitempty"`
	ScheduledAt *time.Time        `json:"scheduledAt,omitempty"`
}

// fieldError is a 400 naming the field of the request.
type fieldError struct{ field, reason string }

func (e *fieldError) Error() string { return e.field + ": " + e.reason }

func bad(field, format string, args ...any) error {
	return &fieldError{field: field, reason: fmt.Sprintf(format, args...)}
}

// MaxBonusPoints bounds a campaign's bonus (a typo should not mint a fortune).
const MaxBonusPoints = 100000

// validate checks the request and returns the campaign it describes (not yet stored).
func (h *Handler) validate(req CreateRequest, now time.Time) (Campaign, error) {
	c := Campaign{Name: strings.TrimSpace(req.Name), Segment: req.Segment, Rule: req.Rule, Channel: req.Channel,
		Template: req.Template, Vars: req.Vars, Coupon: req.Coupon, BonusPoints: req.BonusPoints,
		Multiplier: req.Multiplier, ScheduledAt: req.ScheduledAt, Status: StatusDraft}
	switch {
	case c.Name == "" || len(c.Name) > 200:
		return c, bad("name", "a name of 1..200 characters is required")
	case (c.Segment == "") == (c.Rule == nil):
		return c, bad("segment", "give a built-in segment or a rule, not both")
	case !slices.Contains(Channels, c.Channel):
		return c, bad("channel", "%q: want one of %s", c.Channel, strings.Join(Channels, ", "))
	case c.BonusPoints < 0 || c.BonusPoints > MaxBonusPoints:
		return c, bad("bonusPoints", "%d: want 0..%d", c.BonusPoints, MaxBonusPoints)
	}
	if err := h.validSegment(c); err != nil {
		return c, err
	}
	if err := validVars(c.Vars); err != nil {
		return c, err
	}
	if err := validOffer(c, now); err != nil {
		return c, err
	}
	if _, err := h.vars(c); err != nil {
		return c, err
	}
	if c.ScheduledAt != nil {
		if !c.ScheduledAt.After(now) {
			return c, bad("scheduledAt", "%s is not in the future", c.ScheduledAt.Format(time.RFC3339))
		}
		at := c.ScheduledAt.UTC().Truncate(time.Second)
		c.ScheduledAt, c.Status = &at, StatusScheduled
	}
	return c, nil
}

func (h *Handler) validSegment(c Campaign) error {
	if c.Rule != nil {
		if err := c.Rule.Validate(); err != nil {
			var fe *segment.FieldError
			if errors.As(err, &fe) {
				return bad("rule."+strings.TrimPrefix(fe.Field, "rule"), "%s", fe.Reason)
			}
			return bad("rule", "%v", err)
		}
		return nil
	}
	if _, err := h.Segments.Get(c.Segment); err != nil {
		return bad("segment", "%q is not a built-in segment", c.Segment)
	}
	return nil
}

// Bounds of a campaign's own template variables.
const (
	maxVars     = 20
	maxVarBytes = 300
)

var varName = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]{0,39}$`)

func validVars(vars map[string]string) error {
	if len(vars) > maxVars {
		return bad("vars", "%d variables: want at most %d", len(vars), maxVars)
	}
	for k, v := range vars {
		switch {
		case !varName.MatchString(k):
			return bad("vars", "%q is not a variable name", k)
		case len(v) > maxVarBytes:
			return bad("vars."+k, "%d bytes: want at most %d", len(v), maxVarBytes)
		}
	}
	return nil
}

// factorFormat is a multiplier factor as campaign.rewarded's schema takes it: a decimal from 1 to 10
// with at most four places (the earning rules' precision).
var factorFormat = regexp.MustCompile(`^(10(\.0{1,4})?|[1-9](\.[0-9]{1,4})?)$`)

func validOffer(c Campaign, now time.Time) error {
	if c.Coupon != nil && (strings.TrimSpace(c.Coupon.Code) == "" || strings.TrimSpace(c.Coupon.Title) == "") {
		return bad("coupon.code", "a coupon needs a code and a title")
	}
	if m := c.Multiplier; m != nil {
		f, err := strconv.ParseFloat(m.Factor, 64)
		switch {
		case err != nil || !factorFormat.MatchString(m.Factor) || f <= 1 || f > 10:
			return bad("multiplier.factor", "%q: want a number above 1 and at most 10, at most 4 decimals", m.Factor)
		case !m.To.After(m.From):
			return bad("multiplier.to", "the window must end after it starts")
		case m.To.Before(now):
			return bad("multiplier.to", "the window has already ended")
		}
	}
	return nil
}

var shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*3600) // China has no daylight saving time
	}
	return loc
}()

// vars are a campaign's template variables: the marketer's, the offer's, and text — the message
// as rendered in Chinese, the fallback of a channel that lacks the template.
func (h *Handler) vars(c Campaign) (map[string]string, error) {
	tpl, ok := h.Templates[c.Template]
	if !ok {
		return nil, bad("template", "%q is not a marketing template", c.Template)
	}
	out := map[string]string{"brand": h.brand()}
	for k, v := range c.Vars {
		out[k] = v
	}
	if c.Coupon != nil {
		out["coupon"], out["couponCode"] = c.Coupon.Title, c.Coupon.Code
	}
	if c.BonusPoints > 0 {
		out["bonusPoints"] = strconv.FormatInt(c.BonusPoints, 10)
	}
	if m := c.Multiplier; m != nil {
		out["multiplier"] = m.Factor
		out["from"], out["to"] = m.From.In(shanghai).Format("1月2日"), m.To.In(shanghai).Format("1月2日")
	}
	for _, v := range tpl.Vars {
		if out[v] == "" {
			return nil, bad(varField(v), "template %s needs %s", c.Template, v)
		}
	}
	text, err := tpl.Render("zh-CN", out)
	if err != nil {
		return nil, bad("template", "%v", err)
	}
	out["text"] = text
	return out, nil
}

// varField names the request field that supplies a template variable.
func varField(v string) string {
	switch v {
	case "coupon":
		return "coupon"
	case "bonusPoints":
		return "bonusPoints"
	case "multiplier", "from", "to":
		return "multiplier"
	}
	return "vars." + v
}

func (h *Handler) brand() string {
	if h.Brand != "" {
		return h.Brand
	}
	return "omnimember"
}

func newID(prefix string) string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// audit is one record of the audit collection.
type audit struct {
	At         time.Time `json:"at"`
	By         string    `json:"by"`
	Action     string    `json:"action"`
	CampaignID string    `json:"campaignId"`
	Detail     string    `json:"detail,omitempty"`
}

func writeAudit(tx store.Tx, a audit) error {
	return tx.Set(AuditLog, newID("aud_"), a)
}

// Create stores a new campaign with its audit record.
func (h *Handler) Create(ctx context.Context, req CreateRequest, by string) (Campaign, error) {
	now := h.Now()
	c, err := h.validate(req, now)
	if err != nil {
		return c, err
	}
	c.ID, c.CreatedBy, c.CreatedAt = newID("cmp_"), by, now.UTC()
	detail, _ := json.Marshal(req)
	err = h.Store.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error {
		if err := tx.Create(Campaigns, c.ID, c); err != nil {
			return err
		}
		return writeAudit(tx, audit{At: now, By: by, Action: "create", CampaignID: c.ID, Detail: string(detail)})
	})
	if err != nil {
		return c, fmt.Errorf("store campaign: %w", err)
	}
	return c, nil
}

// MaxBodyBytes bounds every JSON body the campaign API reads (a rule, a campaign, a preview):
// larger bodies get 413 before anything is stored.
const MaxBodyBytes = 64 << 10

// errTooLarge is a body over MaxBodyBytes → 413.
var errTooLarge = fmt.Errorf("body over %d bytes", MaxBodyBytes)

func decodeBody(w http.ResponseWriter, r *http.Request, dst any) error {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, MaxBodyBytes)); err != nil {
		if runtime.BodyStatus(err) == http.StatusRequestEntityTooLarge {
			return errTooLarge
		}
		return bad("body", "unreadable: %v", err)
	}
	dec := json.NewDecoder(&buf)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return bad(te.Field, "want a %s", te.Type)
		}
		return bad("body", "not the expected JSON: %v", err)
	}
	return nil
}

// writeErr maps errors to answers: a field error 400, a body over the limit 413, a missing
// campaign 404, else 503.
func writeErr(w http.ResponseWriter, err error) {
	var fe *fieldError
	switch {
	case errors.As(err, &fe):
		runtime.WriteError(w, http.StatusBadRequest, fe.field, "%s", fe.reason)
	case errors.Is(err, errTooLarge):
		runtime.WriteError(w, http.StatusRequestEntityTooLarge, "body", "%v", err)
	case errors.Is(err, store.ErrNotFound):
		runtime.WriteError(w, http.StatusNotFound, "", "no such campaign")
	default:
		w.Header().Set("Retry-After", "1")
		runtime.WriteError(w, http.StatusServiceUnavailable, "", "%v (safe to retry)", err)
	}
}
