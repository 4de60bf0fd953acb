package database

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// Connection failures are "unavailable" (503, retried); errors in what the
// console asked are not.
func TestUnavailable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"connection refused", fmt.Errorf("load user: %w", refused), true},
		{"admin shutdown", &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}, true},
		{"starting up", &pgconn.PgError{Code: "57P03"}, true},
		{"connection exception", &pgconn.PgError{Code: "08006"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"syntax error", &pgconn.PgError{Code: "42601"}, false},
		{"not found", gorm.ErrRecordNotFound, false},
		{"canceled", context.Canceled, false},
		{"plain", errors.New("upload 3 vanished"), false},
		{"marked", fmt.Errorf("x: %w", ErrUnavailable), true},
	} {
		if got := Unavailable(tc.err); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A real failed connection (nothing listens on the port) is unavailable.
func TestUnavailableDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = OpenPostgres(context.Background(), "postgres://postgres@"+addr+"/x?sslmode=disable&connect_timeout=2")
	if err == nil {
		t.Fatal("connected to nothing")
	}
	if !Unavailable(err) {
		t.Fatalf("%v (%T) not unavailable", err, err)
	}
}
