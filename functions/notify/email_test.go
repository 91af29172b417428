package notify

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/omnimember/omnimember/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// smtpServer is an in-test SMTP server on 127.0.0.1 that checks what a submission server checks
// (RFC 5321, RFC 3207 STARTTLS, RFC 4954 AUTH PLAIN): no AUTH before TLS, the credentials, no
// MAIL before AUTH. rcpt and data script the answers to RCPT and to the end of DATA ("" is 250).
type smtpServer struct {
	t          *testing.T
	ln         net.Listener
	tls        *tls.Config
	user, pass string
	implicit   bool
	noSTARTTLS bool
	rcpt, data []string
	mu         sync.Mutex
	authTries  int
	got        []smtpMessage
	done       sync.WaitGroup
}

type smtpMessage struct {
	from string
	to   []string
	data string
}

// testTLS borrows httptest's certificate (valid for 127.0.0.1) and a pool that trusts it.
func testTLS(t *testing.T) (*tls.Config, *x509.CertPool) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return &tls.Config{Certificates: srv.TLS.Certificates}, pool
}

func startSMTP(t *testing.T, s *smtpServer) *smtpServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s.t, s.ln = t, ln
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.done.Add(1)
			go func() { defer s.done.Done(); s.session(conn) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.done.Wait() })
	return s
}

// next pops the scripted answer of a step.
func (s *smtpServer) next(script *[]string, fallback string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(*script) == 0 || (*script)[0] == "" {
		if len(*script) > 0 {
			*script = (*script)[1:]
		}
		return fallback
	}
	answer := (*script)[0]
	*script = (*script)[1:]
	return answer
}

func (s *smtpServer) session(conn net.Conn) {
	defer conn.Close()
	secure := s.implicit
	if secure {
		conn = tls.Server(conn, s.tls)
	}
	tp := textproto.NewConn(conn)
	_ = tp.PrintfLine("220 test ESMTP")
	var authed bool
	var msg smtpMessage
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			ext := []string{"250-127.0.0.1", "250-8BITMIME"}
			if !secure && !s.noSTARTTLS {
				ext = append(ext, "250-STARTTLS")
			}
			if secure {
				ext = append(ext, "250-AUTH PLAIN")
			}
			_ = tp.PrintfLine("%s\r\n250 SMTPUTF8", strings.Join(ext, "\r\n"))
		case "STARTTLS":
			_ = tp.PrintfLine("220 2.0.0 ready")
			conn = tls.Server(conn, s.tls)
			tp, secure = textproto.NewConn(conn), true // RFC 3207: forget everything said before
		case "AUTH":
			_ = tp.PrintfLine("%s", s.auth(secure, arg, &authed))
		case "MAIL":
			if !authed {
				_ = tp.PrintfLine("530 5.7.0 Authentication required")
				continue
			}
			msg = smtpMessage{from: bracketed(arg)}
			_ = tp.PrintfLine("250 2.1.0 ok")
		case "RCPT":
			to := bracketed(arg)
			answer := s.next(&s.rcpt, "250 2.1.5 ok")
			if strings.HasPrefix(answer, "250") {
				msg.to = append(msg.to, to)
			}
			_ = tp.PrintfLine("%s", strings.ReplaceAll(answer, "{to}", to))
		case "DATA":
			_ = tp.PrintfLine("354 go ahead")
			raw, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			msg.data = string(raw)
			s.mu.Lock()
			s.got = append(s.got, msg)
			s.mu.Unlock()
			_ = tp.PrintfLine("%s", s.next(&s.data, "250 2.0.0 queued"))
		case "QUIT":
			_ = tp.PrintfLine("221 2.0.0 bye")
			return
		default:
			_ = tp.PrintfLine("502 5.5.2 unknown command")
		}
	}
}

// bracketed is the path of a MAIL FROM:<path> PARAMS or RCPT TO:<path> argument.
func bracketed(arg string) string {
	_, rest, _ := strings.Cut(arg, "<")
	path, _, _ := strings.Cut(rest, ">")
	return path
}

func (s *smtpServer) auth(secure bool, arg string, authed *bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authTries++
	mech, initial, _ := strings.Cut(arg, " ")
	if !secure {
		return "538 5.7.11 Encryption required for requested authentication mechanism"
	}
	raw, err := base64.StdEncoding.DecodeString(initial)
	parts := strings.Split(string(raw), "\x00")
	if mech != "PLAIN" || err != nil || len(parts) != 3 || parts[1] != s.user || parts[2] != s.pass {
		return "535 5.7.8 Authentication credentials invalid"
	}
	*authed = true
	return "235 2.7.0 Authentication successful"
}

