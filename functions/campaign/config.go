package campaign

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"time"

	"github.com/omnimember/omnimember/shared/segment"
)

// Config is the campaign function's own configuration, read once in main.
type Config struct {
	Segments  *segment.Catalog // SEGMENTS_FILE (default: the shipped built-ins)
	Templates Templates        // built in (templates.json)
	Rates     Rates            // CAMPAIGN_RATES: sms=200,wecom=100,*=200 (0: unlimited)
	Brand     string           // CAMPAIGN_BRAND: the brand name messages carry
	Poll      time.Duration    // CAMPAIGN_POLL: how often the running dispatcher looks for due and interrupted campaigns
	Role      string           // CAMPAIGN_ROLE: api, worker, or unset for both
}

// ConfigFromEnv reads and validates the configuration.
func ConfigFromEnv() (Config, error) {
	var c Config
	var errs []error
	var err error
	c.Segments, err = segment.FromEnv()
	errs = append(errs, err)
	c.Templates, err = DefaultTemplates()
	errs = append(errs, err)
	c.Rates, err = ParseRates(os.Getenv("CAMPAIGN_RATES"))
	errs = append(errs, wrap("CAMPAIGN_RATES", err))
	c.Brand = os.Getenv("CAMPAIGN_BRAND")
	if c.Brand == "" {
		c.Brand = "omnimember"
	}
	c.Poll = 5 * time.Second
	if v := os.Getenv("CAMPAIGN_POLL"); v != "" {
		c.Poll, err = time.ParseDuration(v)
		if err == nil && c.Poll < 100*time.Millisecond {
			err = errors.New("want at least 100ms")
		}
		errs = append(errs, wrap("CAMPAIGN_POLL", err))
	}
	c.Role = os.Getenv("CAMPAIGN_ROLE")
	if c.Role != RoleAll && c.Role != RoleAPI && c.Role != RoleWorker {
		errs = append(errs, fmt.Errorf("CAMPAIGN_ROLE %q: want %s, %s or unset", c.Role, RoleAPI, RoleWorker))
	}
	return c, errors.Join(errs...)
}

func wrap(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", name, err)
}

// StoreIndexes are the member indexes segments use plus the campaign function's own.
func StoreIndexes(memberIndexes map[string][]string) map[string][]string {
	out := maps.Clone(memberIndexes)
	maps.Copy(out, Indexes)
	return out
}
