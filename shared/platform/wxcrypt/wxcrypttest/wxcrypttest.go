// Package wxcrypttest plays the WeCom / WeChat side in tests: it signs and encrypts pushes the way
// the official WXBizMsgCrypt samples do. It is written apart from wxcrypt (and imports nothing of
// it) so that a mistake in one shows up as a failure against the other.
package wxcrypttest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"slices"
)

// Sender is a platform account that pushes to a receiver: its Token, EncodingAESKey and the
// receive id (WeCom corp id, WeChat AppID) it seals into every message.
type Sender struct {
	Token          string
	EncodingAESKey string
	ReceiveID      string
}

// Sign is SHA-1 over the lexicographically sorted, concatenated values, in lowercase hex: the
// msg_signature with the ciphertext among the values, WeChat's plain signature without it.
func Sign(values ...string) string {
	v := slices.Clone(values)
	slices.Sort(v)
	var joined []byte
	for _, s := range v {
		joined = append(joined, s...)
	}
	return fmt.Sprintf("%x", sha1.Sum(joined))
}

// Seal encrypts msg with the 16-byte random prefix (length-prefixed, receive id appended, padded
// to 32-byte blocks) and returns the base64 ciphertext.
func (s Sender) Seal(random, msg string) string {
	if len(random) != 16 {
		panic("wxcrypttest: the random prefix is 16 bytes")
	}
	key, err := base64.StdEncoding.DecodeString(s.EncodingAESKey + "=")
	if err != nil {
		panic(fmt.Sprintf("wxcrypttest: EncodingAESKey: %v", err))
	}
	n := len(msg)
	buf := []byte(random)
	buf = append(buf, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	buf = append(buf, msg...)
	buf = append(buf, s.ReceiveID...)
	return s.encrypt(key, buf, 32-len(buf)%32)
}

// SealPadded is Seal with the given bytes in place of the PKCS#7 padding, to forge broken ones.
func (s Sender) SealPadded(random, msg string, padding []byte) string {
	key, err := base64.StdEncoding.DecodeString(s.EncodingAESKey + "=")
	if err != nil {
		panic(fmt.Sprintf("wxcrypttest: EncodingAESKey: %v", err))
	}
	n := len(msg)
	buf := append([]byte(random), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	buf = append(append(buf, msg...), s.ReceiveID...)
	buf = append(buf, padding...)
	if len(buf)%aes.BlockSize != 0 {
		panic("wxcrypttest: forged plaintext is not whole AES blocks")
	}
	return s.encrypt(key, buf, 0)
}

func (s Sender) encrypt(key, buf []byte, padLen int) string {
	for range padLen {
		buf = append(buf, byte(padLen))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	out := make([]byte, len(buf))
	cipher.NewCBCEncrypter(block, key[:16]).CryptBlocks(out, buf)
	return base64.StdEncoding.EncodeToString(out)
}

// Envelope is the encrypted XML body WeCom and WeChat safe mode POST; agentID "" leaves AgentID
// out (WeChat sends none).
func Envelope(toUserName, encrypt, agentID string) []byte {
	agent := ""
	if agentID != "" {
		agent = fmt.Sprintf("<AgentID><![CDATA[%s]]></AgentID>", agentID)
	}
	return fmt.Appendf(nil, "<xml><ToUserName><![CDATA[%s]]></ToUserName><Encrypt><![CDATA[%s]]></Encrypt>%s</xml>", toUserName, encrypt, agent)
}
