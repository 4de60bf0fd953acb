package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// state is everything the sandbox remembers. The exported fields are what is
// persisted (codes excepted: see codesFile); the maps are indexes rebuilt on
// load. All of it is guarded by Sandbox.mu.
type state struct {
	NextFavorID    int64             `json:"next_favor_id"`
	NextToken      uint64            `json:"next_token"`
	ProductCoupons []*productCoupon  `json:"product_coupons"`
	PCStocks       []*pcStock        `json:"product_coupon_stocks"`
	Bundles        []*stockBundle    `json:"stock_bundles"`
	Favor          []*favorStock     `json:"favor_stocks"`
	Busifavor      []*busifavorStock `json:"busifavor_stocks"`
	Requests       []*requestRecord  `json:"requests"`
	Tokens         []*tokenRecord    `json:"tokens"`

	productCoupons map[string]*productCoupon
	pcStocks       map[string]*pcStock // by pcStockKey
	bundles        map[string]*stockBundle
	favor          map[string]*favorStock
	busifavor      map[string]*busifavorStock
	requests       map[string]*requestRecord // by requestKey
	tokens         map[string]*tokenRecord
}

func newState() *state {
	st := &state{NextFavorID: firstFavorID}
	st.index()
	return st
}

// firstFavorID is the ID the first favor stock created through the API gets.
const firstFavorID = 1700000101

func pcStockKey(productCouponID, stockID string) string { return productCouponID + "/" + stockID }

func requestKey(endpoint, requestNo string) string { return endpoint + "\x00" + requestNo }

// index rebuilds the maps from the slices.
func (st *state) index() {
	st.productCoupons = map[string]*productCoupon{}
	for _, p := range st.ProductCoupons {
		st.productCoupons[p.ID] = p
	}
	st.pcStocks = map[string]*pcStock{}
	for _, s := range st.PCStocks {
		if s.codes == nil {
			s.codes = newCodeSet()
		}
		if s.PerUser == nil {
			s.PerUser = map[string]int64{}
		}
		st.pcStocks[pcStockKey(s.ProductCouponID, s.StockID)] = s
	}
	st.bundles = map[string]*stockBundle{}
	for _, b := range st.Bundles {
		st.bundles[b.ID] = b
	}
	st.favor = map[string]*favorStock{}
	for _, f := range st.Favor {
		st.favor[f.StockID] = f
	}
	st.busifavor = map[string]*busifavorStock{}
	for _, b := range st.Busifavor {
		if b.codes == nil {
			b.codes = newCodeSet()
		}
		st.busifavor[b.StockID] = b
	}
	st.requests = map[string]*requestRecord{}
	for _, r := range st.Requests {
		st.requests[requestKey(r.Endpoint, r.RequestNo)] = r
	}
	st.tokens = map[string]*tokenRecord{}
	for _, t := range st.Tokens {
		st.tokens[t.Token] = t
	}
}

func (st *state) addProductCoupon(p *productCoupon) {
	st.ProductCoupons = append(st.ProductCoupons, p)
	st.productCoupons[p.ID] = p
}

func (st *state) addPCStock(s *pcStock) {
	if s.codes == nil {
		s.codes = newCodeSet()
	}
	if s.PerUser == nil {
		s.PerUser = map[string]int64{}
	}
	st.PCStocks = append(st.PCStocks, s)
	st.pcStocks[pcStockKey(s.ProductCouponID, s.StockID)] = s
}

func (st *state) addBundle(b *stockBundle) {
	st.Bundles = append(st.Bundles, b)
	st.bundles[b.ID] = b
}

func (st *state) addFavor(f *favorStock) {
	st.Favor = append(st.Favor, f)
	st.favor[f.StockID] = f
}

func (st *state) addBusifavor(b *busifavorStock) {
	if b.codes == nil {
		b.codes = newCodeSet()
	}
	st.Busifavor = append(st.Busifavor, b)
	st.busifavor[b.StockID] = b
}

// bundlesOf lists the IDs of the bundles holding a product-coupon stock.
func (st *state) bundlesOf(s *pcStock) []string {
	ids := []string{}
	for _, b := range st.Bundles {
		if b.ProductCouponID != s.ProductCouponID {
			continue
		}
		for _, id := range b.StockIDs {
			if id == s.StockID {
				ids = append(ids, b.ID)
				break
			}
		}
	}
	return ids
}

// snapshot copies what persistence writes, so that the copy can be encoded
// after the lock is released. Records that change in place are copied by
// value; those that never change after creation (product coupons, bundles,
// tokens, a favor stock's request) are shared.
func (st *state) snapshot() *state {
	c := &state{
		NextFavorID:    st.NextFavorID,
		NextToken:      st.NextToken,
		ProductCoupons: append([]*productCoupon(nil), st.ProductCoupons...),
		Bundles:        append([]*stockBundle(nil), st.Bundles...),
		Tokens:         append([]*tokenRecord(nil), st.Tokens...),
	}
	for _, s := range st.PCStocks {
		cp := *s
		cp.PerUser = maps.Clone(s.PerUser)
		cp.codes = nil
		c.PCStocks = append(c.PCStocks, &cp)
	}
	for _, f := range st.Favor {
		cp := *f
		c.Favor = append(c.Favor, &cp)
	}
	for _, b := range st.Busifavor {
		cp := *b
		cp.codes = nil
		c.Busifavor = append(c.Busifavor, &cp)
	}
	for _, r := range st.Requests {
		cp := *r
		c.Requests = append(c.Requests, &cp)
	}
	return c
}

