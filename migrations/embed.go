// Package migrations holds the console's versioned SQL migrations, one
// directory per database dialect, embedded in the binary and applied by goose.
package migrations

import "embed"

// Postgres holds the PostgreSQL migrations.
//
//go:embed postgres/*.sql
var Postgres embed.FS

// SQLite holds the SQLite migrations.
//
//go:embed sqlite/*.sql
var SQLite embed.FS
