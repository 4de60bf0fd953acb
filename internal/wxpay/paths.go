package wxpay

import "net/http"

// DeactivateProductCouponStockCall is the method and path of document 001's
// call for a stock, as WeChat Pay receives it: approvals show it before it
// is sent.
func DeactivateProductCouponStockCall(productCouponID, stockID string) (method, path string, err error) {
	path, err = escapePath(pathDeactivateStock, productCouponID, stockID)
	return http.MethodPost, path, err
}

// CreateFavorStockCall is the method and path of document 003's call.
func CreateFavorStockCall() (method, path string) { return http.MethodPost, pathCreateFavorStock }
