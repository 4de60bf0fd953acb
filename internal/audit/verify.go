package audit

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Problem says how an entry breaks the chain.
type Problem string

const (
	ProblemHash     Problem = "hash"     // content does not match its hash: the entry was altered
	ProblemLink     Problem = "link"     // prev_hash is not the predecessor's hash: an entry before it was removed or altered
	ProblemSequence Problem = "sequence" // a sequence number is missing: an entry was removed
	ProblemTail     Problem = "tail"     // entries the chain head counts are gone from the end: they were removed
)

// Result of a chain verification.
type Result struct {
	Intact  bool
	Checked int64     // entries checked
	LastSeq int64     // last intact entry
	LastAt  time.Time // its time
	// When not intact: the first entry that breaks the chain.
	BrokenSeq int64
	Problem   Problem
}

func (r Result) String() string {
	if r.Intact {
		if r.Checked == 0 {
			return "audit chain intact: no entries"
		}
		return fmt.Sprintf("audit chain intact up to entry %d at %s (%d entries)", r.LastSeq, r.LastAt.UTC().Format(time.RFC3339), r.Checked)
	}
	return fmt.Sprintf("audit chain broken at entry %d (%s); intact up to entry %d", r.BrokenSeq, r.Problem, r.LastSeq)
}

const verifyBatch = 2000

// Verify walks the whole chain in sequence order, in batches so memory stays
// flat however long the log is.
//
// On PostgreSQL the chain head (audit_head) is read first and the walk must
// reach the entry it records, with the hash it records: entries cut off the
// end of the log are found too, unless the head was rewound as well.
func Verify(ctx context.Context, db *gorm.DB) (Result, error) {
	res := Result{Intact: true}
	head, err := readHead(ctx, db)
	if err != nil {
		return res, fmt.Errorf("audit verify: %w", err)
	}
	prevHash := GenesisHash
	var after int64
	for {
		var batch []Entry
		if err := db.WithContext(ctx).Where("seq > ?", after).Order("seq").Limit(verifyBatch).Find(&batch).Error; err != nil {
			return res, fmt.Errorf("audit verify: %w", err)
		}
		for i := range batch {
			e := &batch[i]
			switch {
			case e.Seq != after+1:
				res.Problem, res.BrokenSeq = ProblemSequence, after+1
			case e.PrevHash != prevHash:
				res.Problem, res.BrokenSeq = ProblemLink, e.Seq
			case ComputeHash(e) != e.Hash, head != nil && e.Seq == head.Seq && e.Hash != head.Hash:
				res.Problem, res.BrokenSeq = ProblemHash, e.Seq
			}
			if res.Problem != "" {
				res.Intact = false
				return res, nil
			}
			res.Checked++
			res.LastSeq, res.LastAt = e.Seq, e.OccurredAt
			prevHash, after = e.Hash, e.Seq
		}
		if len(batch) < verifyBatch {
			if head != nil && res.LastSeq < head.Seq {
				res.Intact, res.Problem, res.BrokenSeq = false, ProblemTail, res.LastSeq+1
			}
			return res, nil
		}
	}
}

// chainHead is PostgreSQL's audit_head row.
type chainHead struct {
	Seq  int64
	Hash string
}

// readHead reads the chain head; nil on SQLite, which has none.
func readHead(ctx context.Context, db *gorm.DB) (*chainHead, error) {
	if db.Dialector.Name() != "postgres" {
		return nil, nil
	}
	var h chainHead
	if err := db.WithContext(ctx).Raw("SELECT seq, hash FROM audit_head WHERE id = 1").Scan(&h).Error; err != nil {
		return nil, err
	}
	return &h, nil
}
