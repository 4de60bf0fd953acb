// Package templates holds the console's templ components: a base layout and
// one component, with one typed props struct, per page.
package templates

import (
	"voucherconsole/internal/i18n"
)

// NavItem is one entry of the navigation bar.
type NavItem struct {
	Path   string
	Label  string
	Active bool
	Badge  int64 // a count shown beside the label (unread alerts); 0: none
}

// Flash is a one-time message shown at the top of the next page.
type Flash struct {
	Kind    string // "success", "error" or "info"
	Message string
}

// Page is what every page needs; the handlers build it in one place.
type Page struct {
	T         i18n.Localizer
	Title     string
	Username  string // "" when nobody is signed in
	Roles     []string
	Nav       []NavItem
	Flash     *Flash
	RequestID string
	Path      string // the current path, for the language switch to return to
}

// SignedIn reports whether a user is signed in.
func (p Page) SignedIn() bool { return p.Username != "" }

// FieldErrors maps form field names to messages already in the user's
// language.
type FieldErrors map[string]string

// Has reports whether field has an error.
func (f FieldErrors) Has(field string) bool { _, ok := f[field]; return ok }

// WxProblem is a WeChat Pay error to show above a form (see wxpay.Describe):
// what it means in the user's language, WeChat Pay's code and message, and
// the Request-ID to quote to WeChat Pay support.
type WxProblem struct {
	Status                   int
	Explanation              string
	Code, Message, RequestID string
}
