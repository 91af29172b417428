// Command oneid wraps the operator endpoints of the match function for people at a terminal:
//
//	oneid preview  -id phone=13812345678 -id jd_pin=pin-9
//	oneid split    -member om_... -id jd_pin=pin-9 -reason "two siblings share a JD account"
//	oneid erase    -member om_...
//	oneid quarantine [list | release ID | reject ID]
//	oneid reseal     # after a PII key rotation: every sealed phone and hash under the new key
//	oneid rekey      # after an identity key rotation: every stored identity under the new key
//
// It talks to OMNIMEMBER_URL (default http://127.0.0.1:8080) with OMNIMEMBER_ADMIN_TOKEN, and
// names the operator from $USER for the audit.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/omnimember/omnimember/events"
)

type identities []events.Identity

func (ids *identities) String() string { return fmt.Sprint(*ids) }

// Set parses type=value or type=value@scope.
func (ids *identities) Set(v string) error {
	typ, rest, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want type=value[@scope], got %q", v)
	}
	value, scope, _ := strings.Cut(rest, "@")
	*ids = append(*ids, events.Identity{Type: typ, Value: value, Scope: scope})
	return nil
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	var ids identities
	fs.Var(&ids, "id", "an identity, type=value[@scope] (repeatable)")
	oneID := fs.String("member", "", "the member's OneID")
	reason := fs.String("reason", "", "why (kept in the audit history)")
	_ = fs.Parse(os.Args[2:])
	method, path, body := route(os.Args[1], fs.Args(), *oneID, ids, *reason)
	if err := call(method, path, body); err != nil {
		fmt.Fprintln(os.Stderr, "oneid:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: oneid preview|split|erase|quarantine|reseal|rekey [flags]; see the package comment")
	os.Exit(2)
}

// route maps a command to its endpoint.
func route(command string, args []string, oneID string, ids identities, reason string) (string, string, any) {
	switch command {
	case "preview":
		return http.MethodPost, "/v1/members:merge-preview", map[string]any{"identities": ids}
	case "split":
		return http.MethodPost, "/v1/members/" + oneID + ":split", map[string]any{"identities": ids, "reason": reason}
	case "erase":
		return http.MethodDelete, "/v1/members/" + oneID + "/personal-data", nil
	case "reseal":
		return http.MethodPost, "/v1/admin/pii:reseal", nil
	case "rekey":
		return http.MethodPost, "/v1/admin/identities:rekey", nil
	case "quarantine":
		if len(args) == 2 && (args[0] == "release" || args[0] == "reject") {
			return http.MethodPost, "/v1/quarantine/" + args[1] + "/" + args[0], nil
		}
		return http.MethodGet, "/v1/quarantine", nil
	}
	usage()
	return "", "", nil
}

func call(method, path string, body any) error {
	base := os.Getenv("OMNIMEMBER_URL")
	if base == "" {
		base = "http://127.0.0.1:8080"
	}
	var reader io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		reader = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, base+path, reader)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+os.Getenv("OMNIMEMBER_ADMIN_TOKEN"))
	req.Header.Set("X-Omnimember-Operator", os.Getenv("USER"))
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var pretty bytes.Buffer
	raw, _ := io.ReadAll(resp.Body)
	if json.Indent(&pretty, raw, "", "  ") != nil {
		pretty.Write(raw)
	}
	fmt.Println(pretty.String())
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s answered %d", method, path, resp.StatusCode)
	}
	return nil
}
