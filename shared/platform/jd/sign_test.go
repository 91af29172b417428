package jd

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestSignOfficialExample is JD's own worked example (开发者指南 API调用 签名, open.jd.com
// dev-guide listId=2643): jingdong.pop.order.search with app secret "yourappSecret".
func TestSignOfficialExample(t *testing.T) {
	params := map[string]string{
		"360buy_param_json": `{"end_date":null,"optional_fields":null,"order_state":"WAIT_SELLER_STOCK_OUT","page":"1","page_size":"200","start_date":null}`,
		"access_token":      "yourtoken",
		"app_key":           "yourappkey",
		"method":            "jingdong.pop.order.search",
		"timestamp":         "2021-05-07 09:20:39.683+0800",
		"v":                 "2.0",
	}
	assert.Equal(t, "D70825340F4084360B9362B60DFD7930", Sign(params, "yourappSecret"))
	params["sign"] = "ignored"
	assert.Equal(t, "D70825340F4084360B9362B60DFD7930", Sign(params, "yourappSecret"), "sign itself is not signed")
	params["v"] = "2.1"
	assert.NotEqual(t, "D70825340F4084360B9362B60DFD7930", Sign(params, "yourappSecret"))
}

func TestTimestamp(t *testing.T) {
	got := Timestamp(time.Date(2021, 5, 7, 1, 20, 39, 683e6, time.UTC))
	assert.Equal(t, "2021-05-07 09:20:39.683+0800", got, "the example's own timestamp")
}
