package backfill

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// GenerateTmall writes n orders by people buyers as a Tmall order export (the 卖家中心 columns,
// Excel's ="..." guard on long ids): some refunded in part or in full, some unpaid, some with
// masked phones. The same arguments give the same file.
func GenerateTmall(w io.Writer, n, people int) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	rng := rand.New(rand.NewPCG(uint64(n), uint64(people)))
	fmt.Fprintln(bw, "订单编号,买家会员名,买家实际支付金额,订单状态,联系手机,订单创建时间,订单付款时间,宝贝标题,退款金额,店铺ID,买家OUID")
	start := time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC)
	for i := range n {
		person := rng.IntN(people)
		phone := fmt.Sprintf("13%09d", person)
		if person%10 == 0 {
			phone = phone[:3] + "****" + phone[7:]
		}
		paidFen := 1000 + rng.IntN(100_000)
		created := start.Add(time.Duration(i) * 17 * time.Second)
		paid, status, refund := created.Add(30*time.Second).Format("2006-01-02 15:04:05"), "交易成功", "0.00"
		switch r := rng.IntN(100); {
		case r < 3:
			paid, status = "", "等待买家付款"
		case r < 8:
			refund, status = yuanOf(paidFen), "交易关闭"
		case r < 15:
			refund = yuanOf(paidFen / 3)
		}
		fmt.Fprintf(bw, "=\"%019d\",b**%d,%s,%s,%s,%s,%s,精华液 50ml,%s,tm-shop-%d,OUID%07d\n",
			3_400_000_000_000_000_000+i, person%10, yuanOf(paidFen), status, phone,
			created.Format("2006-01-02 15:04:05"), paid, refund, 1+person%3, person)
	}
	return bw.Flush()
}

func yuanOf(fen int) string { return fmt.Sprintf("%d.%02d", fen/100, fen%100) }
