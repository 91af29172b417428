package campaign

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
)

//go:embed templates.json
var templatesFile []byte

// Template is one marketing message in each locale, with {{variable}} placeholders. Notify renders
// and delivers it; the campaign renders it too, for the console's preview and as vars.text, the
// fallback a channel without this template sends.
type Template struct {
	Name  string            `json:"name"`
	Title string            `json:"title"`
	Text  map[string]string `json:"text"`
	Vars  []string          `json:"vars"`
}

// Templates are the marketing templates by name.
type Templates map[string]Template

// Locales a template must have.
var Locales = []string{"zh-CN", "en"}

var placeholder = regexp.MustCompile(`\{\{\s*([a-zA-Z][a-zA-Z0-9_]*)\s*\}\}`)

// DefaultTemplates are templates.json as shipped.
func DefaultTemplates() (Templates, error) { return ParseTemplates(templatesFile) }

// ParseTemplates reads and checks a templates file: every template has a title and both locales,
// and both locales use the same variables.
func ParseTemplates(raw []byte) (Templates, error) {
	var f map[string]map[string]string
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	out := Templates{}
	for name, t := range f {
		tpl := Template{Name: name, Title: t["title"], Text: map[string]string{}}
		if tpl.Title == "" {
			return nil, fmt.Errorf("templates: %s: title is required", name)
		}
		for _, loc := range Locales {
			text := t[loc]
			if text == "" {
				return nil, fmt.Errorf("templates: %s: %s text is required", name, loc)
			}
			tpl.Text[loc] = text
			vars := variables(text)
			if loc == Locales[0] {
				tpl.Vars = vars
			} else if !slices.Equal(vars, tpl.Vars) {
				return nil, fmt.Errorf("templates: %s: %s uses %v, %s uses %v", name, loc, vars, Locales[0], tpl.Vars)
			}
		}
		out[name] = tpl
	}
	return out, nil
}

func variables(text string) []string {
	var out []string
	for _, m := range placeholder.FindAllStringSubmatch(text, -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	sort.Strings(out)
	return out
}

// Render fills a template; a missing variable is an error naming it.
func (t Template) Render(locale string, vars map[string]string) (string, error) {
	text, ok := t.Text[locale]
	if !ok {
		return "", fmt.Errorf("template %s has no %s text", t.Name, locale)
	}
	var missing []string
	out := placeholder.ReplaceAllStringFunc(text, func(m string) string {
		name := strings.TrimSpace(m[2 : len(m)-2])
		v, ok := vars[name]
		if !ok || v == "" {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("template %s needs %s", t.Name, strings.Join(missing, ", "))
	}
	return out, nil
}

// List is the templates by name, for the console.
func (ts Templates) List() []Template {
	out := make([]Template, 0, len(ts))
	for _, t := range ts {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Texts are the templates as notify's templates file holds them (name → locale → text), so the
// deployment gives notify the same marketing texts the console previews.
func (ts Templates) Texts() map[string]map[string]string {
	out := make(map[string]map[string]string, len(ts))
	for name, t := range ts {
		out[name] = map[string]string{}
		for loc, text := range t.Text {
			out[name][loc] = text
		}
	}
	return out
}
