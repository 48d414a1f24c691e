package localkube

import (
	"errors"
	"net/netip"
	"sync"
)

// errNoAddress: the pod address range is exhausted.
var errNoAddress = errors.New("no free pod address")

// ipam hands out loopback addresses from an inclusive range, round robin,
// so an address just released is the last to be given out again.
type ipam struct {
	first, last netip.Addr
	mu          struct {
		sync.Mutex
		used map[netip.Addr]string // address → owning pod UID
		next netip.Addr
	}
}

func newIPAM(r string) (*ipam, error) {
	first, last, err := parseAddressRange(r)
	if err != nil {
		return nil, err
	}
	a := &ipam{first: first, last: last}
	a.mu.used = map[netip.Addr]string{}
	a.mu.next = first
	return a, nil
}

func (a *ipam) contains(addr netip.Addr) bool {
	return !addr.Less(a.first) && !a.last.Less(addr)
}

// allocate gives owner an address; prefer is used when it is in range and
// free (a pod restarted with the environment keeps its address).
func (a *ipam) allocate(owner string, prefer netip.Addr) (netip.Addr, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for addr, o := range a.mu.used {
		if o == owner {
			return addr, nil
		}
	}
	if prefer.IsValid() && a.contains(prefer) {
		if _, taken := a.mu.used[prefer]; !taken {
			a.mu.used[prefer] = owner
			return prefer, nil
		}
	}
	addr := a.mu.next
	for range 1 << 24 {
		if _, taken := a.mu.used[addr]; !taken {
			a.mu.used[addr] = owner
			a.mu.next = a.after(addr)
			return addr, nil
		}
		addr = a.after(addr)
		if addr == a.mu.next {
			break
		}
	}
	return netip.Addr{}, errNoAddress
}

func (a *ipam) after(addr netip.Addr) netip.Addr {
	if addr == a.last {
		return a.first
	}
	return addr.Next()
}

// reserve takes addr out of the pool for good (the cluster DNS's address).
func (a *ipam) reserve(addr netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.mu.used[addr] = "\x00reserved"
}

// release frees addr if owner holds it.
func (a *ipam) release(addr netip.Addr, owner string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mu.used[addr] == owner {
		delete(a.mu.used, addr)
	}
}
