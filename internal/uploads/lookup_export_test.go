package uploads

// The look-up statements, for the plan test.
const (
	KnownCodesPostgres = knownCodesPostgres
	KnownCodesSQLite   = knownCodesSQLite
)
