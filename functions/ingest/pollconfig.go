package ingest

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// PollConfig holds the platform pollers ingest runs in the background; nil ones are off.
type PollConfig struct {
	TMC *TMCConfig
	JD  *JDConfig
}

// PollConfigFromEnv reads the TMC_* and JD_* variables (getenv is os.Getenv in main). A poller is on
// when its app key is set, and then must be complete.
func PollConfigFromEnv(getenv func(string) string) (PollConfig, error) {
	var c PollConfig
	var errs []error
	if key := getenv("TMC_APP_KEY"); key != "" {
		tmc := DefaultTMC()
		tmc.AppKey, tmc.Secret = key, getenv("TMC_APP_SECRET")
		setString(getenv, "TMC_GROUP", &tmc.Group)
		setString(getenv, "TMC_URL", &tmc.URL)
		setString(getenv, "TMC_CHANNEL", &tmc.Channel)
		setString(getenv, "TMC_SIGN_METHOD", &tmc.SignMethod)
		errs = append(errs, setDuration(getenv, "TMC_POLL_INTERVAL", &tmc.Interval), setInt(getenv, "TMC_QUANTITY", &tmc.Quantity), tmc.Validate())
		c.TMC = &tmc
	}
	if key := getenv("JD_APP_KEY"); key != "" {
		j := DefaultJD()
		j.AppKey, j.Secret, j.AccessToken = key, getenv("JD_APP_SECRET"), getenv("JD_ACCESS_TOKEN")
		setString(getenv, "JD_URL", &j.URL)
		setString(getenv, "JD_ORDER_STATES", &j.OrderStates)
		for name, dst := range map[string]*time.Duration{"JD_POLL_INTERVAL": &j.Interval, "JD_OVERLAP": &j.Overlap, "JD_WINDOW": &j.Window, "JD_LOOKBACK": &j.Lookback} {
			errs = append(errs, setDuration(getenv, name, dst))
		}
		errs = append(errs, setInt(getenv, "JD_PAGE_SIZE", &j.PageSize), j.Validate())
		c.JD = &j
	}
	return c, errors.Join(errs...)
}

// LogValue shows what is on, secrets masked.
func (c PollConfig) LogValue() slog.Value {
	var attrs []slog.Attr
	if c.TMC != nil {
		attrs = append(attrs, slog.Any("tmc", *c.TMC))
	}
	if c.JD != nil {
		attrs = append(attrs, slog.Any("jd", *c.JD))
	}
	if len(attrs) == 0 {
		return slog.StringValue("off")
	}
	return slog.GroupValue(attrs...)
}

// Pollers builds the configured pollers.
func (c PollConfig) Pollers(log *slog.Logger) []Poller {
	client := &http.Client{Timeout: 30 * time.Second}
	var out []Poller
	if c.TMC != nil {
		out = append(out, &TMCPoller{Config: *c.TMC, HTTP: client, Log: log, Now: time.Now})
	}
	if c.JD != nil {
		out = append(out, &JDPoller{Config: *c.JD, HTTP: client, Log: log, Now: time.Now})
	}
	return out
}

func setString(getenv func(string) string, name string, dst *string) {
	if v := getenv(name); v != "" {
		*dst = v
	}
}

func setDuration(getenv func(string) string, name string, dst *time.Duration) error {
	v := getenv(name)
	if v == "" {
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	*dst = d
	return nil
}

func setInt(getenv func(string) string, name string, dst *int) error {
	v := getenv(name)
	if v == "" {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	*dst = n
	return nil
}
