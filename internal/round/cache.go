package round

import (
	"container/list"

	"github.com/kshaka-io/kshaka/register"
)

// CacheEntry is a 1RTT promise: the acceptors of a prepare quorum of the
// configuration with Epoch promised Ballot after accepting Value.
type CacheEntry struct {
	Epoch  uint64
	Ballot register.Ballot
	Value  register.Value
}

// Cache is the bounded (LRU) one-round-trip cache of docs/design.md §2.4. An entry
// is handed out once: Take removes it. Not safe for concurrent use.
type Cache struct {
	cap int
	ll  *list.List
	m   map[string]*list.Element
}

type cacheItem struct {
	key string
	e   CacheEntry
}

// NewCache returns a cache of at most capacity entries; 0 disables it.
func NewCache(capacity int) *Cache {
	return &Cache{cap: capacity, ll: list.New(), m: map[string]*list.Element{}}
}

// Len is the number of entries.
func (c *Cache) Len() int { return c.ll.Len() }

// Put stores e for key, evicting the least recently stored entry when full.
func (c *Cache) Put(key string, e CacheEntry) {
	if c.cap <= 0 {
		return
	}
	if el, ok := c.m[key]; ok {
		el.Value.(*cacheItem).e = e
		c.ll.MoveToFront(el)
		return
	}
	c.m[key] = c.ll.PushFront(&cacheItem{key: key, e: e})
	for c.ll.Len() > c.cap {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.m, old.Value.(*cacheItem).key)
	}
}

// Take removes and returns the entry for key.
func (c *Cache) Take(key string) (CacheEntry, bool) {
	el, ok := c.m[key]
	if !ok {
		return CacheEntry{}, false
	}
	c.ll.Remove(el)
	delete(c.m, key)
	return el.Value.(*cacheItem).e, true
}

// Drop removes the entry for key, if any.
func (c *Cache) Drop(key string) { c.Take(key) }

// Clear removes every entry.
func (c *Cache) Clear() {
	c.ll.Init()
	clear(c.m)
}
