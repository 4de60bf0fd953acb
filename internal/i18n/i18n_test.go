package i18n

import (
	"regexp"
	"slices"
	"testing"
)

// Every message exists in every locale, with the same format verbs.
func TestCataloguesComplete(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	verbs := regexp.MustCompile(`%[-+# 0-9.]*[a-zA-Z%]`)
	zh := c.For(Chinese)
	for _, l := range Locales {
		for _, id := range c.IDs(Chinese) {
			loc := c.For(l)
			if !loc.Has(id) {
				t.Errorf("%s: message %q missing", l, id)
				continue
			}
			a := verbs.FindAllString(zh.T(id), -1)
			b := verbs.FindAllString(loc.T(id), -1)
			if !slices.Equal(a, b) {
				t.Errorf("%s: message %q has verbs %v, Chinese has %v", l, id, b, a)
			}
		}
		for _, id := range c.IDs(l) {
			if !zh.Has(id) {
				t.Errorf("%s: message %q is not in the Chinese catalogue", l, id)
			}
		}
	}
}

func TestFromAcceptLanguage(t *testing.T) {
	for header, want := range map[string]Locale{
		"":                        Chinese,
		"en":                      English,
		"en-US,en;q=0.9":          English,
		"zh-CN,zh;q=0.9,en;q=0.8": Chinese,
		"fr-FR":                   Chinese,
		"de, en;q=0.5":            English,
		"garbage;;;":              Chinese,
	} {
		if got := FromAcceptLanguage(header); got != want {
			t.Errorf("FromAcceptLanguage(%q) = %s, want %s", header, got, want)
		}
	}
}
