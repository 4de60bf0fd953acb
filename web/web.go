// Package web embeds the console's static assets; the templ components live
// in web/templates.
package web

import "embed"

// Static holds web/static (stylesheet, scripts), served under /static/.
//
//go:embed static
var Static embed.FS