// decode reads a received message as a mail client would.
func decode(t *testing.T, data string) (*mail.Message, string, string) {
	m, err := mail.ReadMessage(strings.NewReader(data))
	require.NoError(t, err)
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	require.NoError(t, err)
	require.Equal(t, "quoted-printable", m.Header.Get("Content-Transfer-Encoding"))
	body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	require.NoError(t, err)
	return m, subject, string(body)
}

func TestEmailOverSMTP(t *testing.T) {
	serverTLS, roots := testTLS(t)
	tests := []struct {
		name             string
		implicit         bool
		noSTARTTLS       bool
		password         string
		email            string
		rcpt, data       []string
		wantType         string
		wantAttempts     int
		wantMessages     int
		wantReason       string
		wantNotInReasons string
	}{
		{"STARTTLS on 587", false, false, "app-password", "li.lei@example.com", nil, nil, events.NotificationSent, 1, 1, "", ""},
		{"implicit TLS on 465", true, false, "app-password", "li.lei@example.com", nil, nil, events.NotificationSent, 1, 1, "", ""},
		{"lost answer after DATA is retried with the same Message-ID", false, false, "app-password", "li.lei@example.com", nil,
			[]string{"451 4.3.0 try again later"}, events.NotificationSent, 2, 2, "", ""},
		{"wrong password is rejected", false, false, "wrong", "li.lei@example.com", nil, nil, events.NotificationFailed, 1, 0, "535", ""},
		{"unknown recipient is rejected, masked", false, false, "app-password", "li.lei@example.com",
			[]string{"550 5.1.1 <{to}>: user unknown"}, nil, events.NotificationFailed, 1, 0, "l***@example.com", "li.lei@"},
		{"busy mailbox is retried", false, false, "app-password", "li.lei@example.com", []string{"452 4.2.2 mailbox full"}, nil, events.NotificationSent, 2, 1, "", ""},
		{"no STARTTLS: no credentials in the clear", false, true, "app-password", "li.lei@example.com", nil, nil, events.NotificationFailed, 1, 0, "STARTTLS", ""},
		{"no address", false, false, "app-password", "", nil, nil, events.NotificationSuppressed, 1, 0, "no_address", ""},
		{"bad address", false, false, "app-password", "li.lei@", nil, nil, events.NotificationFailed, 1, 0, "does not parse", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startSMTP(t, &smtpServer{tls: serverTLS, user: "notify@brand.example", pass: "app-password", implicit: tt.implicit,
				noSTARTTLS: tt.noSTARTTLS, rcpt: tt.rcpt, data: tt.data})
			sink := Email{Addr: srv.ln.Addr().String(), Username: "notify@brand.example", Password: tt.password, From: "品牌会员中心 <member@brand.example>",
				ImplicitTLS: tt.implicit, TLS: &tls.Config{RootCAs: roots}, Subjects: DefaultSubjects, Now: func() time.Time { return now }}
			h, _ := newHandler(t, map[string]any{"email": sink}, "outbox")
			vars := map[string]string{"text": "您的积分即将到期。\n请尽快使用：https://brand.example/points?from=mail&x=" + strings.Repeat("长", 60), "subject": "积分提醒"}
			if tt.email != "" {
				vars["email"] = tt.email
			}
			ev := channelRequest(t, "e1", "email", vars)
			typ, d := outcome(t, mustHandleUntilDone(t, h, ev))
			assert.Equal(t, tt.wantType, typ, d.Reason)
			assert.Equal(t, tt.wantAttempts, d.Attempts)
			assert.Contains(t, d.Reason, tt.wantReason)
			if tt.wantNotInReasons != "" {
				assert.NotContains(t, d.Reason, tt.wantNotInReasons, "the address is masked")
			}
			require.Len(t, srv.got, tt.wantMessages)
			if tt.noSTARTTLS {
				assert.Zero(t, srv.authTries, "no AUTH over a clear connection")
			}
			for _, got := range srv.got {
				assert.Equal(t, "member@brand.example", got.from)
				assert.Equal(t, []string{"li.lei@example.com"}, got.to)
				m, subject, body := decode(t, got.data)
				assert.Equal(t, "积分提醒", subject)
				assert.Equal(t, vars["text"]+"\n", body, "textproto hands the lines over with LF ends")
				header, bodyLines, _ := strings.Cut(got.data, "\n\n")
				for _, line := range strings.Split(header, "\n") {
					assert.LessOrEqual(t, len(line), 998, "header lines within RFC 5322 2.1.1")
				}
				for _, line := range strings.Split(bodyLines, "\n") {
					assert.LessOrEqual(t, len(line), 76, "quoted-printable lines stay within 76 characters (RFC 2045 6.7)")
				}
				assert.Equal(t, "<"+d.NotificationID+"@brand.example>", m.Header.Get("Message-ID"), "the same id on every attempt")
				from, err := m.Header.AddressList("From")
				require.NoError(t, err)
				assert.Equal(t, []*mail.Address{{Name: "品牌会员中心", Address: "member@brand.example"}}, from)
				date, err := m.Header.Date()
				require.NoError(t, err)
				assert.True(t, date.Equal(now), "Date %v", date)
				assert.Equal(t, "text/plain; charset=UTF-8", m.Header.Get("Content-Type"))
			}
		})
	}
}

