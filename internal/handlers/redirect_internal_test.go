package handlers

import "testing"

func TestSafeReturn(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"/stocks", "/stocks"},
		{"/stocks?q=%E5%88%B8&state=SENDING", "/stocks?q=%E5%88%B8&state=SENDING"},
		{"/audit?actor=a#top", "/audit?actor=a#top"},
		{"/uploads/3/report.csv", "/uploads/3/report.csv"},
		{"stocks", "/"},
		{"https://evil.example/", "/"},
		{"javascript:alert(1)", "/"},
		{"//evil.example", "/"},
		{"///evil.example", "/"},
		{"/\\evil.example", "/"},
		{"\\\\evil.example", "/"},
		{"/\\/evil.example", "/"},
		{"/stocks\\..\\..\\evil", "/"},
		{"/\t/evil.example", "/"},
		{"/\n/evil.example", "/"},
		{"/\r/evil.example", "/"},
		{"/\x00/evil.example", "/"},
		{"/\x7f", "/"},
		{"/\u0085/evil.example", "/"},
		{"/%2f/evil.example", "/"},
		{"/%2F%2Fevil.example", "/"},
		{"/%5Cevil.example", "/"},
		{"/%5cevil.example", "/"},
		{"/%255Cevil.example", "/"},
		{"/%252F/evil.example", "/"},
		{"/%09/evil.example", "/"},
		{"/%0a/evil.example", "/"},
		{"/%00", "/"},
		{"/%zz", "/"},
		{"/\xff", "/"},
		{" /stocks", "/"},
		{"/stocks/" + string(make([]byte, 3000)), "/"},
	} {
		if got := safeReturn(tc.in); got != tc.want {
			t.Errorf("safeReturn(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
