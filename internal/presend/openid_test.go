package presend

import (
	"strings"
	"testing"
	"time"
)

func TestMask(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "oUpF…eS6o"},
		{"abcdefghijkl", "abcd…ijkl"},
		{"abcdefghijk", "abc…ijk"},
		{"abcdef", "ab…ef"},
		{"ab", "…"},
		{"", "…"},
	} {
		if got := Mask(tc.in); got != tc.want {
			t.Errorf("Mask(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestKeys(t *testing.T) {
	k, err := NewKeys([]byte(strings.Repeat("s", 32)))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewKeys([]byte(strings.Repeat("t", 32)))
	const id = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"

	if h1, h2 := k.Hash(id), k.Hash(id); h1 != h2 || k.Hash(id) == other.Hash(id) || k.Hash(id) == k.Hash(id+"x") || len(k.Hash(id)) != 64 {
		t.Fatal("hash is not a stable keyed hash")
	}
	sealed, err := k.Seal(id, "PS2025060112345")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, id) {
		t.Fatal("sealed value contains the OpenID")
	}
	again, _ := k.Seal(id, "PS2025060112345")
	if again == sealed {
		t.Fatal("sealing is deterministic")
	}
	for _, tc := range []struct {
		name    string
		keys    *Keys
		sealed  string
		context string
		ok      bool
	}{
		{"same key and context", k, sealed, "PS2025060112345", true},
		{"other context", k, sealed, "PS2025060199999", false},
		{"other key", other, sealed, "PS2025060112345", false},
		{"altered", k, sealed[:len(sealed)-2] + "AA", "PS2025060112345", false},
		{"not base64", k, "***", "PS2025060112345", false},
		{"empty", k, "", "PS2025060112345", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.keys.Open(tc.sealed, tc.context)
			if tc.ok != (err == nil) || (tc.ok && got != id) {
				t.Fatalf("Open = %q, %v", got, err)
			}
		})
	}
	if _, err := NewKeys([]byte("short")); err == nil {
		t.Fatal("a short secret was accepted")
	}
}

func TestValidate(t *testing.T) {
	ok := Input{ProductCouponID: "1000000002", StockBundleID: "1000000002101", AppID: "wx6f3a9b2c1d4e5f70", OpenID: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}
	for _, tc := range []struct {
		name string
		mod  func(*Input)
		want map[string]string
	}{
		{"ok", func(*Input) {}, nil},
		{"attach of 150 characters", func(in *Input) { in.Attach = strings.Repeat("附", 150) }, nil},
		{"attach of 151 characters", func(in *Input) { in.Attach = strings.Repeat("附", 151) }, map[string]string{"attach": ProblemTooLong}},
		{"all missing", func(in *Input) { *in = Input{} }, map[string]string{
			"product_coupon_id": ProblemRequired, "stock_bundle_id": ProblemRequired, "appid": ProblemRequired, "openid": ProblemRequired}},
		{"bad appid", func(in *Input) { in.AppID = "app123456" }, map[string]string{"appid": ProblemFormat}},
		{"openid with a slash", func(in *Input) { in.OpenID = "oUpF/../x" }, map[string]string{"openid": ProblemFormat}},
		{"openid too long", func(in *Input) { in.OpenID = strings.Repeat("o", 129) }, map[string]string{"openid": ProblemFormat}},
		{"bundle with spaces inside", func(in *Input) { in.StockBundleID = "1 2" }, map[string]string{"stock_bundle_id": ProblemFormat}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := ok
			tc.mod(&in)
			got := Validate(in)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	t0 := mustTime("2025-06-02T10:00:00Z")
	for _, tc := range []struct {
		name string
		now  string
		want string
	}{
		{"first call", "2025-06-02T10:00:01Z", "2025-06-02T10:05:00Z"},
		{"resent within the first token's life", "2025-06-02T10:04:00Z", "2025-06-02T10:05:00Z"},
		{"resent after it", "2025-06-02T10:07:00Z", "2025-06-02T10:12:00Z"},
	} {
		if got := expiry(t0, mustTime(tc.now)); !got.Equal(mustTime(tc.want)) {
			t.Errorf("%s: expiry %s, want %s", tc.name, got, tc.want)
		}
	}
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}
