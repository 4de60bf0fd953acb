package handlers

import (
	"strings"
	"testing"

	"voucherconsole/internal/deactivate"
	"voucherconsole/internal/i18n"
	"voucherconsole/internal/models"
)

func TestFormTokenOr(t *testing.T) {
	for _, tc := range []struct {
		in   string
		keep bool
	}{
		{"0123456789abcdef0123456789abcdef", true},
		{"bench-form-00000001", true},
		{"", false},
		{"short", false},
		{"has space inside it", false},
		{"<script>alert(1)</script>", false},
		{string(make([]byte, 65)), false},
	} {
		got := formTokenOr(tc.in)
		if (got == tc.in) != tc.keep || !formTokenPattern.MatchString(got) {
			t.Errorf("formTokenOr(%q) = %q", tc.in, got)
		}
	}
	if a, b := newFormToken(), newFormToken(); a == b {
		t.Error("form tokens repeat")
	}
}

func TestMaskToken(t *testing.T) {
	for in, want := range map[string]string{"": "", "abcdefgh": "abcdefgh", "abcdefghi": "abcdefgh…"} {
		if got := maskToken(in); got != want {
			t.Errorf("maskToken(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRefusal(t *testing.T) {
	c := i18n.MustLoad()
	for _, tc := range []struct {
		loc  i18n.Locale
		st   models.Stock
		want string
	}{
		{i18n.English, models.Stock{Kind: models.KindProductCoupon, State: models.StateAuditing}, "This stock is Under review (AUDITING) on WeChat Pay"},
		{i18n.Chinese, models.Stock{Kind: models.KindProductCoupon, State: models.StateStopped}, "（STOPPED）"},
		{i18n.English, models.Stock{Kind: models.KindFavor, State: models.StateSending}, "Only product-coupon stocks can be deactivated"},
	} {
		got := refusal(c.For(tc.loc), deactivate.Check(&tc.st))
		if !strings.Contains(got, tc.want) {
			t.Errorf("refusal(%v) = %q, want it to contain %q", tc.st, got, tc.want)
		}
	}
}
