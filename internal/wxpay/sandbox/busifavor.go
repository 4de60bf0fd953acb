package sandbox

import (
	"fmt"
	"net/http"
)

// bfUploadReq is document 002's request body.
type bfUploadReq struct {
	CouponCodeList  []string `json:"coupon_code_list"`
	UploadRequestNo *string  `json:"upload_request_no"`
}

// bfUploadReply is document 002's 返回参数.
type bfUploadReply struct {
	StockID        string       `json:"stock_id"`
	TotalCount     int64        `json:"total_count"`
	SuccessCount   int64        `json:"success_count"`
	SuccessCodes   []string     `json:"success_codes,omitempty"`
	SuccessTime    string       `json:"success_time"`
	FailCount      int64        `json:"fail_count"`
	FailCodes      []failedCode `json:"fail_codes,omitempty"`
	ExistCodes     []string     `json:"exist_codes,omitempty"`
	DuplicateCodes []string     `json:"duplicate_codes,omitempty"`
}

// maxBusifavorCode is document 002's code length limit: 【1, 32】.
const maxBusifavorCode = 32

func parseBusifavorUpload(body []byte) (*bfUploadReq, *apiError) {
	var req bfUploadReq
	if aerr := decodeJSON(body, &req); aerr != nil {
		return nil, aerr
	}
	// Document 002 marks coupon_code_list 否 (optional) yet limits it to
	// 【1, 200】 entries; an upload without codes is refused.
	if len(req.CouponCodeList) == 0 {
		return nil, missing("coupon_code_list")
	}
	if len(req.CouponCodeList) > maxCodesPerUpload {
		return nil, paramError("coupon_code_list", fmt.Sprintf("coupon_code_list 条目个数限制为【1, %d】,本次为 %d 个", maxCodesPerUpload, len(req.CouponCodeList)))
	}
	if req.UploadRequestNo == nil || *req.UploadRequestNo == "" {
		return nil, missing("upload_request_no")
	}
	if aerr := maxRunes("upload_request_no", *req.UploadRequestNo, 128); aerr != nil {
		return nil, aerr
	}
	return &req, nil
}

func (s *Sandbox) findBusifavor(stockID, callerID string) (*busifavorStock, *apiError) {
	b, ok := s.st.busifavor[stockID]
	if !ok {
		return nil, notFound("RESOURCE_NOT_EXISTS", "查询的资源不存在: 批次 "+stockID+" 不存在")
	}
	if b.BelongMerchant != callerID {
		return nil, &apiError{Status: http.StatusForbidden, Code: "NOAUTH", Message: "无权限: 批次不属于当前商户"}
	}
	return b, nil
}

// uploadBusifavorCodes is document 002: the merchant uploads codes to its
// busifavor stock in MERCHANT_UPLOAD mode. Codes that break the length or
// character rule fail one by one (fail_codes, as the document's LENGTH_LIMIT
// example); an upload that would take the stock beyond max_coupons is
// refused whole (上传的自定义 code 已达上限).
func (s *Sandbox) uploadBusifavorCodes(c *call) (any, *apiError) {
	req, aerr := parseBusifavorUpload(c.body)
	if aerr != nil {
		return nil, aerr
	}
	stock, aerr := s.findBusifavor(c.r.PathValue("stock_id"), c.callerID)
	if aerr != nil {
		return nil, aerr
	}
	if stock.CouponCodeMode != BusifavorModeUpload {
		return nil, invalidRequest("发券模式不合法: 批次的 coupon_code_mode 为 " + stock.CouponCodeMode + ",不支持预上传 code")
	}

	reply := bfUploadReply{StockID: stock.StockID, SuccessTime: rfc3339Milli(c.now)}
	seen := make(map[string]int, len(req.CouponCodeList))
	var fresh []string
	for _, code := range req.CouponCodeList {
		seen[code]++
		switch n := seen[code]; {
		case n == 2:
			reply.DuplicateCodes = append(reply.DuplicateCodes, code)
			continue
		case n > 2:
			continue
		}
		reply.TotalCount++
		switch {
		case code == "" || runeLen(code) > maxBusifavorCode:
			reply.FailCodes = append(reply.FailCodes, failedCode{CouponCode: code, Code: "LENGTH_LIMIT",
				Message: fmt.Sprintf("长度须在 1 到 %d 位之间", maxBusifavorCode)})
		case !validBusifavorCodeChars(code):
			reply.FailCodes = append(reply.FailCodes, failedCode{CouponCode: code, Code: "PARAM_ERROR",
				Message: `code 只允许包含 0-9、a-z、A-Z、空格、-、*、\、/、=、|`})
		case stock.codes.has(code):
			reply.ExistCodes = append(reply.ExistCodes, code)
		default:
			fresh = append(fresh, code)
		}
	}
	if stock.codes.len()+int64(len(fresh)) > stock.StockSendRule.MaxCoupons {
		aerr := invalidRequest(fmt.Sprintf("上传的自定义 code 已达上限: 批次最多 %d 个 code,已有 %d 个", stock.StockSendRule.MaxCoupons, stock.codes.len()))
		aerr.Detail = map[string]any{"max_coupons": stock.StockSendRule.MaxCoupons, "total_count": stock.codes.len()}
		return nil, aerr
	}
	for _, code := range fresh {
		stock.codes.add(code)
	}
	reply.SuccessCodes = fresh
	reply.SuccessCount = int64(len(fresh))
	reply.FailCount = int64(len(reply.FailCodes))
	return reply, nil
}

// bfStockEntity is the busifavor read endpoint's reply (查询商家券批次详情).
type bfStockEntity struct {
	StockName       string          `json:"stock_name"`
	BelongMerchant  string          `json:"belong_merchant"`
	Comment         string          `json:"comment,omitempty"`
	GoodsName       string          `json:"goods_name"`
	StockType       string          `json:"stock_type"`
	CouponUseRule   bfCouponUseRule `json:"coupon_use_rule"`
	StockSendRule   bfSendRule      `json:"stock_send_rule"`
	StockState      string          `json:"stock_state"`
	CouponCodeMode  string          `json:"coupon_code_mode"`
	StockID         string          `json:"stock_id"`
	CouponCodeCount *codeCountInfo  `json:"coupon_code_count,omitempty"`
}

func (b *busifavorStock) entity() bfStockEntity {
	e := bfStockEntity{
		StockName:      b.StockName,
		BelongMerchant: b.BelongMerchant,
		Comment:        b.Comment,
		GoodsName:      b.GoodsName,
		StockType:      b.StockType,
		CouponUseRule:  b.CouponUseRule,
		StockSendRule:  b.StockSendRule,
		StockState:     b.StockState,
		CouponCodeMode: b.CouponCodeMode,
		StockID:        b.StockID,
	}
	if b.CouponCodeMode == BusifavorModeUpload {
		e.CouponCodeCount = &codeCountInfo{TotalCount: b.codes.len(), AvailableCount: b.codes.len() - b.CodesUsed}
	}
	return e
}

func (s *Sandbox) getBusifavorStock(c *call) (any, *apiError) {
	stock, aerr := s.findBusifavor(c.r.PathValue("stock_id"), c.callerID)
	if aerr != nil {
		return nil, aerr
	}
	return stock.entity(), nil
}
