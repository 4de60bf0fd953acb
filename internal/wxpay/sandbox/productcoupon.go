package sandbox

import (
	"fmt"
	"net/http"
)

// findPCStock looks up a product-coupon stock by its path IDs, with document
// 000's 404 messages (documents 001 and the read endpoint give the same).
func (s *Sandbox) findPCStock(productCouponID, stockID string) (*pcStock, *apiError) {
	if _, ok := s.st.productCoupons[productCouponID]; !ok {
		return nil, notFound("NOT_FOUND", "未找到 product_coupon_id 对应的商品券")
	}
	st, ok := s.st.pcStocks[pcStockKey(productCouponID, stockID)]
	if !ok {
		return nil, notFound("NOT_FOUND", "未找到 stock_id 对应的商品券批次")
	}
	return st, nil
}

// pcUploadReq is document 000's request body.
type pcUploadReq struct {
	OutRequestNo *string  `json:"out_request_no"`
	CodeList     []string `json:"code_list"`
	BrandID      *string  `json:"brand_id"`
}

// failedCode is one entry of document 000's failed_code_list and document
// 002's fail_codes.
type failedCode struct {
	CouponCode string `json:"coupon_code"`
	Code       string `json:"code"`
	Message    string `json:"message"`
}

// pcUploadReply is document 000's 应答参数.
type pcUploadReply struct {
	TotalCount           int64        `json:"total_count"`
	SuccessCodeList      []string     `json:"success_code_list,omitempty"`
	FailedCodeList       []failedCode `json:"failed_code_list,omitempty"`
	AlreadyExistCodeList []string     `json:"already_exist_code_list,omitempty"`
	DuplicateCodeList    []string     `json:"duplicate_code_list,omitempty"`
}

// maxCodesPerUpload is documents 000's and 002's limit: 200 codes a request.
const maxCodesPerUpload = 200

// parsePCUpload decodes and checks document 000's body field rules.
func parsePCUpload(body []byte) (*pcUploadReq, *apiError) {
	var req pcUploadReq
	if aerr := decodeJSON(body, &req); aerr != nil {
		return nil, aerr
	}
	if aerr := checkRequestNo("out_request_no", req.OutRequestNo); aerr != nil {
		return nil, aerr
	}
	if len(req.CodeList) == 0 {
		return nil, missing("code_list")
	}
	if len(req.CodeList) > maxCodesPerUpload {
		return nil, paramError("code_list", fmt.Sprintf("code_list 单次最多可上传 %d 个券Code,本次为 %d 个", maxCodesPerUpload, len(req.CodeList)))
	}
	if req.BrandID == nil || *req.BrandID == "" {
		return nil, missing("brand_id")
	}
	return &req, nil
}

// uploadProductCouponCodes is document 000: the service provider uploads
// codes to a product-coupon stock in UPLOAD mode on the brand's behalf.
func (s *Sandbox) uploadProductCouponCodes(c *call) (any, *apiError) {
	req, aerr := parsePCUpload(c.body)
	if aerr != nil {
		return nil, aerr
	}
	if *req.BrandID != s.ids.brand.id {
		// The brand must have authorised the service provider; the only one
		// that has is the sandbox's brand.
		return nil, &apiError{Status: http.StatusForbidden, Code: "NO_AUTH",
			Message: "缺少业务相关权限: brand_id 与服务商不存在授权关系"}
	}
	stock, aerr := s.findPCStock(c.r.PathValue("product_coupon_id"), c.r.PathValue("stock_id"))
	if aerr != nil {
		return nil, aerr
	}
	if stock.expired(c.now) {
		return nil, invalidRequest("已过期的批次不可预上传券Code")
	}
	if stock.CouponCodeMode != CodeModeUpload {
		return nil, invalidRequest("只有 coupon_code_mode 为 UPLOAD 的批次可以预上传券Code")
	}

	// Each distinct code lands in exactly one of success, failed and
	// already-exist; a code repeated in the request is also listed (once)
	// in duplicate and uploaded once, as the document's example shows.
	reply := pcUploadReply{}
	seen := make(map[string]int, len(req.CodeList))
	for _, code := range req.CodeList {
		seen[code]++
		switch n := seen[code]; {
		case n == 2:
			reply.DuplicateCodeList = append(reply.DuplicateCodeList, code)
			continue
		case n > 2:
			continue
		}
		reply.TotalCount++
		switch {
		case !validProductCouponCode(code):
			reply.FailedCodeList = append(reply.FailedCodeList, failedCode{CouponCode: code, Code: "PARAM_ERROR",
				Message: "券Code须由数字、大小写字母、下划线_、短横线-组成,长度不超过40个字符"})
		case stock.codes.has(code):
			reply.AlreadyExistCodeList = append(reply.AlreadyExistCodeList, code)
		default:
			stock.codes.add(code)
			reply.SuccessCodeList = append(reply.SuccessCodeList, code)
		}
	}
	return reply, nil
}

// deactivateReq is document 001's request body.
type deactivateReq struct {
	OutRequestNo     *string `json:"out_request_no"`
	DeactivateReason *string `json:"deactivate_reason"`
}

// maxDeactivateReason is document 001's limit on deactivate_reason:
// string(150), 长度不超过150个UTF-8字符.
const maxDeactivateReason = 150

func parseDeactivate(body []byte) (*deactivateReq, *apiError) {
	var req deactivateReq
	if aerr := decodeJSON(body, &req); aerr != nil {
		return nil, aerr
	}
	if aerr := checkRequestNo("out_request_no", req.OutRequestNo); aerr != nil {
		return nil, aerr
	}
	if req.DeactivateReason == nil || *req.DeactivateReason == "" {
		return nil, missing("deactivate_reason")
	}
	if aerr := maxRunes("deactivate_reason", *req.DeactivateReason, maxDeactivateReason); aerr != nil {
		return nil, aerr
	}
	return &req, nil
}

// deactivateStock is document 001: only a SENDING or PAUSED stock can be
// deactivated; the reply is the stock entity afterwards.
func (s *Sandbox) deactivateStock(c *call) (any, *apiError) {
	req, aerr := parseDeactivate(c.body)
	if aerr != nil {
		return nil, aerr
	}
	stock, aerr := s.findPCStock(c.r.PathValue("product_coupon_id"), c.r.PathValue("stock_id"))
	if aerr != nil {
		return nil, aerr
	}
	// Document 001's precondition (前置条件:商品券批次处于 SENDING 或 PAUSED
	// 状态) has no row of its own in the error table; breaking it is a
	// request the API refuses, 400 INVALID_REQUEST.
	if st := stock.state(c.now); st != StateSending && st != StatePaused {
		aerr := invalidRequest(fmt.Sprintf("商品券批次当前状态为 %s,只有处于 SENDING 或 PAUSED 状态的批次可以失效", st))
		aerr.Detail = map[string]any{"state": st}
		return nil, aerr
	}
	stock.State = StateDeactivated
	stock.DeactivateRequestNo = *req.OutRequestNo
	stock.DeactivateTime = rfc3339(c.now)
	stock.DeactivateReason = *req.DeactivateReason
	return stock.entity(c.now), nil
}

// getProductCouponStock is the brand's read endpoint (查询商品券批次): the
// same entity deactivate returns.
func (s *Sandbox) getProductCouponStock(c *call) (any, *apiError) {
	stock, aerr := s.findPCStock(c.r.PathValue("product_coupon_id"), c.r.PathValue("stock_id"))
	if aerr != nil {
		return nil, aerr
	}
	return stock.entity(c.now), nil
}
