package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"
	"unicode/utf8"
)

// Email sends notifications as plain-text mail over SMTP: STARTTLS on the submission port (587)
// or implicit TLS (465), then AUTH PLAIN. It never sends credentials or mail in the clear.
type Email struct {
	// Addr is the server's host:port.
	Addr               string
	Username, Password string
	// From is the sender, optionally with a display name: "品牌会员中心 <member@brand.example>".
	From string
	// ImplicitTLS speaks TLS from the first byte (port 465) instead of upgrading with STARTTLS.
	ImplicitTLS bool
	// TLS is the client TLS configuration; nil verifies the server against the system roots.
	TLS *tls.Config
	// Subjects is the subject per locale when the notification has no `subject` variable.
	Subjects map[string]string
	Now      func() time.Time
}

// DefaultSubjects are the subjects of mail whose notification sets none.
var DefaultSubjects = map[string]string{"zh-CN": "会员通知", "en": "Membership notice"}

// Deliver implements Sink. The address is the notification's `email` variable (members have no
// email identity). The Message-ID is derived from the notification id, so a retry after an
// unclear outcome is recognisable as the same message.
func (e Email) Deliver(ctx context.Context, n Notification) error {
	raw := strings.TrimSpace(n.Vars["email"])
	if raw == "" {
		return fmt.Errorf("email %s: no email variable: %w", n.ID, ErrNoAddress)
	}
	to, err := mail.ParseAddress(raw)
	if err != nil {
		return fmt.Errorf("%w: email %s: the address %s does not parse", ErrRejected, n.ID, MaskEmail(raw))
	}
	from, err := mail.ParseAddress(e.From)
	if err != nil {
		return fmt.Errorf("%w: email %s: From %q: %v", ErrRejected, n.ID, e.From, err)
	}
	msg, err := e.message(n, from, to)
	if err != nil {
		return fmt.Errorf("email %s: %w", n.ID, err)
	}
	if err := e.send(ctx, from.Address, to.Address, msg); err != nil {
		return fmt.Errorf("email %s: %w", n.ID, masked(err, to.Address))
	}
	return nil
}

// message writes an RFC 5322 message: UTF-8 subject as an RFC 2047 encoded word, the text body
// quoted-printable with CRLF line ends.
func (e Email) message(n Notification, from, to *mail.Address) ([]byte, error) {
	subject := ""
	for _, s := range []string{n.Vars["subject"], e.Subjects[n.Locale], DefaultSubjects["zh-CN"]} {
		if subject = cut(strings.Join(strings.Fields(s), " "), 200); subject != "" { // no line breaks reach the header
			break
		}
	}
	domain := from.Address[strings.LastIndex(from.Address, "@")+1:]
	var b bytes.Buffer
	for _, h := range [][2]string{{"From", from.String()}, {"To", to.String()}, {"Subject", encodeWords(subject)},
		{"Date", e.Now().Format(time.RFC1123Z)}, {"Message-ID", "<" + n.ID + "@" + domain + ">"}, {"MIME-Version", "1.0"},
		{"Content-Type", "text/plain; charset=UTF-8"}, {"Content-Transfer-Encoding", "quoted-printable"}} {
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(n.Text)); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	b.WriteString("\r\n")
	return b.Bytes(), nil
}

// encodeWords writes a header text as RFC 2047 "B" encoded words, always: an ASCII text that
// merely looks like an encoded word (=?UTF-8?B?...?=) would otherwise reach the reader decoded.
// Each word holds at most 45 bytes (60 base64 characters, 72 in all: within the 75 of RFC 2047
// section 2), cut between characters.
func encodeWords(s string) string {
	var words []string
	for len(s) > 0 {
		n := 0
		for n < len(s) {
			_, size := utf8.DecodeRuneInString(s[n:])
			if n+size > 45 {
				break
			}
			n += size
		}
		words = append(words, "=?UTF-8?B?"+base64.StdEncoding.EncodeToString([]byte(s[:n]))+"?=")
		s = s[n:]
	}
	return strings.Join(words, " ")
}

// send runs one SMTP session. A 5xx answer (bad credentials, unknown recipient, refused
// message) is a rejection; 4xx answers and network errors are retried.
func (e Email) send(ctx context.Context, from, to string, msg []byte) error {
	c, err := e.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if !e.ImplicitTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fmt.Errorf("%w: smtp %s does not offer STARTTLS: refusing to send credentials in the clear", ErrRejected, e.Addr)
		}
		if err := c.StartTLS(e.tlsConfig()); err != nil {
			return fmt.Errorf("smtp starttls: %w", err)
		}
	}
	if e.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", e.Username, e.Password, e.host())); err != nil {
			return classify("smtp auth", err)
		}
	}
	if err := c.Mail(from); err != nil {
		return classify("smtp MAIL FROM", err)
	}
	if err := c.Rcpt(to); err != nil {
		return classify("smtp RCPT TO", err)
	}
	w, err := c.Data()
	if err != nil {
		return classify("smtp DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return classify("smtp DATA", err)
	}
	if err := w.Close(); err != nil {
		return classify("smtp end of DATA", err)
	}
	_ = c.Quit() // the message is accepted; a failed QUIT changes nothing
	return nil
}

// dial connects, bounded by the context's deadline (or a minute), over TLS from the start when
// ImplicitTLS.
func (e Email) dial(ctx context.Context) (*smtp.Client, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", e.Addr)
	if err != nil {
		return nil, fmt.Errorf("smtp dial %s: %w", e.Addr, err)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	_ = conn.SetDeadline(deadline)
	if e.ImplicitTLS {
		tc := tls.Client(conn, e.tlsConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("smtp tls handshake with %s: %w", e.Addr, err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, e.host())
	if err != nil {
		conn.Close()
		return nil, classify("smtp greeting", err)
	}
	return c, nil
}

func (e Email) host() string {
	host, _, err := net.SplitHostPort(e.Addr)
	if err != nil {
		return e.Addr
	}
	return host
}

func (e Email) tlsConfig() *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if e.TLS != nil {
		cfg = e.TLS.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = e.host()
	}
	return cfg
}

// classify marks a permanent SMTP answer (5xx) as a rejection.
func classify(step string, err error) error {
	var reply *textproto.Error
	if errors.As(err, &reply) && reply.Code >= 500 {
		return fmt.Errorf("%w: %s: %d %s", ErrRejected, step, reply.Code, reply.Msg)
	}
	return fmt.Errorf("%s: %w", step, err)
}

// masked replaces the address in an error (servers echo it) by its masked form.
func masked(err error, address string) error {
	text := err.Error()
	if !strings.Contains(text, address) {
		return err
	}
	text = strings.ReplaceAll(text, address, MaskEmail(address))
	if errors.Is(err, ErrRejected) {
		return fmt.Errorf("%w: %s", ErrRejected, strings.TrimPrefix(text, ErrRejected.Error()+": "))
	}
	return errors.New(text)
}

// MaskEmail keeps an address's first character and domain: a***@example.com.
func MaskEmail(address string) string {
	at := strings.LastIndex(address, "@")
	if at < 1 {
		return "***"
	}
	_, size := utf8.DecodeRuneInString(address)
	return address[:size] + "***" + address[at:]
}
