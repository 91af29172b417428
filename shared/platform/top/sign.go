// Package top signs Taobao Open Platform (TOP) requests, verifies TOP-signed calls, and turns TMC
// messages (trade paid, refund success) into contract events.
package top

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"slices"
	"strings"
	"time"

	"github.com/omnimember/omnimember/shared/platform"
)

// Signature methods (TOP "API调用方法详解", 签名算法, open.taobao.com docId=101617).
const (
	SignMD5        = "md5"         // upper hex MD5(secret + sorted name+value + secret)
	SignHMAC       = "hmac"        // upper hex HMAC-MD5(secret, sorted name+value)
	SignHMACSHA256 = "hmac-sha256" // upper hex HMAC-SHA256(secret, sorted name+value)
)

// TimeLayout is TOP's timestamp format; TOP reads it as GMT+8 and allows 10 minutes of skew.
const TimeLayout = "2006-01-02 15:04:05"

// MaxSkew is how far a TOP timestamp may be from our clock (same document, 公共参数 timestamp).
const MaxSkew = 10 * time.Minute

// Shanghai is GMT+8 without a tz database (China has no daylight saving time).
var Shanghai = time.FixedZone("GMT+8", 8*3600)

// Timestamp formats t as TOP expects.
func Timestamp(t time.Time) string { return t.In(Shanghai).Format(TimeLayout) }

// ParseTime reads a TOP time ("2026-11-11 10:00:00", GMT+8).
func ParseTime(s string) (time.Time, error) {
	t, err := time.ParseInLocation(TimeLayout, s, Shanghai)
	if err != nil {
		return time.Time{}, fmt.Errorf("TOP time %q: %w", s, err)
	}
	return t, nil
}

// Sign computes the sign of params (every parameter but sign itself) with the method.
func Sign(params map[string]string, secret, method string) (string, error) {
	return SignBody(params, nil, secret, method)
}

// SignBody signs params and, after them, a raw body: TOP's SPI variant (the Java SDK's
// SpiUtils.checkSign) appends a non-form body to the sorted parameters before the digest.
// Parameters with an empty name or value are skipped, as the official SDKs do.
func SignBody(params map[string]string, body []byte, secret, method string) (string, error) {
	names := make([]string, 0, len(params))
	for k, v := range params {
		if k != "sign" && k != "" && v != "" {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	var h hash.Hash
	switch method {
	case SignMD5:
		h = md5.New()
		h.Write([]byte(secret))
	case SignHMAC:
		h = hmac.New(md5.New, []byte(secret))
	case SignHMACSHA256:
		h = hmac.New(sha256.New, []byte(secret))
	default:
		return "", platform.Malformed("sign_method", "%q: want %s, %s or %s", method, SignMD5, SignHMAC, SignHMACSHA256)
	}
	for _, k := range names {
		h.Write([]byte(k))
		h.Write([]byte(params[k]))
	}
	h.Write(body)
	if method == SignMD5 {
		h.Write([]byte(secret))
	}
	return strings.ToUpper(hex.EncodeToString(h.Sum(nil))), nil
}

// Verify checks a TOP-signed call: params carry sign_method (md5 when absent), sign and
// timestamp; the timestamp must be within MaxSkew of now.
func Verify(params map[string]string, body []byte, secret string, now time.Time) error {
	method := params["sign_method"]
	if method == "" {
		method = SignMD5
	}
	want, err := SignBody(params, body, secret, method)
	if err != nil {
		return err
	}
	if !hmac.Equal([]byte(want), []byte(strings.ToUpper(params["sign"]))) {
		return fmt.Errorf("verify TOP sign (%s): %w", method, platform.ErrSignature)
	}
	at, err := ParseTime(params["timestamp"])
	if err != nil {
		return fmt.Errorf("verify TOP timestamp: %w", platform.ErrSignature)
	}
	if d := now.Sub(at); d > MaxSkew || d < -MaxSkew {
		return fmt.Errorf("verify TOP timestamp %s: %s from now: %w", params["timestamp"], d.Round(time.Second), platform.ErrSignature)
	}
	return nil
}
