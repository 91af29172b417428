package export

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// Row is one record of an export: its line and its values by field or identity type.
type Row struct {
	Line   int
	Values map[string]string
}

// Reader reads an export file's rows, CSV (with a header row) or JSON lines, UTF-8 or GB18030 (the
// platforms' back offices write either, Excel-friendly CSV from Tmall is GB18030 by default).
type Reader struct {
	format Format
	csv    *csv.Reader
	lines  *bufio.Scanner
	index  map[string]int // CSV: field → column
	line   int
}

// NewReader detects the encoding and the shape from the first bytes and reads the header.
func NewReader(r io.Reader, f Format) (*Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(4096)
	var src io.Reader = br
	switch {
	case bytes.HasPrefix(head, []byte("\xef\xbb\xbf")):
		_, _ = br.Discard(3)
	case !validUTF8Prefix(head):
		src = simplifiedchinese.GB18030.NewDecoder().Reader(br)
	}
	rd := &Reader{format: f}
	if first := bytes.TrimLeft(head, "\xef\xbb\xbf \t\r\n"); len(first) > 0 && first[0] == '{' {
		rd.lines = bufio.NewScanner(src)
		rd.lines.Buffer(make([]byte, 64<<10), 1<<20)
		return rd, nil
	}
	rd.csv = csv.NewReader(src)
	rd.csv.FieldsPerRecord = -1
	rd.csv.LazyQuotes = true
	rd.csv.ReuseRecord = true
	header, err := rd.csv.Read()
	if err != nil {
		return nil, fmt.Errorf("read the header row: %w", err)
	}
	rd.line = 1
	return rd, rd.mapHeader(header)
}

// validUTF8Prefix allows a multi-byte character cut at the end of the peeked bytes.
func validUTF8Prefix(b []byte) bool {
	for cut := 0; cut < 4 && cut <= len(b); cut++ {
		if utf8.Valid(b[:len(b)-cut]) {
			return true
		}
	}
	return false
}

func (r *Reader) mapHeader(header []string) error {
	at := make(map[string]int, len(header))
	for i, h := range header {
		at[clean(h)] = i
	}
	r.index = map[string]int{}
	for field, titles := range r.titles() {
		for _, t := range titles {
			if i, ok := at[t]; ok {
				r.index[field] = i
				break
			}
		}
	}
	for _, field := range requiredFields[r.format.Kind] {
		if _, ok := r.index[field]; !ok {
			return fmt.Errorf("header: no column for %s (looked for %v) in %v", field, r.format.Columns[field], header)
		}
	}
	return nil
}

// titles joins column and identity titles: both are looked up the same way.
func (r *Reader) titles() map[string][]string {
	out := make(map[string][]string, len(r.format.Columns)+len(r.format.Identities))
	for k, v := range r.format.Columns {
		out[k] = v
	}
	for k, v := range r.format.Identities {
		out[k] = v
	}
	return out
}

// Next returns the next row, or io.EOF. A row that cannot be read at all is an error naming its line.
func (r *Reader) Next() (Row, error) {
	if r.lines != nil {
		return r.nextJSON()
	}
	rec, err := r.csv.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return Row{}, io.EOF
		}
		return Row{}, fmt.Errorf("line %d: %w", r.line+1, err)
	}
	r.line, _ = r.csv.FieldPos(0)
	row := Row{Line: r.line, Values: make(map[string]string, len(r.index))}
	for field, i := range r.index {
		if i < len(rec) {
			if v := clean(rec[i]); v != "" {
				row.Values[field] = v
			}
		}
	}
	return row, nil
}

func (r *Reader) nextJSON() (Row, error) {
	for r.lines.Scan() {
		r.line++
		text := bytes.TrimSpace(r.lines.Bytes())
		if len(text) == 0 {
			continue
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(text, &obj); err != nil {
			return Row{Line: r.line}, fmt.Errorf("line %d: %w", r.line, err)
		}
		row := Row{Line: r.line, Values: map[string]string{}}
		for field, titles := range r.titles() {
			if v := firstValue(obj, append([]string{field}, titles...)); v != "" {
				row.Values[field] = v
			}
		}
		return row, nil
	}
	if err := r.lines.Err(); err != nil {
		return Row{}, fmt.Errorf("line %d: %w", r.line+1, err)
	}
	return Row{}, io.EOF
}

// firstValue is the first of keys present, as text: strings unquoted, numbers as written (order ids
// beyond 2^53 stay exact).
func firstValue(obj map[string]json.RawMessage, keys []string) string {
	for _, k := range keys {
		raw, ok := obj[k]
		if !ok || string(raw) == "null" {
			continue
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return clean(s)
		}
		return clean(string(raw))
	}
	return ""
}

// clean undoes what spreadsheets do to keep long numbers as text (="123", a leading ' or tab) and trims.
func clean(s string) string {
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "\ufeff"))
	if strings.HasPrefix(s, `="`) && strings.HasSuffix(s, `"`) && len(s) >= 3 {
		s = s[2 : len(s)-1]
	}
	return strings.TrimSpace(strings.TrimPrefix(s, "'"))
}
