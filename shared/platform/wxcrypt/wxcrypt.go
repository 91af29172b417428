// Package wxcrypt implements WXBizMsgCrypt, the signature and AES scheme shared by WeCom callbacks
// and WeChat official account / mini-program pushes in safe mode.
//
// Reference: WeCom 加解密方案说明 (developer.work.weixin.qq.com/document/path/90968) and the
// official WXBizMsgCrypt sample libraries; WeChat 消息加解密说明 uses the same scheme with the
// AppID as receive id.
package wxcrypt

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/omnimember/omnimember/shared/platform"
)

// blockSize is the PKCS#7 block of the scheme: 32 bytes, not AES's 16 (90968 §"AES 密钥": "PKCS#7
// 填充至 32 字节的倍数").
const blockSize = 32

// Errors a push maps to; each wraps the platform error ingest answers with.
var (
	// ErrReceiveID: the plaintext names another corp or app than the one configured (40005).
	ErrReceiveID = fmt.Errorf("%w: receive id does not match", platform.ErrSignature)
	// ErrPadding: the PKCS#7 padding is not 1..32 identical bytes (40007).
	ErrPadding = errors.New("invalid PKCS#7 padding")
)

// Crypter signs, verifies, encrypts and decrypts for one token, EncodingAESKey and receive id.
type Crypter struct {
	token     string
	key       []byte
	receiveID string
}

// New checks the 43-character EncodingAESKey (base64 of the 32-byte AES key without its trailing
// "=", 90968 §"EncodingAESKey") and returns a Crypter for the corp or app receiveID.
func New(token, encodingAESKey, receiveID string) (*Crypter, error) {
	if token == "" {
		return nil, errors.New("wxcrypt: empty token")
	}
	if len(encodingAESKey) != 43 {
		return nil, fmt.Errorf("wxcrypt: EncodingAESKey has %d characters, want 43", len(encodingAESKey))
	}
	key, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("wxcrypt: EncodingAESKey is not base64 of 32 bytes: %v", err)
	}
	return &Crypter{token: token, key: key, receiveID: receiveID}, nil
}

// Signature is the lowercase hex SHA-1 of the sorted, concatenated parts: token, timestamp, nonce
// and the ciphertext (msg_signature, 90968 §"消息体签名"), or token, timestamp, nonce alone
// (WeChat plain-mode signature).
func Signature(parts ...string) string {
	sorted := append([]string(nil), parts...)
	sort.Strings(sorted)
	sum := sha1.Sum([]byte(strings.Join(sorted, "")))
	return hex.EncodeToString(sum[:])
}

// Equal compares a received signature with the expected one in constant time, ignoring case.
func Equal(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(strings.ToLower(got)), []byte(want)) == 1
}

// Sign is the msg_signature of ciphertext encrypt under this Crypter's token.
func (c *Crypter) Sign(timestamp, nonce, encrypt string) string {
	return Signature(c.token, timestamp, nonce, encrypt)
}

// Verify checks msg_signature over token, timestamp, nonce and the ciphertext.
func (c *Crypter) Verify(msgSignature, timestamp, nonce, encrypt string) error {
	if msgSignature == "" {
		return fmt.Errorf("%w: missing msg_signature", platform.ErrSignature)
	}
	if !Equal(msgSignature, c.Sign(timestamp, nonce, encrypt)) {
		return fmt.Errorf("%w: msg_signature", platform.ErrSignature)
	}
	return nil
}

// Decrypt opens a base64 ciphertext: AES-256-CBC with IV = key[:16], PKCS#7 to 32 bytes, then
// random(16) + big-endian uint32 length + msg + receive id (90968 §"密文解密得到msg的过程"). The
// receive id must be this Crypter's.
func (c *Crypter) Decrypt(encrypt string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(encrypt)
	if err != nil {
		return nil, platform.Malformed("Encrypt", "not base64: %v", err)
	}
	if len(raw) == 0 || len(raw)%aes.BlockSize != 0 {
		return nil, platform.Malformed("Encrypt", "ciphertext of %d bytes is not whole AES blocks", len(raw))
	}
	block, err := aes.NewCipher(c.key)
	if err != nil {
		return nil, fmt.Errorf("wxcrypt: aes key: %w", err)
	}
	plain := make([]byte, len(raw))
	cipher.NewCBCDecrypter(block, c.key[:aes.BlockSize]).CryptBlocks(plain, raw)
	plain, err = unpad(plain)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, platform.Malformed("Encrypt", "%v", err))
	}
	msg, receiveID, err := split(plain)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(receiveID), []byte(c.receiveID)) != 1 {
		return nil, fmt.Errorf("%w: got %q, want %q", ErrReceiveID, receiveID, c.receiveID)
	}
	return msg, nil
}

// Encrypt seals msg for this Crypter's receive id with 16 bytes read from random, as the platform
// does; passive replies and tests use it.
func (c *Crypter) Encrypt(msg []byte, random io.Reader) (string, error) {
	var buf bytes.Buffer
	if _, err := io.CopyN(&buf, random, 16); err != nil {
		return "", fmt.Errorf("wxcrypt: read random prefix: %w", err)
	}
	buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(msg))))
	buf.Write(msg)
	buf.WriteString(c.receiveID)
	plain := pad(buf.Bytes())
	block, err := aes.NewCipher(c.key)
	if err != nil {
		return "", fmt.Errorf("wxcrypt: aes key: %w", err)
	}
	cipher.NewCBCEncrypter(block, c.key[:aes.BlockSize]).CryptBlocks(plain, plain)
	return base64.StdEncoding.EncodeToString(plain), nil
}

func pad(b []byte) []byte {
	n := blockSize - len(b)%blockSize
	return append(b, bytes.Repeat([]byte{byte(n)}, n)...)
}

// unpad accepts 1..32 bytes of the pad value, all equal.
func unpad(b []byte) ([]byte, error) {
	n := int(b[len(b)-1])
	if n < 1 || n > blockSize || n > len(b) {
		return nil, fmt.Errorf("%w: pad value %d", ErrPadding, n)
	}
	for _, v := range b[len(b)-n:] {
		if int(v) != n {
			return nil, fmt.Errorf("%w: pad bytes differ", ErrPadding)
		}
	}
	return b[:len(b)-n], nil
}

// split takes random(16) + length(4) + msg + receive id apart.
func split(plain []byte) (msg []byte, receiveID string, err error) {
	if len(plain) < 20 {
		return nil, "", platform.Malformed("Encrypt", "plaintext of %d bytes is shorter than its 20-byte header", len(plain))
	}
	n := binary.BigEndian.Uint32(plain[16:20])
	if uint64(n) > uint64(len(plain)-20) {
		return nil, "", platform.Malformed("Encrypt", "message length %d exceeds the %d bytes left", n, len(plain)-20)
	}
	return plain[20 : 20+n], string(plain[20+n:]), nil
}
