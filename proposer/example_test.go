package proposer_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strconv"

	"github.com/kshaka-io/kshaka/proposer"
)

func Example() {
	ctx := context.Background()
	// endpoints are acceptor addresses, e.g. the cluster's client Service.
	c, err := proposer.New(ctx, proposer.Config{Endpoints: endpoints})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	key := []byte("example/greeting")
	v, err := c.Put(ctx, key, []byte("hello"))
	if err != nil {
		panic(err)
	}
	fmt.Printf("put: %s (version %d)\n", v.Data, v.Version)

	// Compare-and-swap on the version just written.
	v, err = c.CompareAndSwap(ctx, key, v.Version, []byte("hello, world"))
	if err != nil {
		panic(err)
	}
	fmt.Printf("cas: %s (version %d)\n", v.Data, v.Version)

	// A CAS from a stale version fails and reports the current value.
	_, err = c.CompareAndSwap(ctx, key, 1, []byte("lost update"))
	var mismatch *proposer.VersionMismatchError
	if errors.As(err, &mismatch) {
		fmt.Printf("stale cas: current is %s (version %d)\n", mismatch.Current.Data, mismatch.Current.Version)
	}

	// Only-if-absent: version 0.
	if _, err := c.CompareAndSwap(ctx, key, 0, []byte("x")); errors.Is(err, proposer.ErrVersionMismatch) {
		fmt.Println("create: key exists")
	}

	if err := c.Delete(ctx, key); err != nil {
		panic(err)
	}
	if _, err := c.Get(ctx, key); errors.Is(err, proposer.ErrNotFound) {
		fmt.Println("get after delete: not found")
	}
	// Output:
	// put: hello (version 1)
	// cas: hello, world (version 2)
	// stale cas: current is hello, world (version 2)
	// create: key exists
	// get after delete: not found
}

func ExampleClient_Change() {
	ctx := context.Background()
	c, err := proposer.New(ctx, proposer.Config{Endpoints: endpoints})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	// An increment: fn computes the new data from the current value.
	incr := func(cur proposer.Value, exists bool) ([]byte, error) {
		n := 0
		if exists {
			if n, err = strconv.Atoi(string(cur.Data)); err != nil {
				return nil, err // nothing changes; the error is returned
			}
		}
		return []byte(strconv.Itoa(n + 1)), nil
	}
	for range 3 {
		if _, err := c.Change(ctx, []byte("example/counter"), incr); err != nil {
			panic(err)
		}
	}
	v, err := c.Get(ctx, []byte("example/counter"))
	if err != nil {
		panic(err)
	}
	fmt.Printf("counter: %s (version %d)\n", v.Data, v.Version)
	// Output:
	// counter: 3 (version 3)
}

// An unknown outcome (an accept sent without a quorum confirming it) is
// never retried blindly; Resolve settles it.
func ExampleClient_Resolve() {
	ctx := context.Background()
	c, err := proposer.New(ctx, proposer.Config{Endpoints: endpoints})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	put := func(key, data []byte) error {
		_, err := c.Put(ctx, key, data)
		var u *proposer.UnknownOutcomeError
		if !errors.As(err, &u) {
			return err
		}
		switch res, cur, err := c.Resolve(ctx, u); {
		case err != nil:
			return err
		case res == proposer.Applied:
			return nil
		case res == proposer.NotApplied:
			_, err := c.Put(ctx, key, data) // safe: the first attempt can no longer land
			return err
		default: // Undecided: inspect the current value
			if string(cur.Data) == string(data) {
				return nil
			}
			return u
		}
	}
	fmt.Println(put([]byte("example/resolve"), []byte("v")))
	// Output:
	// <nil>
}

// On Kubernetes an application mounts the cluster's kc-client-tls Secret
// (ca.crt, tls.crt, tls.key; the certificate carries O=kshaka:client) and
// points TLSDir at it; rotated files are picked up without a restart.
// Access errors say what is wrong: a wrong CA, an expired or misnamed
// acceptor certificate, a missing client certificate, a role that does not
// allow the call.
func ExampleConfig_tlsDir() {
	ctx := context.Background()
	c, err := proposer.New(ctx, proposer.Config{
		Endpoints: []string{"kc-client.ns.svc:7400"},
		TLSDir:    "/etc/kshaka/client-tls",
		Events: proposer.Events{TLSReload: func(err error) {
			if err != nil {
				log.Printf("kshaka: new TLS files do not load, keeping the current ones: %v", err)
			}
		}},
	})
	if errors.Is(err, proposer.ErrAccess) {
		log.Fatalf("kshaka refused this client: %v", err)
	}
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
}
