package wxcrypt_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/platform/wxcrypt"
	"github.com/omnimember/omnimember/shared/platform/wxcrypt/wxcrypttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The official WeCom vector: Sample.cs / Sample.py of the WXBizMsgCrypt library that WeCom
// publishes beside 加解密方案说明 (developer.work.weixin.qq.com/document/path/90968; library
// download at document/path/90307). The decrypted POST message is the one the same document
// shows under "解密后得到明文为".
const (
	sampleToken  = "QDG6eK"
	sampleCorpID = "wx5823bf96d3bd56c7"
	sampleAESKey = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"

	sampleVerifySig     = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
	sampleVerifyTS      = "1409659589"
	sampleVerifyNonce   = "263014780"
	sampleVerifyEchoStr = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="

	sampleReqSig     = "477715d11cdb4164915debcba66cb864d751f3e6"
	sampleReqTS      = "1409659813"
	sampleReqNonce   = "1372623149"
	sampleReqEncrypt = "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
	sampleReqPlain   = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n<FromUserName><![CDATA[mycreate]]></FromUserName>\n<CreateTime>1409659813</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[hello]]></Content>\n<MsgId>4561255354251345929</MsgId>\n<AgentID>218</AgentID>\n</xml>"
)

// The official WeChat official-account vector: WXBizMsgCryptTest.java of the Java sample WeChat
// publishes with 消息加解密说明 (fixed random "aaaabbbbccccdddd", so the ciphertext is exact).
const (
	mpAESKey  = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	mpAppID   = "wxb11529c136998cb6"
	mpRandom  = "aaaabbbbccccdddd"
	mpMessage = "我是中文abcd123"
	mpSealed  = "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="
)

func sample(t *testing.T) *wxcrypt.Crypter {
	t.Helper()
	c, err := wxcrypt.New(sampleToken, sampleAESKey, sampleCorpID)
	require.NoError(t, err)
	return c
}

func TestOfficialWeComVector(t *testing.T) {
	c := sample(t)
	tests := []struct {
		name                    string
		sig, ts, nonce, encrypt string
		want                    string
	}{
		{"url check echostr", sampleVerifySig, sampleVerifyTS, sampleVerifyNonce, sampleVerifyEchoStr, "1616140317555161061"},
		{"encrypted message", sampleReqSig, sampleReqTS, sampleReqNonce, sampleReqEncrypt, sampleReqPlain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, c.Verify(tt.sig, tt.ts, tt.nonce, tt.encrypt))
			got, err := c.Decrypt(tt.encrypt)
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
		})
	}
}

func TestOfficialWeChatEncryptVector(t *testing.T) {
	c, err := wxcrypt.New("pamtest", mpAESKey, mpAppID)
	require.NoError(t, err)
	got, err := c.Encrypt([]byte(mpMessage), strings.NewReader(mpRandom))
	require.NoError(t, err)
	assert.Equal(t, mpSealed, got)
	plain, err := c.Decrypt(mpSealed)
	require.NoError(t, err)
	assert.Equal(t, mpMessage, string(plain))
}

func TestVerifyRejects(t *testing.T) {
	c := sample(t)
	tests := []struct {
		name, sig, ts, nonce, encrypt string
	}{
		{"missing signature", "", sampleReqTS, sampleReqNonce, sampleReqEncrypt},
		{"flipped signature", strings.Replace(sampleReqSig, "4", "5", 1), sampleReqTS, sampleReqNonce, sampleReqEncrypt},
		{"other timestamp", sampleReqSig, "1409659814", sampleReqNonce, sampleReqEncrypt},
		{"other nonce", sampleReqSig, sampleReqTS, "1372623148", sampleReqEncrypt},
		{"other ciphertext", sampleReqSig, sampleReqTS, sampleReqNonce, sampleVerifyEchoStr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Verify(tt.sig, tt.ts, tt.nonce, tt.encrypt)
			assert.ErrorIs(t, err, platform.ErrSignature)
		})
	}
	assert.NoError(t, c.Verify(strings.ToUpper(sampleReqSig), sampleReqTS, sampleReqNonce, sampleReqEncrypt), "hex case does not matter")
}

func TestSignatureMatchesIndependentSigner(t *testing.T) {
	tests := [][]string{
		{sampleToken, sampleReqTS, sampleReqNonce, sampleReqEncrypt},
		{"token", "1700000000", "nonce"},
		{"b", "a", "c", "a"},
	}
	for _, parts := range tests {
		assert.Equal(t, wxcrypttest.Sign(parts...), wxcrypt.Signature(parts...))
	}
	assert.Equal(t, sampleReqSig, wxcrypt.Signature(sampleToken, sampleReqTS, sampleReqNonce, sampleReqEncrypt))
}

