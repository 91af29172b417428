//go:build !noembedded

package backend

import (
	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/store/embedded"
)

func (c Config) openEmbedded() (store.Store, error) {
	return embedded.Open(c.Path, embedded.Options{NoSync: c.NoSync, Indexes: c.Indexes, Expire: c.Expire})
}
