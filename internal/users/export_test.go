package users

import "context"

// HoldHashSlots takes n of the service's password-hash slots, as n slow
// sign-ins would, until release is called.
func HoldHashSlots(s *Service, n int) (release func()) {
	done := make(chan struct{})
	held := make(chan struct{}, n)
	for range n {
		go func() {
			_ = s.withHashSlot(context.Background(), func() { held <- struct{}{}; <-done })
		}()
	}
	for range n {
		<-held
	}
	return func() { close(done) }
}
