package codefile

import (
	"hash/maphash"
	"math/bits"
)

// dedup remembers the valid codes seen so far, by fingerprint, with the line
// of their first occurrence.
//
// Why fingerprints: keeping the codes themselves would cost their bytes plus
// a 16-byte string header and map overhead each (~100 MB for 1,000,000 codes
// of 40 characters, more for the multi-million-code files that fit in
// 100 MB). A fingerprint takes one 20-byte table slot (16 of hash, 4 of line
// number) however long the code.
//
// Why this is safe: the fingerprint is two 64-bit hash/maphash values of the
// code under two independent random seeds, i.e. 128 bits, all of them stored
// and compared. For n distinct codes the chance that any two share a
// fingerprint is about n²/2¹²⁹: ~1.5e-27 for 1,000,000 codes, ~2.4e-26 for
// 4,000,000, far below the rate of undetected hardware memory errors, so a
// false "duplicate" is practically impossible. The seeds are random per
// Read, so the file's author cannot know them and cannot craft colliding
// codes (maphash is not cryptographic, but it is keyed). maphash was chosen
// over a cryptographic hash such as truncated SHA-256 because it is about an
// order of magnitude faster (AES-based on amd64), which matters for the
// time budget of a few times a plain CSV read.
//
// Why not a Go map: the keys are already uniformly random, so an
// open-addressing table indexed by the fingerprint's top bits needs no
// further hashing, and an insert touches a single cache line. With a
// million distinct codes the table is tens of MB and nearly every insert is
// a cache miss; with a map[[16]byte]uint32 instead, reading 1,000,000
// distinct codes took about 1.5 times as long.
type dedup struct {
	s1, s2 maphash.Seed
	slots  []slot
	shift  uint // 64 - log2(len(slots)): the home slot of h1 is h1>>shift
	n      int  // occupied slots
	sink   uint32
}

// slot is one table entry: a fingerprint (h1, h2) split into 32-bit halves
// so that the slot packs into 20 bytes, and the line of its first
// occurrence. a == 0 marks an empty slot.
type slot struct {
	a, b, c, d uint32 // h1 low, h1 high, h2 low, h2 high
	line       uint32
}

const dedupMinSlots = 1 << 12

func newDedup() *dedup {
	d := &dedup{s1: maphash.MakeSeed(), s2: maphash.MakeSeed()}
	d.alloc(dedupMinSlots)
	return d
}

// maxReserve caps reserve: at 20 bytes a slot it is 40 MB, enough for
// 1,572,864 codes. Larger files grow the table as they go, and a bad
// estimate costs at most this much.
const maxReserve = 1 << 21

// reserve sizes the still empty table for about n codes, so that a big file
// does not pay for growing the table step by step: for 1,000,000 codes that
// is a fifth of the read time, mostly first-touch page faults of the
// discarded smaller tables.
func (d *dedup) reserve(n int64) {
	if d.n > 0 || n <= 0 {
		return
	}
	slots := dedupMinSlots
	for slots < maxReserve && int64(slots)/4*3 < n {
		slots *= 2
	}
	if slots > len(d.slots) {
		d.alloc(slots)
	}
}

func (d *dedup) alloc(n int) {
	d.slots = make([]slot, n)
	d.shift = uint(64 - bits.TrailingZeros(uint(n)))
}

// fingerprint returns the 128-bit fingerprint of code. The low half of h1
// is never 0, which marks empty slots (forcing it costs less than a bit).
func (d *dedup) fingerprint(code string) (h1, h2 uint64) {
	h1 = maphash.String(d.s1, code)
	h2 = maphash.String(d.s2, code)
	if uint32(h1) == 0 {
		h1 |= 1
	}
	return h1, h2
}

// touch loads the home slot of each valid fingerprint in batch. It is a
// prefetch: the loop does not branch on what it loads, so the CPU issues the
// loads back to back and their cache misses overlap, and the inserts that
// follow find their slots in cache. (Go has no prefetch instruction.)
func (d *dedup) touch(batch []pending) {
	var sink uint32
	for i := range batch {
		sink += d.slots[batch[i].h1>>d.shift].a
	}
	d.sink = sink
}

// insert records fingerprint (h1, h2) as first seen on line, or returns the
// line it was first seen on.
func (d *dedup) insert(h1, h2 uint64, line int) (first int, dup bool) {
	// Grow at 3/4 full: linear probing over random keys then needs ~8.5
	// probes for a miss at worst, mostly within one or two cache lines.
	if d.n >= len(d.slots)/4*3 {
		d.grow()
	}
	a, b, c, e := uint32(h1), uint32(h1>>32), uint32(h2), uint32(h2>>32)
	mask := len(d.slots) - 1
	for i := int(h1 >> d.shift); ; i = (i + 1) & mask {
		s := &d.slots[i]
		switch {
		case s.a == 0:
			*s = slot{a, b, c, e, uint32(line)} // line < maxLines, checked by the reader
			d.n++
			return 0, false
		case s.a == a && s.b == b && s.c == c && s.d == e:
			return int(s.line), true
		}
	}
}

// grow doubles the table. Because home slots are the top bits of h1, the
// old slots are reinserted in nearly ascending order of their new positions,
// so rehashing walks both arrays almost sequentially.
func (d *dedup) grow() {
	old := d.slots
	d.alloc(2 * len(old))
	mask := len(d.slots) - 1
	for _, s := range old {
		if s.a == 0 {
			continue
		}
		i := int((uint64(s.b)<<32 | uint64(s.a)) >> d.shift)
		for d.slots[i].a != 0 {
			i = (i + 1) & mask
		}
		d.slots[i] = s
	}
}
