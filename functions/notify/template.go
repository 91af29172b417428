package notify

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Locales every template must provide.
var Locales = []string{"zh-CN", "en"}

//go:embed templates.json
var defaultTemplates []byte

// Templates maps a template name to its text per locale; `{{var}}` is replaced by a variable.
type Templates map[string]map[string]string

var placeholder = regexp.MustCompile(`\{\{([a-zA-Z][a-zA-Z0-9_]*)\}\}`)

// DefaultTemplates are the built-in Chinese and English texts.
func DefaultTemplates() Templates {
	var t Templates
	if err := json.Unmarshal(defaultTemplates, &t); err != nil {
		panic(fmt.Sprintf("built-in templates.json: %v", err))
	}
	return t
}

// ParseTemplates reads and validates a templates file.
func ParseTemplates(raw []byte) (Templates, error) {
	var t Templates
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	return t, t.Validate()
}

// Validate checks every template has every locale and the same variables in each.
func (t Templates) Validate() error {
	for name, byLocale := range t {
		var first []string
		for i, loc := range Locales {
			text, ok := byLocale[loc]
			if !ok || strings.TrimSpace(text) == "" {
				return fmt.Errorf("template %q: missing %s text", name, loc)
			}
			vars := variables(text)
			if i > 0 && !slices.Equal(vars, first) {
				return fmt.Errorf("template %q: %s uses %v but %s uses %v", name, loc, vars, Locales[0], first)
			}
			first = vars
		}
	}
	return nil
}

func variables(text string) []string {
	var out []string
	for _, m := range placeholder.FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Render fills a template; an unknown locale falls back to zh-CN, a missing variable to empty,
// and a template notify does not have (a campaign's own) to the text the campaign rendered into
// vars.text.
func (t Templates) Render(name, locale string, vars map[string]string) (string, error) {
	byLocale, ok := t[name]
	if !ok {
		if text := strings.TrimSpace(vars["text"]); text != "" {
			return text, nil
		}
		return "", fmt.Errorf("unknown template %q and no vars.text to fall back to", name)
	}
	text, ok := byLocale[locale]
	if !ok {
		text = byLocale[Locales[0]]
	}
	return placeholder.ReplaceAllStringFunc(text, func(m string) string {
		return vars[m[2:len(m)-2]]
	}), nil
}

// tierNames are the ladder's level names as members read them.
var tierNames = map[string]map[string]string{
	"zh-CN": {"member": "普通", "silver": "银卡", "gold": "金卡", "platinum": "铂金", "diamond": "钻石"},
}

func tierName(level, locale string) string {
	if n, ok := tierNames[locale][level]; ok {
		return n
	}
	return level
}
