package sandbox

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// preSendReq is document 004's request body; the OpenID is in the path.
type preSendReq struct {
	ProductCouponID *string `json:"product_coupon_id"`
	StockBundleID   *string `json:"stock_bundle_id"`
	AppID           *string `json:"appid"`
	SendRequestNo   *string `json:"send_request_no"`
	Attach          *string `json:"attach"`
}

type preSendReply struct {
	Token string `json:"token"`
}

// maxAttach is document 004's limit on attach: 150 UTF-8 characters.
const maxAttach = 150

func parsePreSend(openid string, body []byte) (*preSendReq, *apiError) {
	if !validOpenID(openid) {
		// The product-coupon documents' error table (001) words it so.
		aerr := invalidRequest("传入的OpenID不合法")
		aerr.Detail = map[string]any{"field": "openid", "location": "path"}
		return nil, aerr
	}
	var req preSendReq
	if aerr := decodeJSON(body, &req); aerr != nil {
		return nil, aerr
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"product_coupon_id", req.ProductCouponID}, {"stock_bundle_id", req.StockBundleID}, {"appid", req.AppID}} {
		if f.v == nil || *f.v == "" {
			return nil, missing(f.name)
		}
	}
	if aerr := checkRequestNo("send_request_no", req.SendRequestNo); aerr != nil {
		return nil, aerr
	}
	if !validAppID(*req.AppID) {
		return nil, paramError("appid", "appid 格式不正确,应为以 wx 开头的公众账号ID")
	}
	if req.Attach != nil {
		if aerr := maxRunes("attach", *req.Attach, maxAttach); aerr != nil {
			return nil, aerr
		}
	}
	return &req, nil
}

// preSendCouponBundle is document 004: it checks that every stock of the
// bundle may send one more coupon to the user (state SENDING, total budget,
// daily budget, per-user limit, and for UPLOAD stocks an unused code), counts
// the send against each, and returns a token valid for five minutes.
//
// The sandbox counts a pre-send as a send: there is no coupon component to
// claim the token in, and counting it is what makes budgets and per-user
// limits observable. Document 004's error table is empty, so refusals use
// the product-coupon documents' code for a request the current state does
// not allow, 400 INVALID_REQUEST, with detail.reason saying which limit.
func (s *Sandbox) preSendCouponBundle(c *call) (any, *apiError) {
	openid := c.r.PathValue("openid")
	req, aerr := parsePreSend(openid, c.body)
	if aerr != nil {
		return nil, aerr
	}
	if _, ok := s.st.productCoupons[*req.ProductCouponID]; !ok {
		return nil, notFound("NOT_FOUND", "未找到 product_coupon_id 对应的商品券")
	}
	bundle, ok := s.st.bundles[*req.StockBundleID]
	if !ok || bundle.ProductCouponID != *req.ProductCouponID {
		return nil, notFound("NOT_FOUND", "未找到 stock_bundle_id 对应的商品券批次组")
	}
	stocks := make([]*pcStock, 0, len(bundle.StockIDs))
	for _, id := range bundle.StockIDs {
		st, ok := s.st.pcStocks[pcStockKey(bundle.ProductCouponID, id)]
		if !ok {
			return nil, notFound("NOT_FOUND", "未找到 stock_id 对应的商品券批次")
		}
		stocks = append(stocks, st)
	}
	for _, st := range stocks {
		if aerr := sendRefusal(st, openid, c.now); aerr != nil {
			return nil, aerr
		}
	}
	today := dayOf(c.now)
	for _, st := range stocks {
		if st.SentDay != today {
			st.SentDay, st.SentToday = today, 0
		}
		st.SentToday++
		st.SentTotal++
		st.PerUser[openid]++
		if st.CouponCodeMode == CodeModeUpload {
			st.CodesUsed++
		}
	}
	tok := s.issueToken(req, openid, c.now)
	if c.rec != nil {
		c.rec.Token = tok.Token
	}
	return preSendReply{Token: tok.Token}, nil
}

