package handlers

import (
	"voucherconsole/internal/i18n"
	"voucherconsole/internal/stocks/favorform"
	"voucherconsole/internal/textcheck"
	"voucherconsole/web/templates"
)

// formTextFields are, per route, the fields whose form applies the one rule
// for entered text (textcheck) in its own validation and shows the error by
// the field, keeping the other values. checkInput still bounds their size and
// refuses, as a backstop, anything malformed in a field no form knows.
var formTextFields = map[string][]string{
	"POST /stocks/new":            favorform.TextFields,
	"POST /stocks/:id/deactivate": {"deactivate_reason", "stock_id"},
	"POST /presend":               {"product_coupon_id", "stock_bundle_id", "appid", "openid", "attach"},
	"GET /stocks":                 {"q"},
	"POST /approvals/:id/reject":  {"reject_reason"},
	"POST /stocks/register":       {"kind", "product_coupon_id", "stock_id", "stock_bundle_id", "name"},
	"GET /audit":                  auditTextFields,
	"GET /audit/export.csv":       auditTextFields,
}

var auditTextFields = []string{qUser, qAction, qTargetType, qTargetID, qOutcome, qFrom, qTo, qSearch}

// formChecksText reports whether the form of method+route checks field's
// text itself.
func formChecksText(method, route, field string) bool {
	for _, f := range formTextFields[method+" "+route] {
		if f == field {
			return true
		}
	}
	return false
}

// checkLines applies textcheck.Line to each one-line value: a value that is
// not text gets the field error and is replaced by its cleaned form, so the
// form re-renders keeping what was typed without echoing the bad bytes.
func checkLines(t i18n.Localizer, errs templates.FieldErrors, values map[string]*string) {
	for field, v := range values {
		if textcheck.Line(*v, 0) != nil {
			errs[field] = t.T("input.bad_text")
			*v = textcheck.Clean(*v)
		}
	}
}
