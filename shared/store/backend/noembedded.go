//go:build noembedded

package backend

import (
	"errors"

	"github.com/omnimember/omnimember/shared/store"
)

// The images deploy/ builds (make image) leave the embedded store out: in a cluster every function
// is its own pod sharing Firestore, and a file one process opens at a time serves none of them.
// Dropping it (bbolt and the store over it) is part of what keeps an image under the size bar.
func (c Config) openEmbedded() (store.Store, error) {
	return nil, errors.New("STORE=embedded: this build (-tags noembedded, a cluster image) has no embedded store; set STORE=firestore")
}
