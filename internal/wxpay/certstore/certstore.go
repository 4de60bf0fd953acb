// Package certstore keeps WeChat Pay platform certificates and their refresh
// schedule in the console's database (wxpay.CertStorage), so that every
// console instance sharing it verifies replies with the same certificates
// and only one of them downloads at each refresh.
package certstore

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"voucherconsole/internal/wxpay"
)

// Store is a wxpay.CertStorage on the console's database.
type Store struct {
	DB *gorm.DB
}

var _ wxpay.CertStorage = (*Store)(nil)

type certRow struct {
	Account     string
	SerialNo    string
	Certificate string
	Fingerprint string
	NotBefore   int64
	NotAfter    int64
	FetchedAt   int64
}

func (certRow) TableName() string { return "wxpay_platform_certs" }

// LoadCerts returns the account's stored certificates. One that no longer
// parses is skipped: it will be replaced by the next download.
func (s *Store) LoadCerts(ctx context.Context, account string) ([]*wxpay.PlatformCert, error) {
	var rows []certRow
	if err := s.DB.WithContext(ctx).Where("account = ?", account).Order("not_before").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]*wxpay.PlatformCert, 0, len(rows))
	for _, r := range rows {
		c, err := wxpay.ParsePlatformCert(r.Certificate)
		if err != nil || c.Serial != r.SerialNo {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// SaveCerts replaces the account's certificates in one transaction.
func (s *Store) SaveCerts(ctx context.Context, account string, certs []*wxpay.PlatformCert, now time.Time) error {
	return s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("account = ?", account).Delete(&certRow{}).Error; err != nil {
			return err
		}
		for _, c := range certs {
			row := certRow{Account: account, SerialNo: c.Serial, Certificate: c.PEM, Fingerprint: c.Fingerprint,
				NotBefore: c.NotBefore.Unix(), NotAfter: c.NotAfter.Unix(), FetchedAt: now.Unix()}
			if err := tx.Create(&row).Error; err != nil {
				return fmt.Errorf("certificate %s: %w", c.Serial, err)
			}
		}
		return nil
	})
}

// ClaimRefresh moves the account's next refresh to now+every if it is due,
// in one statement: of instances asking at once, the database lets exactly
// one statement change the row, and that instance downloads.
func (s *Store) ClaimRefresh(ctx context.Context, account string, now time.Time, every time.Duration) (bool, error) {
	res := s.DB.WithContext(ctx).Exec(`INSERT INTO wxpay_cert_refresh (account, next_at, claimed_at) VALUES (?, ?, ?)
		ON CONFLICT (account) DO UPDATE SET next_at = excluded.next_at, claimed_at = excluded.claimed_at
		WHERE wxpay_cert_refresh.next_at <= ?`,
		account, now.Add(every).Unix(), now.Unix(), now.Unix())
	if res.Error != nil {
		return false, res.Error
	}
	return res.RowsAffected == 1, nil
}
