package douyinapi

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/platform/douyin"
)

// decryptBatch is the most ciphertexts order.batchDecrypt takes per call.
const decryptBatch = 50

// text is an id the API sends as a string or as a bare number (ids exceed 2^53).
type text string

func (t *text) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = text(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*t = text(n.String())
	return nil
}

type orderDetailData struct {
	Detail struct {
		OrderID        text   `json:"order_id"`
		ShopID         text   `json:"shop_id"`
		OpenID         string `json:"doudian_open_id"`
		EncryptPostTel string `json:"encrypt_post_tel"`
		MaskPostTel    string `json:"mask_post_tel"`
		PayAmount      int64  `json:"pay_amount"`
	} `json:"shop_order_detail"`
}

// OrderDetail reads order.orderDetail (订单详情) for one order of the shop; cached per app and order.
func (c *Client) OrderDetail(ctx context.Context, shop platform.Shop, orderID string) (douyin.Order, error) {
	key := shop[douyin.KeyAppKey] + "\x00" + orderID
	if o, ok := c.orders.Get(key); ok {
		return o, nil
	}
	var d orderDetailData
	if err := c.call(ctx, shop, "order.orderDetail", map[string]any{"shop_order_id": orderID}, &d); err != nil {
		return douyin.Order{}, fmt.Errorf("order detail %s: %w", orderID, err)
	}
	o := douyin.Order{
		OrderID: string(d.Detail.OrderID), ShopID: string(d.Detail.ShopID), OpenID: d.Detail.OpenID,
		EncryptPostTel: d.Detail.EncryptPostTel, MaskPostTel: d.Detail.MaskPostTel, PayAmountFen: d.Detail.PayAmount,
	}
	c.orders.Put(key, o)
	return o, nil
}

type decryptData struct {
	Infos []struct {
		AuthID      text   `json:"auth_id"`
		CipherText  string `json:"cipher_text"`
		DecryptText string `json:"decrypt_text"`
		ErrNo       int    `json:"err_no"`
		IsVirtual   bool   `json:"is_virtual_tel"`
	} `json:"decrypt_infos"`
}

// Decrypt opens ciphertexts through order.batchDecrypt (批量解密), at most 50 per call. A
// ciphertext the API refuses (err_no ≠ 0: quota, revoked authorisation) is left out of the result;
// a failed call fails the whole request with platform.ErrUpstream.
func (c *Client) Decrypt(ctx context.Context, shop platform.Shop, ciphers []douyin.Cipher) (map[string]douyin.Plain, error) {
	out := make(map[string]douyin.Plain, len(ciphers))
	var todo []douyin.Cipher
	asked := make(map[string]bool, len(ciphers))
	for _, ci := range ciphers {
		if p, ok := c.plain.Get(shop[douyin.KeyAppKey] + "\x00" + ci.Text); ok {
			out[ci.Text] = p
		} else if !asked[ci.Text] {
			asked[ci.Text] = true
			todo = append(todo, ci)
		}
	}
	for len(todo) > 0 {
		n := min(len(todo), decryptBatch)
		if err := c.decrypt(ctx, shop, todo[:n], out); err != nil {
			return nil, err
		}
		todo = todo[n:]
	}
	return out, nil
}

func (c *Client) decrypt(ctx context.Context, shop platform.Shop, batch []douyin.Cipher, out map[string]douyin.Plain) error {
	infos := make([]any, len(batch))
	for i, ci := range batch {
		infos[i] = map[string]any{"auth_id": ci.AuthID, "cipher_text": ci.Text}
	}
	var d decryptData
	if err := c.call(ctx, shop, "order.batchDecrypt", map[string]any{"cipher_infos": infos}, &d); err != nil {
		return fmt.Errorf("decrypt %d ciphertexts: %w", len(batch), err)
	}
	for _, in := range d.Infos {
		if in.ErrNo != 0 || strings.TrimSpace(in.DecryptText) == "" {
			continue
		}
		p := douyin.Plain{Phone: in.DecryptText, Virtual: in.IsVirtual}
		out[in.CipherText] = p
		c.plain.Put(shop[douyin.KeyAppKey]+"\x00"+in.CipherText, p)
	}
	return nil
}

var _ douyin.OrderSource = (*Client)(nil)
