package handlers

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// maxReturnPath bounds a return path; longer ones go home.
const maxReturnPath = 2048

// safeReturn is the one rule for where a user-supplied address (the sign-in
// form's next, the language form's return) may send the browser: a path on
// this console. Anything else — another host written as //host or /\host, a
// scheme, a control character or backslash browsers strip or turn into a
// slash, and the same hidden behind percent-encoding — goes home, "/".
func safeReturn(p string) string {
	if !isLocalPath(p) {
		return "/"
	}
	return p
}

func isLocalPath(p string) bool {
	if p == "" || len(p) > maxReturnPath || !utf8.ValidString(p) {
		return false
	}
	// Check the text as given and as a browser may read it after undoing
	// percent-encoding (more than once: %255C is %5C is \).
	for range 4 {
		if !plainLocalPath(p) {
			return false
		}
		dec, err := url.PathUnescape(p)
		if err != nil {
			return false
		}
		if dec == p {
			break
		}
		p = dec
	}
	return plainLocalPath(p)
}

// plainLocalPath checks p without decoding it.
func plainLocalPath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
		return false
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || r == '\\' || (r >= 0x80 && r <= 0x9f) || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	u, err := url.Parse(p)
	return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil && u.Opaque == "" && strings.HasPrefix(u.Path, "/")
}
