package uploads

import (
	"context"
	"errors"
	"time"

	"github.com/riverqueue/river/rivertype"
	"gorm.io/gorm"

	"voucherconsole/internal/jobs"
)

// RunSweeper sweeps at once and then every Options.SweepEvery until ctx
// ends. Every instance runs one; they agree through the database.
func (s *Service) RunSweeper(ctx context.Context) {
	t := time.NewTicker(s.opts().SweepEvery)
	defer t.Stop()
	for {
		if err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log().Warn("upload sweep", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

var errSkip = errors.New("skip")

// staleCheck is how long after its last change a check is taken for dead.
// A check of the largest file takes seconds.
const staleCheck = time.Hour

// Sweep gives a new job to each active upload that has none that will run:
// its job was lost with the process that ran it (killed while it held the
// upload's claim, which then lapsed), or ended without ending the upload.
// River would rescue a killed process's job too, after RescueStuckJobsAfter;
// this is quicker, and the claim keeps two executions from sending at once.
//
// It also removes checks that never completed (their process died during
// the check): nothing was sent for them and nobody saw their counts.
func (s *Service) Sweep(ctx context.Context) error {
	var stale []Upload
	if err := s.DB.Gorm.WithContext(ctx).Where("status = ? AND updated_at < ?", StatusChecking, s.now().Add(-staleCheck)).
		Find(&stale).Error; err != nil {
		return err
	}
	for i := range stale {
		s.log().Warn("removing an upload whose check never completed", "upload", stale[i].ID)
		s.discard(&stale[i])
	}
	nowExpr, nowArgs := s.nowMicros()
	var cands []Upload
	err := s.DB.Gorm.WithContext(ctx).Select("id", "job_id", "lease_owner", "status").
		Where("status IN ? AND (lease_owner IS NULL OR lease_until < "+nowExpr+")",
			append([]any{[]Status{StatusQueued, StatusSending}}, nowArgs...)...).
		Order("id").Find(&cands).Error
	if err != nil {
		return err
	}
	for _, u := range cands {
		var state rivertype.JobState
		if u.JobID != nil {
			// Outside any transaction: the embedded database has one
			// connection.
			if state, err = s.Jobs.JobState(ctx, *u.JobID); err != nil {
				return err
			}
		}
		switch state {
		case rivertype.JobStateAvailable, rivertype.JobStateScheduled, rivertype.JobStateRetryable, rivertype.JobStatePending:
			continue // it will run
		case rivertype.JobStateRunning:
			if u.LeaseOwner == nil {
				continue // about to claim it (or River's rescuer will see to it)
			}
		}
		var old int64
		if u.JobID != nil {
			old = *u.JobID
		}
		err := s.Jobs.Transaction(ctx, func(tx *gorm.DB, enqueue jobs.Enqueue) error {
			res := tx.Exec("UPDATE uploads SET job_id = job_id WHERE id = ? AND status IN (?, ?) AND COALESCE(job_id, 0) = ? "+
				"AND (lease_owner IS NULL OR lease_until < "+nowExpr+")",
				append([]any{u.ID, StatusQueued, StatusSending, old}, nowArgs...)...)
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 {
				return errSkip // another instance saw to it, or it moved on
			}
			id, err := enqueue(SendArgs{UploadID: u.ID}, nil)
			if err != nil {
				return err
			}
			return tx.Model(&Upload{}).Where("id = ?", u.ID).Update("job_id", id).Error
		})
		switch {
		case errors.Is(err, errSkip):
		case err != nil:
			return err
		default:
			s.log().Info("upload given a new job: its previous one will not run", "upload", u.ID, "old_job", old, "old_state", state)
		}
	}
	return nil
}
