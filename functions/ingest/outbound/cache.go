// Package outbound holds what the platform API clients share: their options, one call's answer
// read with the retryable failures marked, retries with exponential backoff, and a small LRU cache
// with a time to live.
package outbound

import (
	"container/list"
	"sync"
	"time"
)

// Cache is a small LRU with a time to live: order details and decrypted phones are read again
// when a refund follows a payment or a platform redelivers a push, and the APIs have call quotas.
type Cache[V any] struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	now   func() time.Time
	order *list.List // front = most recently used
	items map[string]*list.Element
}

type entry[V any] struct {
	key     string
	value   V
	expires time.Time
}

// NewCache holds at most max entries (0 disables it), each for ttl by the clock now.
func NewCache[V any](max int, ttl time.Duration, now func() time.Time) *Cache[V] {
	return &Cache[V]{max: max, ttl: ttl, now: now, order: list.New(), items: make(map[string]*list.Element)}
}

// Get returns a live entry.
func (c *Cache[V]) Get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zero V
	el, ok := c.items[key]
	if !ok {
		return zero, false
	}
	e := el.Value.(*entry[V])
	if !c.now().Before(e.expires) {
		c.order.Remove(el)
		delete(c.items, key)
		return zero, false
	}
	c.order.MoveToFront(el)
	return e.value, true
}

// Put stores an entry, evicting the least recently used beyond max.
func (c *Cache[V]) Put(key string, v V) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		el.Value = &entry[V]{key: key, value: v, expires: c.now().Add(c.ttl)}
		c.order.MoveToFront(el)
		return
	}
	c.items[key] = c.order.PushFront(&entry[V]{key: key, value: v, expires: c.now().Add(c.ttl)})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*entry[V]).key)
	}
}
