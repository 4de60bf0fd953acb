package approvals

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Policy names the actions that need a second person. Its text form is
// CONSOLE_APPROVALS's: "deactivate,create:50000,upload:100000" — every
// deactivation; stocks budgeted at ¥50,000 or more; code files of 100,000
// codes or more. Empty: nothing needs approval.
type Policy struct {
	Deactivate bool
	// CreateMinYuan: stock creations with a budget of at least this many
	// yuan need approval; 0: none do.
	CreateMinYuan int64
	// UploadMinCodes: code files of at least this many codes need
	// approval; 0: none do.
	UploadMinCodes int64
}

// ErrPolicy is a policy text that does not parse.
var ErrPolicy = errors.New("approvals: invalid policy")

// maxThreshold bounds the amounts, so no threshold overflows in fen.
const maxThreshold = 1_000_000_000_000

// ParsePolicy reads a policy's text form.
func ParsePolicy(s string) (Policy, error) {
	var p Policy
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, arg, hasArg := strings.Cut(part, ":")
		name = strings.ToLower(strings.TrimSpace(name))
		if seen[name] {
			return Policy{}, fmt.Errorf("%w: %q named twice", ErrPolicy, name)
		}
		seen[name] = true
		switch name {
		case "deactivate":
			if hasArg {
				return Policy{}, fmt.Errorf("%w: deactivate takes no amount", ErrPolicy)
			}
			p.Deactivate = true
		case "create", "upload":
			n, err := strconv.ParseInt(strings.TrimSpace(arg), 10, 64)
			if !hasArg || err != nil || n < 1 || n > maxThreshold {
				return Policy{}, fmt.Errorf("%w: %s needs a whole number from 1 to %d, as in %s:50000", ErrPolicy, name, int64(maxThreshold), name)
			}
			if name == "create" {
				p.CreateMinYuan = n
			} else {
				p.UploadMinCodes = n
			}
		default:
			return Policy{}, fmt.Errorf("%w: unknown action %q (deactivate, create:<yuan>, upload:<codes>)", ErrPolicy, name)
		}
	}
	return p, nil
}

// String is the policy's text form.
func (p Policy) String() string {
	var parts []string
	if p.Deactivate {
		parts = append(parts, "deactivate")
	}
	if p.CreateMinYuan > 0 {
		parts = append(parts, "create:"+strconv.FormatInt(p.CreateMinYuan, 10))
	}
	if p.UploadMinCodes > 0 {
		parts = append(parts, "upload:"+strconv.FormatInt(p.UploadMinCodes, 10))
	}
	return strings.Join(parts, ",")
}

// CreateNeedsApproval reports whether a stock budgeted at budgetFen needs
// approval.
func (p Policy) CreateNeedsApproval(budgetFen int64) bool {
	return p.CreateMinYuan > 0 && budgetFen >= p.CreateMinYuan*100
}

// UploadNeedsApproval reports whether a file of codes codes needs approval.
func (p Policy) UploadNeedsApproval(codes int64) bool {
	return p.UploadMinCodes > 0 && codes >= p.UploadMinCodes
}
