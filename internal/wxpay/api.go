package wxpay

import (
	"context"
	"net/http"
	"net/url"
)

// Path templates, relative to the host. Brand endpoints live under /brand/.
const (
	pathCreateFavorStock     = "/v3/marketing/favor/coupon-stocks"
	pathGetFavorStock        = "/v3/marketing/favor/stocks/{stock_id}"
	pathUploadBusifavorCodes = "/v3/marketing/busifavor/stocks/{stock_id}/couponcodes"
	pathGetBusifavorStock    = "/v3/marketing/busifavor/stocks/{stock_id}"
	pathUploadProductCodes   = "/v3/marketing/partner/product-coupon/product-coupons/{product_coupon_id}/stocks/{stock_id}/upload-coupon-codes"
	pathDeactivateStock      = "/brand/marketing/product-coupon/product-coupons/{product_coupon_id}/stocks/{stock_id}/deactivate"
	pathGetProductStock      = "/brand/marketing/product-coupon/product-coupons/{product_coupon_id}/stocks/{stock_id}"
	pathPreSendBundle        = "/brand/marketing/product-coupon/users/{openid}/pre-send-coupon-bundle"
)

// call builds the request, runs it and decodes the reply into out; it also
// returns the verified body, which the read replies keep as Raw.
func (c *Client) call(ctx context.Context, e Endpoint, method string, who *acct, path string, payload, out any) (Meta, []byte, error) {
	r, err := c.newRequest(e, method, who, path, payload)
	if err != nil {
		return Meta{}, nil, err
	}
	return c.do(ctx, r, out)
}

// CreateFavorStock creates a favor (代金券) stock (document 003), as the
// merchant. An empty BelongMerchant is set to Config.MchID, the only value
// WeChat Pay accepts. Limited to 60/min per merchant.
func (c *Client) CreateFavorStock(ctx context.Context, req CreateFavorStockRequest) (*CreateFavorStockReply, error) {
	if req.BelongMerchant == "" {
		req.BelongMerchant = c.cfg.MchID
	}
	var reply CreateFavorStockReply
	meta, _, err := c.call(ctx, EndpointCreateFavorStock, http.MethodPost, c.merchant(), pathCreateFavorStock, req, &reply)
	if err != nil {
		return nil, err
	}
	reply.Meta = meta
	return &reply, nil
}

// UploadBusifavorCodes uploads codes to a busifavor (商家券) stock whose
// coupon_code_mode is MERCHANT_UPLOAD (document 002), as the merchant.
func (c *Client) UploadBusifavorCodes(ctx context.Context, stockID string, req UploadBusifavorCodesRequest) (*UploadBusifavorCodesReply, error) {
	path, err := escapePath(pathUploadBusifavorCodes, stockID)
	if err != nil {
		return nil, err
	}
	var reply UploadBusifavorCodesReply
	meta, _, err := c.call(ctx, EndpointUploadBusifavorCodes, http.MethodPost, c.merchant(), path, req, &reply)
	if err != nil {
		return nil, err
	}
	reply.Meta = meta
	return &reply, nil
}

// UploadProductCouponCodes pre-uploads codes to a product-coupon stock whose
// coupon_code_mode is UPLOAD (document 000), as the service provider, with
// the brand named in the body (Config.BrandID if req.BrandID is empty).
func (c *Client) UploadProductCouponCodes(ctx context.Context, productCouponID, stockID string, req UploadProductCouponCodesRequest) (*UploadProductCouponCodesReply, error) {
	path, err := escapePath(pathUploadProductCodes, productCouponID, stockID)
	if err != nil {
		return nil, err
	}
	if req.BrandID == "" {
		req.BrandID = c.cfg.BrandID
	}
	var reply UploadProductCouponCodesReply
	meta, _, err := c.call(ctx, EndpointUploadProductCouponCodes, http.MethodPost, c.serviceProvider(), path, req, &reply)
	if err != nil {
		return nil, err
	}
	reply.Meta = meta
	return &reply, nil
}