func TestEmailMessageHeadersCannotBeInjected(t *testing.T) {
	sink := Email{From: "member@brand.example", Now: func() time.Time { return now }}
	from, to := &mail.Address{Address: "member@brand.example"}, &mail.Address{Address: "x@example.com"}
	raw, err := sink.message(Notification{ID: "n1", Locale: "en", Text: "hi",
		Vars: map[string]string{"subject": "hello\r\nBcc: victim@example.com"}}, from, to)
	require.NoError(t, err)
	m, err := mail.ReadMessage(strings.NewReader(string(raw)))
	require.NoError(t, err)
	assert.Empty(t, m.Header.Get("Bcc"))
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	require.NoError(t, err)
	assert.Equal(t, "hello Bcc: victim@example.com", subject)
}

func TestMaskEmail(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"li.lei@example.com", "l***@example.com"}, {"李雷@example.com", "李***@example.com"}, {"nope", "***"}, {"@x", "***"},
	} {
		assert.Equal(t, tt.want, MaskEmail(tt.in), tt.in)
	}
	err := masked(errors.Join(ErrRejected, errors.New("550 <a.b@c.d> unknown")), "a.b@c.d")
	assert.NotContains(t, err.Error(), "a.b@c.d")
	assert.ErrorIs(t, err, ErrRejected)
}

// FuzzEmailMessage checks that whatever subject and text a notification carries, the message is
// one a mail client reads back: exactly our headers, the subject on one line (whitespace folded),
// and the body unchanged but for line ends.
func FuzzEmailMessage(f *testing.F) {
	f.Add("积分提醒", "您的积分即将到期。\n请尽快使用。")
	f.Add("hello\r\nBcc: victim@example.com", "line\r\n.\r\nQUIT\r\n")
	f.Add("=?UTF-8?B?5L2g5aW9?=", "=3D trailing space \n")
	f.Fuzz(func(t *testing.T, subject, text string) {
		if !utf8.ValidString(subject) {
			return // subjects come from JSON variables: valid UTF-8
		}
		sink := Email{From: "member@brand.example", Now: func() time.Time { return now }}
		raw, err := sink.message(Notification{ID: "n1", Locale: "zh-CN", Text: text, Vars: map[string]string{"subject": subject}},
			&mail.Address{Name: "品牌", Address: "member@brand.example"}, &mail.Address{Address: "x@example.com"})
		require.NoError(t, err)
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		require.NoError(t, err)
		var keys []string
		for k := range m.Header {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		assert.Equal(t, []string{"Content-Transfer-Encoding", "Content-Type", "Date", "From", "Message-Id", "Mime-Version", "Subject", "To"}, keys)
		got, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
		require.NoError(t, err)
		want := cut(strings.Join(strings.Fields(subject), " "), 200)
		if want == "" {
			want = DefaultSubjects["zh-CN"]
		}
		assert.Equal(t, want, got)
		body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
		require.NoError(t, err)
		lf := strings.NewReplacer("\r\n", "\n", "\r", "\n")
		assert.Equal(t, lf.Replace(text)+"\n", lf.Replace(string(body)))
	})
}
