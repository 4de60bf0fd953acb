package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// decodeJSON decodes a request body into v. Unknown fields are ignored, as
// WeChat Pay ignores them; a syntax or type error is PARAM_ERROR.
func decodeJSON(body []byte, v any) *apiError {
	if len(bytes.TrimSpace(body)) == 0 {
		return &apiError{Status: http.StatusBadRequest, Code: "PARAM_ERROR", Message: "请求体为空,须为 JSON 对象",
			Detail: map[string]any{"location": "body"}}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return paramError(te.Field, fmt.Sprintf("%s 类型错误,应为 %s", te.Field, jsonKind(te.Type.Kind().String())))
		}
		return &apiError{Status: http.StatusBadRequest, Code: "PARAM_ERROR", Message: "请求体不是合法的 JSON 对象",
			Detail: map[string]any{"location": "body", "issue": err.Error()}}
	}
	if len(bytes.TrimSpace(body[dec.InputOffset():])) != 0 {
		return &apiError{Status: http.StatusBadRequest, Code: "PARAM_ERROR", Message: "请求体在 JSON 对象之后还有多余内容",
			Detail: map[string]any{"location": "body"}}
	}
	return nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "int64", "int", "uint64":
		return "integer"
	case "bool":
		return "boolean"
	case "slice":
		return "array"
	case "struct", "map", "ptr":
		return "object"
	}
	return goKind
}

// paramError is a 400 PARAM_ERROR about one body field, with WeChat's detail
// shape (field as a JSON pointer, location).
func paramError(field, message string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "PARAM_ERROR", Message: message,
		Detail: map[string]any{"field": "/body/" + strings.ReplaceAll(field, ".", "/"), "location": "body", "issue": message}}
}

func missing(field string) *apiError {
	return paramError(field, "缺少必填参数 "+field)
}

func invalidRequest(message string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "INVALID_REQUEST", Message: message}
}

func notFound(code, message string) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: code, Message: message}
}

func runeLen(s string) int { return utf8.RuneCountInString(s) }

// maxRunes checks a string(N) field: at most n characters (WeChat counts
// UTF-8 characters, not bytes, for these).
func maxRunes(field, v string, n int) *apiError {
	if runeLen(v) > n {
		return paramError(field, fmt.Sprintf("%s 长度不能超过 %d 个字符", field, n))
	}
	return nil
}

func isAlnum(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
}

// validRequestNo is the request-number rule of documents 000, 001 and 004:
// 6–40 characters of digits, letters, '_' and '-'.
func validRequestNo(v string) bool {
	if len(v) < 6 || len(v) > 40 {
		return false
	}
	for _, r := range v {
		if !isAlnum(r) && r != '_' && r != '-' {
			return false
		}
	}
	return true
}

func checkRequestNo(field string, v *string) *apiError {
	if v == nil || *v == "" {
		return missing(field)
	}
	if !validRequestNo(*v) {
		return paramError(field, field+" 须由数字、大小写字母、下划线_、短横线-组成,长度在6-40个字符之间")
	}
	return nil
}

// validProductCouponCode is document 000's code rule: at most 40 digits,
// letters, '_' and '-'.
func validProductCouponCode(v string) bool {
	if v == "" || len(v) > 40 {
		return false
	}
	for _, r := range v {
		if !isAlnum(r) && r != '_' && r != '-' {
			return false
		}
	}
	return true
}

// busifavorCodeChars are the characters document 002 allows in a code
// besides digits and letters: space (not tab or newline), - * \ / = |.
const busifavorCodeChars = ` -*\/=|`

func validBusifavorCodeChars(v string) bool {
	for _, r := range v {
		if !isAlnum(r) && !strings.ContainsRune(busifavorCodeChars, r) {
			return false
		}
	}
	return true
}

// validOpenID: an OpenID is a user's ID under an AppID, 1–128 characters of
// digits, letters, '_' and '-' (as "oh-394z-6CGkNoJrsDLTTUKiAnp4").
func validOpenID(v string) bool {
	if v == "" || len(v) > 128 {
		return false
	}
	for _, r := range v {
		if !isAlnum(r) && r != '_' && r != '-' {
			return false
		}
	}
	return true
}

// validAppID: "wx" then digits and letters. Real AppIDs have 16 hexadecimal
// digits after "wx", but the documents' own examples are shorter
// ("wx233544546545989", "wx1234567890"), so 8–32 are accepted.
func validAppID(v string) bool {
	if !strings.HasPrefix(v, "wx") || len(v) < 10 || len(v) > 34 {
		return false
	}
	for _, r := range v[2:] {
		if !isAlnum(r) {
			return false
		}
	}
	return true
}

// validMchID: a merchant number is digits.
func validMchID(v string) bool {
	if v == "" || len(v) > 20 {
		return false
	}
	for _, r := range v {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
