package sandbox

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"time"
)

// StockInfo is one stock as GET /_sandbox/stocks lists it. State is spelled
// as the stock's own API spells it (favor: running…; busifavor: RUNNING…;
// product coupon: SENDING…), and so is CouponCodeMode (busifavor:
// MERCHANT_UPLOAD…; product coupon: UPLOAD…; favor stocks have none).
// TotalCount and AvailableCount count uploaded codes.
type StockInfo struct {
	Kind            string   `json:"kind"`
	StockID         string   `json:"stock_id"`
	ProductCouponID string   `json:"product_coupon_id"`
	StockBundleIDs  []string `json:"stock_bundle_ids"`
	Name            string   `json:"name"`
	State           string   `json:"state"`
	CouponCodeMode  string   `json:"coupon_code_mode"`
	TotalCount      int64    `json:"total_count"`
	AvailableCount  int64    `json:"available_count"`
	Codes           []string `json:"codes"`
}

// RequestInfo is one request number as GET /_sandbox/requests lists it: how
// often it arrived at the endpoint and whether every body was the same.
type RequestInfo struct {
	Endpoint  string `json:"endpoint"`
	RequestNo string `json:"request_no"`
	Count     int    `json:"count"`
	Identical bool   `json:"identical"`
}

// BundleInfo is a product-coupon stock bundle (批次组).
type BundleInfo struct {
	StockBundleID   string   `json:"stock_bundle_id"`
	ProductCouponID string   `json:"product_coupon_id"`
	Name            string   `json:"name"`
	StockIDs        []string `json:"stock_ids"`
}

// TokenInfo is an issued pre-send token; Valid is false once it expired.
type TokenInfo struct {
	Token           string    `json:"token"`
	OpenID          string    `json:"openid"`
	AppID           string    `json:"appid"`
	ProductCouponID string    `json:"product_coupon_id"`
	StockBundleID   string    `json:"stock_bundle_id"`
	SendRequestNo   string    `json:"send_request_no"`
	Attach          string    `json:"attach,omitempty"`
	IssuedAt        time.Time `json:"issued_at"`
	ExpiresAt       time.Time `json:"expires_at"`
	Valid           bool      `json:"valid"`
}

// Stocks lists every stock with its codes, in creation order (demo data
// first).
func (s *Sandbox) Stocks() []StockInfo { return s.stocks(true) }

// StockSummaries lists every stock without its codes, which can number
// millions.
func (s *Sandbox) StockSummaries() []StockInfo { return s.stocks(false) }

func (s *Sandbox) stocks(withCodes bool) []StockInfo {
	s.mu.Lock()
	now := s.now()
	out := make([]StockInfo, 0, len(s.st.PCStocks)+len(s.st.Busifavor)+len(s.st.Favor))
	// Code lists are taken as append-only prefixes and copied after the lock
	// is released, so listing a million codes does not stall the API.
	type pending struct {
		i     int
		codes []string
	}
	var codeLists []pending
	for _, st := range s.st.PCStocks {
		info := StockInfo{
			Kind:            KindProductCoupon,
			StockID:         st.StockID,
			ProductCouponID: st.ProductCouponID,
			StockBundleIDs:  s.st.bundlesOf(st),
			Name:            st.Remark,
			State:           st.state(now),
			CouponCodeMode:  st.CouponCodeMode,
			TotalCount:      st.codes.len(),
			AvailableCount:  st.codes.len() - st.CodesUsed,
		}
		if withCodes {
			codeLists = append(codeLists, pending{len(out), st.codes.snapshot()})
		}
		out = append(out, info)
	}
	for _, b := range s.st.Busifavor {
		info := StockInfo{
			Kind:           KindBusifavor,
			StockID:        b.StockID,
			StockBundleIDs: []string{},
			Name:           b.StockName,
			State:          b.StockState,
			CouponCodeMode: b.CouponCodeMode,
			TotalCount:     b.codes.len(),
			AvailableCount: b.codes.len() - b.CodesUsed,
		}
		if withCodes {
			codeLists = append(codeLists, pending{len(out), b.codes.snapshot()})
		}
		out = append(out, info)
	}
	for _, f := range s.st.Favor {
		out = append(out, StockInfo{
			Kind:           KindFavor,
			StockID:        f.StockID,
			StockBundleIDs: []string{},
			Name:           deref(f.Request.StockName),
			State:          f.status(now),
		})
	}
	s.mu.Unlock()
	if withCodes {
		for i := range out {
			out[i].Codes = []string{} // an empty list, not null
		}
		for _, p := range codeLists {
			out[p.i].Codes = append(make([]string, 0, len(p.codes)), p.codes...)
		}
	}
	return out
}

// Requests lists every request number seen, per endpoint, in order of first
// arrival.
func (s *Sandbox) Requests() []RequestInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RequestInfo, 0, len(s.st.Requests))
	for _, r := range s.st.Requests {
		out = append(out, RequestInfo{Endpoint: r.Endpoint, RequestNo: r.RequestNo, Count: r.Count, Identical: r.Identical})
	}
	return out
}

// Calls counts the API calls received per endpoint (reads included, faults
// and refusals too) since the sandbox started: what a test counts to know
// how many WeChat Pay calls an action made.
func (s *Sandbox) Calls() map[string]int {
	s.callMu.Lock()
	defer s.callMu.Unlock()
	return maps.Clone(s.calls)
}

