// Package clock is the injectable time source of the console's services:
// tests set it, production leaves it nil for the wall clock.
package clock

import "time"

// Func returns the current time; nil means the wall clock.
type Func func() time.Time

// UTC is the current time in UTC, as the services store and audit it.
func (f Func) UTC() time.Time {
	if f == nil {
		return time.Now().UTC()
	}
	return f().UTC()
}
