package handlers

import (
	"go/build"
	"reflect"
	"strings"
	"testing"

	"voucherconsole/internal/wxops"
	"voucherconsole/internal/wxpay"
)

// The HTTP layer binds, calls a service and renders: it imports no ORM and
// its dependencies hold no WeChat Pay client nor operation store — a WeChat
// Pay call that changes something is a service's, through wxops.Run.
func TestHandlersLayer(t *testing.T) {
	pkg, err := build.ImportDir(".", 0) // this package, tests left out
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if strings.HasPrefix(imp, "gorm.io/") || imp == "database/sql" || imp == "voucherconsole/internal/wxops" {
			t.Errorf("internal/handlers imports %s", imp)
		}
	}
	forbidden := map[reflect.Type]bool{
		reflect.TypeFor[*wxpay.Client](): true,
		reflect.TypeFor[*wxops.Store]():  true,
	}
	deps := reflect.TypeFor[Deps]()
	for i := range deps.NumField() {
		f := deps.Field(i)
		if f.Name == "WX" || f.Name == "Ops" || forbidden[f.Type] {
			t.Errorf("handlers.Deps holds %s %s", f.Name, f.Type)
		}
	}
}