// sendRefusal says why st cannot send a coupon to openid now, or nil.
func sendRefusal(st *pcStock, openid string, now time.Time) *apiError {
	refuse := func(reason, message string) *apiError {
		aerr := invalidRequest(message)
		aerr.Detail = map[string]any{"reason": reason, "stock_id": st.StockID}
		return aerr
	}
	rule := st.StockSendRule
	switch {
	case st.state(now) != StateSending:
		return refuse("STOCK_NOT_SENDING", fmt.Sprintf("批次组内商品券批次 %s 当前状态为 %s,不处于 SENDING 状态", st.StockID, st.state(now)))
	case st.SentTotal >= rule.MaxCount:
		return refuse("MAX_COUNT_REACHED", fmt.Sprintf("商品券批次 %s 已达到发放总上限 %d", st.StockID, rule.MaxCount))
	case rule.MaxCountPerDay > 0 && st.sentToday(now) >= rule.MaxCountPerDay:
		return refuse("MAX_COUNT_PER_DAY_REACHED", fmt.Sprintf("商品券批次 %s 已达到今日发放上限 %d", st.StockID, rule.MaxCountPerDay))
	case rule.MaxCountPerUser > 0 && st.PerUser[openid] >= rule.MaxCountPerUser:
		return refuse("MAX_COUNT_PER_USER_REACHED", fmt.Sprintf("用户已达到商品券批次 %s 的每人限领次数 %d", st.StockID, rule.MaxCountPerUser))
	case st.CouponCodeMode == CodeModeUpload && st.codes.len()-st.CodesUsed <= 0:
		return refuse("NO_AVAILABLE_CODE", fmt.Sprintf("商品券批次 %s 预上传的券Code已用完,请补充", st.StockID))
	}
	return nil
}

// issueToken makes an opaque token: a sequence number (so it is unique even
// with a seeded random source) and random bytes, base64url-encoded.
func (s *Sandbox) issueToken(req *preSendReq, openid string, now time.Time) *tokenRecord {
	s.st.NextToken++
	raw := make([]byte, 0, 64)
	raw = binary.BigEndian.AppendUint64(raw, s.st.NextToken)
	for range 7 {
		raw = binary.BigEndian.AppendUint64(raw, s.randUint64())
	}
	tok := &tokenRecord{
		Token:           base64.RawURLEncoding.EncodeToString(raw),
		OpenID:          openid,
		AppID:           *req.AppID,
		ProductCouponID: *req.ProductCouponID,
		StockBundleID:   *req.StockBundleID,
		SendRequestNo:   *req.SendRequestNo,
		Attach:          deref(req.Attach),
		IssuedAt:        now,
		ExpiresAt:       now.Add(tokenTTL),
	}
	s.pruneTokens(now)
	s.st.Tokens = append(s.st.Tokens, tok)
	s.st.tokens[tok.Token] = tok
	return tok
}

// pruneTokens forgets tokens that expired more than a day ago, now and then,
// so a long-running sandbox does not keep every token forever.
func (s *Sandbox) pruneTokens(now time.Time) {
	if len(s.st.Tokens) < 4096 || s.st.NextToken%1024 != 0 {
		return
	}
	kept := s.st.Tokens[:0]
	for _, t := range s.st.Tokens {
		if now.Sub(t.ExpiresAt) > 24*time.Hour {
			delete(s.st.tokens, t.Token)
			continue
		}
		kept = append(kept, t)
	}
	clear(s.st.Tokens[len(kept):])
	s.st.Tokens = kept
}

// replayPreSend runs before a pre-send's reply is given again. Within the
// token's five minutes the same token is returned; after them a new token is
// issued for the same send (no second send is counted), since handing out
// an expired token would leave a retrying client with nothing usable.
func (s *Sandbox) replayPreSend(c *call, rec *requestRecord) *apiError {
	if t, ok := s.st.tokens[rec.Token]; ok && c.now.Before(t.ExpiresAt) {
		return nil
	}
	openid := c.r.PathValue("openid")
	req, aerr := parsePreSend(openid, c.body)
	if aerr != nil {
		return aerr
	}
	tok := s.issueToken(req, openid, c.now)
	reply, err := json.Marshal(preSendReply{Token: tok.Token})
	if err != nil {
		return &apiError{Status: http.StatusInternalServerError, Code: "SYSTEM_ERROR", Message: "系统异常,请稍后重试"}
	}
	rec.Token, rec.Reply = tok.Token, reply
	return nil
}