func (s *Sandbox) countCall(endpoint string) {
	s.callMu.Lock()
	defer s.callMu.Unlock()
	if s.calls == nil {
		s.calls = map[string]int{}
	}
	s.calls[endpoint]++
}

// Bundles lists the product-coupon stock bundles.
func (s *Sandbox) Bundles() []BundleInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]BundleInfo, 0, len(s.st.Bundles))
	for _, b := range s.st.Bundles {
		out = append(out, BundleInfo{StockBundleID: b.ID, ProductCouponID: b.ProductCouponID, Name: b.Name,
			StockIDs: append([]string(nil), b.StockIDs...)})
	}
	return out
}

// Token looks up an issued pre-send token, as the coupon component would
// when a user opens it.
func (s *Sandbox) Token(token string) (TokenInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.st.tokens[token]
	if !ok {
		return TokenInfo{}, false
	}
	return TokenInfo{
		Token:           t.Token,
		OpenID:          t.OpenID,
		AppID:           t.AppID,
		ProductCouponID: t.ProductCouponID,
		StockBundleID:   t.StockBundleID,
		SendRequestNo:   t.SendRequestNo,
		Attach:          t.Attach,
		IssuedAt:        t.IssuedAt,
		ExpiresAt:       t.ExpiresAt,
		Valid:           s.now().Before(t.ExpiresAt),
	}, true
}

// inspectionRoutes adds the unsigned /_sandbox/ endpoints. They are for
// tests and operators, never for the console's WeChat Pay client.
func (s *Sandbox) inspectionRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /_sandbox/stocks", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("codes") == "0" {
			type withoutCodes struct {
				StockInfo
				Codes []string `json:"codes,omitempty"` // shadows StockInfo.Codes
			}
			list := s.stocks(false)
			out := make([]withoutCodes, len(list))
			for i := range list {
				out[i].StockInfo = list[i]
			}
			writeJSON(w, http.StatusOK, map[string]any{"stocks": out})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"stocks": s.stocks(true)})
	})
	mux.HandleFunc("GET /_sandbox/requests", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"requests": s.Requests()})
	})
	mux.HandleFunc("GET /_sandbox/bundles", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"bundles": s.Bundles()})
	})
	mux.HandleFunc("GET /_sandbox/tokens/{token}", func(w http.ResponseWriter, r *http.Request) {
		t, ok := s.Token(r.PathValue("token"))
		if !ok {
			writeError(w, &apiError{Status: http.StatusNotFound, Code: "NOT_FOUND", Message: "token 不存在"})
			return
		}
		writeJSON(w, http.StatusOK, t)
	})
	mux.HandleFunc("GET /_sandbox/clock", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"now": rfc3339(s.now()), "adjustable": s.clock != nil})
	})
	mux.HandleFunc("POST /_sandbox/clock", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Advance string `json:"advance"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
			writeError(w, &apiError{Status: http.StatusBadRequest, Code: "PARAM_ERROR", Message: `请求体须为 {"advance":"5m"}`})
			return
		}
		d, err := time.ParseDuration(req.Advance)
		if err != nil {
			writeError(w, &apiError{Status: http.StatusBadRequest, Code: "PARAM_ERROR", Message: "advance 须为时长,如 5m: " + err.Error()})
			return
		}
		if err := s.Advance(d); err != nil {
			writeError(w, &apiError{Status: http.StatusConflict, Code: "INVALID_REQUEST", Message: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"now": rfc3339(s.now()), "adjustable": true})
	})
	mux.HandleFunc("GET /_sandbox/certificates", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"verify_mode": s.mode, "certificates": s.PlatformCerts()})
	})
	mux.HandleFunc("POST /_sandbox/rotate", func(w http.ResponseWriter, r *http.Request) {
		// {"account":"merchant","grace":"1h"}: both optional (all accounts,
		// DefaultRotateGrace); an empty body rotates every account.
		var req struct {
			Account string `json:"account"`
			Grace   string `json:"grace"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil && err != io.EOF {
			writeError(w, &apiError{Status: http.StatusBadRequest, Code: "PARAM_ERROR", Message: `请求体须为 {"account":"merchant","grace":"1h"}`})
			return
		}
		var grace time.Duration
		if req.Grace != "" {
			d, err := time.ParseDuration(req.Grace)
			if err != nil || d <= 0 {
				writeError(w, &apiError{Status: http.StatusBadRequest, Code: "PARAM_ERROR", Message: "grace 须为正的时长,如 1h"})
				return
			}
			grace = d
		}
		var names []string
		if req.Account != "" {
			names = []string{req.Account}
		}
		issued, err := s.Rotate(grace, names...)
		if err != nil {
			status := http.StatusBadRequest
			if err == ErrNoCertificates {
				status = http.StatusConflict
			}
			writeError(w, &apiError{Status: status, Code: "INVALID_REQUEST", Message: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"issued": issued})
	})
	mux.HandleFunc("GET /_sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Faults())
	})
	mux.HandleFunc("POST /_sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Faults
		err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&f)
		if err == nil {
			err = s.SetFaults(f)
		}
		if err != nil {
			writeError(w, &apiError{Status: http.StatusBadRequest, Code: "PARAM_ERROR", Message: "faults: " + err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, s.Faults())
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // a client gone mid-reply cannot be told
}