// Files inside StateDir.
const (
	stateFileName = "state.json"
	keysDirName   = "keys"
	codesDirName  = "codes"
)

// Codes are kept out of state.json in one file per stock, one code a line,
// appended to as codes arrive: a stock may hold a million codes, and
// rewriting them all after every 200-code upload would cost far more than
// the upload. state.json itself is replaced atomically. Codes are appended
// before state.json is written, so a crash in between can leave codes that
// state.json's request log does not know about (a retried upload then reports
// them as already uploaded) but never the reverse.
func codesFile(dir, kind, id string) string {
	clean := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, id)
	return filepath.Join(dir, codesDirName, kind+"_"+clean+".txt")
}

// loadState reads StateDir's state, reporting false when there is none.
func loadState(dir string) (*state, bool, error) {
	data, err := os.ReadFile(filepath.Join(dir, stateFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("sandbox state: %w", err)
	}
	st := &state{}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, false, fmt.Errorf("sandbox state %s: %w", stateFileName, err)
	}
	st.index()
	for _, s := range st.PCStocks {
		if err := readCodes(codesFile(dir, KindProductCoupon, s.ProductCouponID+"_"+s.StockID), s.codes); err != nil {
			return nil, false, err
		}
	}
	for _, b := range st.Busifavor {
		if err := readCodes(codesFile(dir, KindBusifavor, b.StockID), b.codes); err != nil {
			return nil, false, err
		}
	}
	return st, true, nil
}

// readCodes loads a codes file into set. A last line without its newline is
// the remains of an interrupted append: it is dropped and cut from the file
// so that the next append starts on a fresh line.
func readCodes(path string, set *codeSet) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sandbox codes: %w", err)
	}
	if i := bytes.LastIndexByte(data, '\n'); i != len(data)-1 {
		data = data[:i+1]
		if err := os.Truncate(path, int64(i+1)); err != nil {
			return fmt.Errorf("sandbox codes: %w", err)
		}
	}
	text := string(data)
	for len(text) > 0 {
		line, rest, _ := strings.Cut(text, "\n")
		text = rest
		if line != "" && !set.has(line) {
			set.add(line)
		}
	}
	set.persisted = len(set.list)
	return nil
}

// appendCodes appends codes to a codes file, one a line.
func appendCodes(path string, codes []string) error {
	if len(codes) == 0 {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	for _, c := range codes {
		b.WriteString(c)
		b.WriteByte('\n')
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// codeJob is the part of one stock's codes not yet in its file.
type codeJob struct {
	path  string
	codes []string
	set   *codeSet
	upto  int
}

// flush writes the state to StateDir: new codes first, then state.json.
func (s *Sandbox) flush() error {
	if s.opts.StateDir == "" {
		return nil
	}
	s.flushMu.Lock()
	defer s.flushMu.Unlock()

	s.mu.Lock()
	snap := s.st.snapshot()
	var jobs []codeJob
	addJob := func(path string, set *codeSet) {
		all := set.snapshot()
		if set.persisted < len(all) {
			jobs = append(jobs, codeJob{path: path, codes: all[set.persisted:], set: set, upto: len(all)})
		}
	}
	for _, st := range s.st.PCStocks {
		addJob(codesFile(s.opts.StateDir, KindProductCoupon, st.ProductCouponID+"_"+st.StockID), st.codes)
	}
	for _, b := range s.st.Busifavor {
		addJob(codesFile(s.opts.StateDir, KindBusifavor, b.StockID), b.codes)
	}
	s.mu.Unlock()

	if len(jobs) > 0 {
		if err := os.MkdirAll(filepath.Join(s.opts.StateDir, codesDirName), 0o700); err != nil {
			return fmt.Errorf("sandbox state: %w", err)
		}
	}
	for _, j := range jobs {
		if err := appendCodes(j.path, j.codes); err != nil {
			return fmt.Errorf("sandbox state: %w", err)
		}
		s.mu.Lock()
		j.set.persisted = j.upto
		s.mu.Unlock()
	}
	data, err := json.Marshal(snap)
	if err != nil {
		return fmt.Errorf("sandbox state: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(s.opts.StateDir, stateFileName), data, 0o600); err != nil {
		return fmt.Errorf("sandbox state: %w", err)
	}
	return nil
}

// markDirty schedules a flush after the save delay, so that a burst of
// mutations is written once.
func (s *Sandbox) markDirty() {
	if s.opts.StateDir == "" {
		return
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	if s.closed || s.saveTimer != nil {
		return
	}
	s.saving.Add(1)
	s.saveTimer = time.AfterFunc(s.saveDelay, func() {
		defer s.saving.Done()
		s.saveMu.Lock()
		s.saveTimer = nil
		s.saveMu.Unlock()
		if err := s.flush(); err != nil {
			s.saveErr.Store(&err)
		}
	})
}
