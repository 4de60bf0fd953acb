package uploads

import "time"

// Status is where an upload stands.
type Status string

// Upload statuses: checking → checked → queued → sending → finished, failed
// or cancelled; a checked upload may be abandoned instead. failed and
// cancelled uploads (and finished ones with failed batches) can be resumed.
const (
	StatusChecking  Status = "checking"
	StatusChecked   Status = "checked"
	StatusQueued    Status = "queued"
	StatusSending   Status = "sending"
	StatusFinished  Status = "finished"
	StatusFailed    Status = "failed"
	StatusCancelled Status = "cancelled"
	StatusAbandoned Status = "abandoned"
)

// Active reports whether the upload is being (or about to be) sent.
func (s Status) Active() bool { return s == StatusQueued || s == StatusSending }

// Ended reports whether the upload has a report.
func (s Status) Ended() bool {
	return s == StatusFinished || s == StatusFailed || s == StatusCancelled
}

// Upload is one code file uploaded to one stock.
type Upload struct {
	ID         int64 `gorm:"primaryKey"`
	StockRef   int64
	UserID     *int64
	FileName   string
	FilePath   string // relative to the data directory
	FileSize   int64
	FileSHA256 string `gorm:"column:file_sha256"`
	Encoding   string
	HasHeader  bool
	Status     Status

	// The check. RowsRead = Valid + Invalid + Duplicate; Valid = Known +
	// CodesTotal.
	RowsRead       int64
	BlankRows      int64
	ValidCount     int64
	InvalidCount   int64
	DuplicateCount int64
	KnownCount     int64 // already uploaded to this stock by the console
	CodesTotal     int64 // to send
	BatchesTotal   int64

	// Sending.
	CodesUploaded   int64
	CodesExist      int64 // WeChat Pay had them already
	CodesFailed     int64
	BatchesSent     int64
	BatchesFailed   int64
	CancelRequested bool
	ErrorCode       string
	ErrorMessage    string

	JobID      *int64
	LeaseOwner *string
	LeaseUntil int64

	CreatedAt  time.Time
	CheckedAt  *time.Time
	StartedAt  *time.Time
	FinishedAt *time.Time
	UpdatedAt  time.Time
}

// CodesDone is how many codes have an outcome.
func (u *Upload) CodesDone() int64 { return u.CodesUploaded + u.CodesExist + u.CodesFailed }

// NotSent is how many codes to send have no outcome (yet, or ever: a
// cancelled or failed upload).
func (u *Upload) NotSent() int64 { return u.CodesTotal - u.CodesDone() }

// AlreadyOnWeChat is the codes that were on the stock already: known to the
// console before sending, or reported by WeChat Pay as existing.
func (u *Upload) AlreadyOnWeChat() int64 { return u.KnownCount + u.CodesExist }

// Reconciles reports whether the report's numbers add up: rows read =
// uploaded + invalid + duplicate in file + already on WeChat + failed
// (+ not sent, for an upload that did not finish).
func (u *Upload) Reconciles() bool {
	return u.RowsRead == u.CodesUploaded+u.InvalidCount+u.DuplicateCount+u.AlreadyOnWeChat()+u.CodesFailed+u.NotSent()
}

// BatchStatus is where a batch stands.
type BatchStatus string

// Batch statuses.
const (
	BatchPending BatchStatus = "pending"
	BatchSent    BatchStatus = "sent"
	BatchFailed  BatchStatus = "failed"
)

// Batch is up to 200 codes sent in one request, with its request number,
// fixed before the first try.
type Batch struct {
	ID            int64 `gorm:"primaryKey"`
	UploadID      int64
	BatchNo       int
	RequestNo     string
	CodeCount     int
	Codes         string // JSON array
	RowNos        string // JSON array, parallel to Codes
	Status        BatchStatus
	Attempts      int
	UploadedCount int
	ExistCodes    string // JSON array
	FailedCodes   string // JSON array of FailedCode
	HTTPStatus    int    `gorm:"column:http_status"`
	ErrorCode     string
	ErrorMessage  string
	WxRequestID   string
	SentBy        string
	DoneAt        *time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// TableName is upload_batches.
func (Batch) TableName() string { return "upload_batches" }

// FailedCode is a code WeChat Pay refused within a batch it accepted.
type FailedCode struct {
	Code    string `json:"code"`
	Err     string `json:"err"`
	Message string `json:"msg"`
}

// Problem is a row of the file that is not sent.
type Problem struct {
	ID       int64 `gorm:"primaryKey"`
	UploadID int64
	RowNo    int64
	Code     string
	Reason   string
	Detail   string
}

// TableName is upload_problems.
func (Problem) TableName() string { return "upload_problems" }

// Problem reasons besides codefile's (empty, too_long, bad_char, duplicate,
// unterminated_quote, bad_quote, line_too_long).
const (
	// ReasonKnown: the console has already seen this code on the stock.
	ReasonKnown = "already_uploaded"
)

// Report reasons, for codes that were sent.
const (
	ReasonWxExists = "wx_exists" // WeChat Pay: already on the stock
	ReasonWxFailed = "wx_failed" // WeChat Pay refused the code or its batch
	ReasonNotSent  = "not_sent"  // cancelled or failed before it was sent
)

// StockCode is a code the console has seen confirmed on a stock.
type StockCode struct {
	StockRef  int64  `gorm:"primaryKey"`
	Code      string `gorm:"primaryKey"`
	UploadID  int64
	CreatedAt time.Time
}
