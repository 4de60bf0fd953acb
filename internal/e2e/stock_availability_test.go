package e2e

import (
	"testing"

	"voucherconsole/internal/models"
	"voucherconsole/internal/wxpay/sandbox"
)

// A merchant stock's page shows when its coupons may be used: its weekly
// window (available_week) and its irregular windows
// (irregulary_avaliable_time), in the user's language.
func TestStockPageAvailabilityWindows(t *testing.T) {
	c := startConsole(t, nil)
	hc := c.userClient(t, "sue", models.RoleSupport)
	id := stockRef(t, c, sandbox.SeedBusifavorUpload)
	_, zh := fetch(t, hc, "GET", c.URL+"/stocks/"+id, nil, "")
	for _, want := range []string{"每周可用时间", "周六、周日 10:00–22:00", "不规则可用时间"} {
		if !has(zh, want) {
			t.Errorf("Chinese stock page lacks %q", want)
		}
	}
	_, en := fetch(t, hc, "GET", c.URL+"/stocks/"+id, nil, "en")
	if !has(en, "Weekly availability") || !has(en, "10:00–22:00") || !has(en, "Irregular availability") {
		t.Error("English stock page lacks the windows")
	}
	// A stock without windows shows none.
	_, other := fetch(t, hc, "GET", c.URL+"/stocks/"+stockRef(t, c, sandbox.SeedBusifavorWechatPay), nil, "en")
	if has(other, "Weekly availability") {
		t.Error("a stock without windows shows one")
	}
}