func TestDecryptRejects(t *testing.T) {
	c := sample(t)
	sender := wxcrypttest.Sender{Token: sampleToken, EncodingAESKey: sampleAESKey, ReceiveID: sampleCorpID}
	other := sender
	other.ReceiveID = "ww0000000000000000"
	const random = "0123456789abcdef"
	// 16 + 4 + 6 ("<xml/>") + 18 (corp id) = 44 bytes; 20 pad bytes make 64.
	tests := []struct {
		name      string
		encrypt   string
		wantIs    error
		wantField string
	}{
		{"wrong receive id", other.Seal(random, "<xml/>"), platform.ErrSignature, ""},
		{"pad value zero", sender.SealPadded(random, "<xml/>", bytes.Repeat([]byte{0}, 20)), wxcrypt.ErrPadding, "Encrypt"},
		{"pad value 33", sender.SealPadded(random, "<xml/>", bytes.Repeat([]byte{33}, 20)), wxcrypt.ErrPadding, "Encrypt"},
		{"pad bytes differ", sender.SealPadded(random, "<xml/>", append([]byte{19}, bytes.Repeat([]byte{20}, 19)...)), wxcrypt.ErrPadding, "Encrypt"},
		{"not base64", "%%%", nil, "Encrypt"},
		{"not whole blocks", "AAAA", nil, "Encrypt"},
		{"empty", "", nil, "Encrypt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Decrypt(tt.encrypt)
			require.Error(t, err)
			if tt.wantIs != nil {
				assert.ErrorIs(t, err, tt.wantIs)
			}
			if tt.wantField != "" {
				var fe *events.FieldError
				require.True(t, errors.As(err, &fe), "want a field error, got %v", err)
				assert.Equal(t, tt.wantField, fe.Field)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	c := sample(t)
	sender := wxcrypttest.Sender{Token: sampleToken, EncodingAESKey: sampleAESKey, ReceiveID: sampleCorpID}
	// Lengths around the 32-byte block: the pad is 32 bytes when the plaintext fills whole blocks.
	for _, n := range []int{0, 1, 9, 10, 11, 25, 26, 27, 31, 32, 33, 58, 1000} {
		msg := strings.Repeat("x", n)
		got, err := c.Decrypt(sender.Seal("fedcba9876543210", msg))
		require.NoError(t, err, "length %d", n)
		assert.Equal(t, msg, string(got), "length %d", n)

		sealed, err := c.Encrypt([]byte(msg), bytes.NewReader([]byte("fedcba9876543210")))
		require.NoError(t, err)
		assert.Equal(t, sender.Seal("fedcba9876543210", msg), sealed, "length %d", n)
	}
}

func TestNewRejectsBadKeys(t *testing.T) {
	tests := []struct{ name, token, key string }{
		{"empty token", "", sampleAESKey},
		{"short key", sampleToken, sampleAESKey[:42]},
		{"not base64", sampleToken, strings.Repeat("*", 43)},
	}
	for _, tt := range tests {
		_, err := wxcrypt.New(tt.token, tt.key, sampleCorpID)
		assert.Error(t, err, tt.name)
	}
}

// FuzzDecrypt feeds arbitrary ciphertexts to the decrypt and parse path: it must never panic, and
// what it accepts must re-encrypt to a ciphertext that decrypts to the same message.
func FuzzDecrypt(f *testing.F) {
	sender := wxcrypttest.Sender{Token: sampleToken, EncodingAESKey: sampleAESKey, ReceiveID: sampleCorpID}
	f.Add(sampleReqEncrypt)
	f.Add(sampleVerifyEchoStr)
	f.Add(sender.Seal("0123456789abcdef", ""))
	f.Add(sender.SealPadded("0123456789abcdef", "<xml/>", bytes.Repeat([]byte{0}, 20)))
	f.Add("AAAAAAAAAAAAAAAAAAAAAA==")
	c, err := wxcrypt.New(sampleToken, sampleAESKey, sampleCorpID)
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, encrypt string) {
		msg, err := c.Decrypt(encrypt)
		if err != nil {
			return
		}
		again, err := c.Encrypt(msg, strings.NewReader("0123456789abcdef"))
		require.NoError(t, err)
		back, err := c.Decrypt(again)
		require.NoError(t, err)
		assert.Equal(t, msg, back)
	})
}
