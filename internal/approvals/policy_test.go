package approvals

import (
	"errors"
	"testing"
)

func TestParsePolicy(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Policy
		ok   bool
		text string
	}{
		{"", Policy{}, true, ""},
		{"deactivate", Policy{Deactivate: true}, true, "deactivate"},
		{"deactivate,create:50000,upload:100000", Policy{true, 50000, 100000}, true, "deactivate,create:50000,upload:100000"},
		{" upload:10 , Deactivate ", Policy{Deactivate: true, UploadMinCodes: 10}, true, "deactivate,upload:10"},
		{"create", Policy{}, false, ""},
		{"create:0", Policy{}, false, ""},
		{"create:-5", Policy{}, false, ""},
		{"create:1e5", Policy{}, false, ""},
		{"deactivate:1", Policy{}, false, ""},
		{"deactivate,deactivate", Policy{}, false, ""},
		{"presend", Policy{}, false, ""},
	} {
		got, err := ParsePolicy(tc.in)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrPolicy)) {
			t.Errorf("ParsePolicy(%q) error %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if tc.ok && (got != tc.want || got.String() != tc.text) {
			t.Errorf("ParsePolicy(%q) = %+v (%q), want %+v (%q)", tc.in, got, got.String(), tc.want, tc.text)
		}
	}
	p := Policy{CreateMinYuan: 50000, UploadMinCodes: 100000}
	if !p.CreateNeedsApproval(5_000_000) || p.CreateNeedsApproval(4_999_999) || !p.UploadNeedsApproval(100000) || p.UploadNeedsApproval(99999) {
		t.Error("thresholds: at least the amount needs approval, less does not")
	}
}