// DeactivateProductCouponStock deactivates a product-coupon stock in state
// SENDING or PAUSED (document 001), as the brand, and returns the stock as
// it now is. Limited to 20/s per brand.
func (c *Client) DeactivateProductCouponStock(ctx context.Context, productCouponID, stockID string, req DeactivateProductCouponStockRequest) (*ProductCouponStock, error) {
	path, err := escapePath(pathDeactivateStock, productCouponID, stockID)
	if err != nil {
		return nil, err
	}
	var s ProductCouponStock
	meta, raw, err := c.call(ctx, EndpointDeactivateProductCouponStock, http.MethodPost, c.brand(), path, req, &s)
	if err != nil {
		return nil, err
	}
	s.Raw, s.Meta = raw, meta
	return &s, nil
}

// PreSendCouponBundle pre-sends a product-coupon stock bundle to a user
// (document 004), as the brand, and returns the widget token (valid 5
// minutes). Limited to 500/s per brand.
func (c *Client) PreSendCouponBundle(ctx context.Context, openid string, req PreSendCouponBundleRequest) (*PreSendCouponBundleReply, error) {
	call, err := c.PreparePreSendCouponBundle(openid, req)
	if err != nil {
		return nil, err
	}
	return call.Send(ctx)
}

// PreSendCall is a pre-send built and signed, not yet sent.
type PreSendCall struct {
	c *Client
	r request
}

// PreparePreSendCouponBundle builds and signs a pre-send without sending
// it. Signing is a private-key operation of about a millisecond, so a
// caller that records its intent before the call can sign meanwhile; Send
// then sends it. Retries, and attempts on the fallback host, are signed
// when they are made.
func (c *Client) PreparePreSendCouponBundle(openid string, req PreSendCouponBundleRequest) (*PreSendCall, error) {
	path, err := escapePath(pathPreSendBundle, openid)
	if err != nil {
		return nil, err
	}
	r, err := c.newRequest(EndpointPreSendCouponBundle, http.MethodPost, c.brand(), path, req)
	if err != nil {
		return nil, err
	}
	if err := c.presign(&r); err != nil {
		return nil, err
	}
	return &PreSendCall{c: c, r: r}, nil
}

// Send makes the call PreparePreSendCouponBundle prepared.
func (p *PreSendCall) Send(ctx context.Context) (*PreSendCouponBundleReply, error) {
	var reply PreSendCouponBundleReply
	meta, _, err := p.c.do(ctx, p.r, &reply)
	if err != nil {
		return nil, err
	}
	reply.Meta = meta
	return &reply, nil
}

// GetProductCouponStock reads a product-coupon stock, as the brand.
func (c *Client) GetProductCouponStock(ctx context.Context, productCouponID, stockID string) (*ProductCouponStock, error) {
	path, err := escapePath(pathGetProductStock, productCouponID, stockID)
	if err != nil {
		return nil, err
	}
	var s ProductCouponStock
	meta, raw, err := c.call(ctx, EndpointGetProductCouponStock, http.MethodGet, c.brand(), path, nil, &s)
	if err != nil {
		return nil, err
	}
	s.Raw, s.Meta = raw, meta
	return &s, nil
}

// GetFavorStock reads a favor stock created by Config.MchID, as the merchant.
func (c *Client) GetFavorStock(ctx context.Context, stockID string) (*FavorStock, error) {
	path, err := escapePath(pathGetFavorStock, stockID)
	if err != nil {
		return nil, err
	}
	path += "?" + url.Values{"stock_creator_mchid": {c.cfg.MchID}}.Encode()
	var s FavorStock
	meta, raw, err := c.call(ctx, EndpointGetFavorStock, http.MethodGet, c.merchant(), path, nil, &s)
	if err != nil {
		return nil, err
	}
	s.Raw, s.Meta = raw, meta
	return &s, nil
}

// GetBusifavorStock reads a busifavor stock, as the merchant.
func (c *Client) GetBusifavorStock(ctx context.Context, stockID string) (*BusifavorStock, error) {
	path, err := escapePath(pathGetBusifavorStock, stockID)
	if err != nil {
		return nil, err
	}
	var s BusifavorStock
	meta, raw, err := c.call(ctx, EndpointGetBusifavorStock, http.MethodGet, c.merchant(), path, nil, &s)
	if err != nil {
		return nil, err
	}
	s.Raw, s.Meta = raw, meta
	return &s, nil
}
