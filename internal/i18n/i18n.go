// Package i18n holds the console's message catalogues — Simplified Chinese
// first, English second — and picks the language for a request.
package i18n

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"

	"golang.org/x/text/language"
)

// Locale is a supported language tag.
type Locale string

const (
	Chinese Locale = "zh-CN" // the default
	English Locale = "en"
)

// Locales lists the supported languages, default first.
var Locales = []Locale{Chinese, English}

// Each locale is a directory of catalogue files, one per area of the console
// (core.json, stocks.json, …), merged at load.
//
//go:embed locales
var files embed.FS

// Catalog maps message IDs to text per locale.
type Catalog struct {
	messages map[Locale]map[string]string
}

// Load reads the embedded catalogues. A message defined twice is an error; a
// message missing from one locale is caught by the package's tests.
func Load() (*Catalog, error) {
	c := &Catalog{messages: map[Locale]map[string]string{}}
	for _, l := range Locales {
		dir := "locales/" + string(l)
		entries, err := fs.ReadDir(files, dir)
		if err != nil {
			return nil, err
		}
		merged := map[string]string{}
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".json") {
				continue
			}
			data, err := files.ReadFile(dir + "/" + e.Name())
			if err != nil {
				return nil, err
			}
			m := map[string]string{}
			if err := json.Unmarshal(data, &m); err != nil {
				return nil, fmt.Errorf("catalogue %s/%s: %w", l, e.Name(), err)
			}
			for id, msg := range m {
				if _, dup := merged[id]; dup {
					return nil, fmt.Errorf("catalogue %s: message %q defined twice", l, id)
				}
				merged[id] = msg
			}
		}
		c.messages[l] = merged
	}
	return c, nil
}

// MustLoad is Load for program start-up, where a broken catalogue is a bug.
func MustLoad() *Catalog {
	c, err := Load()
	if err != nil {
		panic(err)
	}
	return c
}

// IDs returns the message IDs of a locale (for tests).
func (c *Catalog) IDs(l Locale) []string {
	ids := make([]string, 0, len(c.messages[l]))
	for id := range c.messages[l] {
		ids = append(ids, id)
	}
	return ids
}

// Localizer translates for one locale.
type Localizer struct {
	Locale  Locale
	catalog *Catalog
}

// For returns a localizer for l.
func (c *Catalog) For(l Locale) Localizer { return Localizer{Locale: l, catalog: c} }

// T returns message id, formatted with args (fmt verbs) when given. An
// unknown id falls back to Chinese, then to the id itself, so a missing
// message is visible rather than blank.
func (l Localizer) T(id string, args ...any) string {
	msg, ok := l.catalog.messages[l.Locale][id]
	if !ok {
		if msg, ok = l.catalog.messages[Chinese][id]; !ok {
			msg = id
		}
	}
	if len(args) > 0 {
		return fmt.Sprintf(msg, args...)
	}
	return msg
}

// Has reports whether id exists in l's catalogue.
func (l Localizer) Has(id string) bool {
	_, ok := l.catalog.messages[l.Locale][id]
	return ok
}

// Lang is the value for the html lang attribute.
func (l Localizer) Lang() string { return string(l.Locale) }

// Parse maps a stored or typed locale to a supported one.
func Parse(s string) (Locale, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "zh-cn", "zh", "zh-hans":
		return Chinese, true
	case "en", "en-us", "en-gb":
		return English, true
	}
	return "", false
}

var matcher = language.NewMatcher([]language.Tag{language.SimplifiedChinese, language.English})

// FromAcceptLanguage picks a locale from an Accept-Language header; Chinese
// when the header is absent or names nothing supported.
func FromAcceptLanguage(header string) Locale {
	if header == "" {
		return Chinese
	}
	tags, _, err := language.ParseAcceptLanguage(header)
	if err != nil || len(tags) == 0 {
		return Chinese
	}
	_, idx, conf := matcher.Match(tags...)
	if conf == language.No {
		return Chinese
	}
	if idx == 1 {
		return English
	}
	return Chinese
}
