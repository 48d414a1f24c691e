package acceptor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

// stallConn lets budget bytes through once armed, then blocks every write
// until released: a client that stops sending in the middle of a request.
type stallConn struct {
	net.Conn
	mu      sync.Mutex
	armed   bool
	budget  int
	stalled chan struct{} // closed when a write first blocks
	release chan struct{}
	once    sync.Once
}

func (c *stallConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	if !c.armed || len(b) <= c.budget {
		if c.armed {
			c.budget -= len(b)
		}
		c.mu.Unlock()
		return c.Conn.Write(b)
	}
	n := c.budget
	c.budget = 0
	c.mu.Unlock()
	if n > 0 {
		if _, err := c.Conn.Write(b[:n]); err != nil {
			return 0, err
		}
	}
	c.once.Do(func() { close(c.stalled) })
	<-c.release
	m, err := c.Conn.Write(b[n:])
	return n + m, err
}

func (c *stallConn) arm(budget int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armed, c.budget = true, budget
}

// within runs f and fails the test if it does not return within a minute:
// f must not wait for anything the stalled client holds.
func within(t *testing.T, what string, f func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := f(ctx); err != nil {
		t.Fatalf("%s while another client is stalled: %v", what, err)
	}
}

// The per-key locks and the configuration gate are held only while the
// acceptor reads and writes its store, never while it waits for a client:
// a request is handled once it has arrived whole, and ListKeys sends its
// pages outside the gate. With a single lock stripe, a request that held
// its stripe would block every other request.
func TestStalledClientsHoldNoLocks(t *testing.T) {
	opts := testOptions(t)
	opts.LockStripes = 1
	n := startAdmitted(t, opts)
	ctx := context.Background()

	t.Run("a request stalled half-way", func(t *testing.T) {
		sc := &stallConn{stalled: make(chan struct{}), release: make(chan struct{})}
		conn, err := grpc.NewClient(n.conn.Target(), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
				sc.Conn = c
				return sc, err
			}))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		slow := kshakav1.NewAcceptorClient(conn)
		if _, err := slow.Read(ctx, &kshakav1.ReadRequest{Epoch: 1, Keys: [][]byte{[]byte("k")}}); err != nil {
			t.Fatal(err)
		}
		sc.arm(16 << 10) // the headers and the start of the message
		done := make(chan error, 1)
		go func() {
			_, err := slow.Accept(ctx, &kshakav1.AcceptRequest{Epoch: 1, Items: []*kshakav1.AcceptItem{
				acc("k", b(9, 1), val(1, strings.Repeat("v", 512<<10)), nil)}})
			done <- err
		}()
		<-sc.stalled
		within(t, "Accept of the same key", func(context.Context) error {
			_, err := n.data.Accept(ctx, &kshakav1.AcceptRequest{Epoch: 1, Items: []*kshakav1.AcceptItem{acc("k", b(5, 1), val(1, "x"), nil)}})
			return err
		})
		n.admit(2) // SetConfig takes the gate exclusively
		close(sc.release)
		if err := <-done; err != nil {
			t.Fatalf("the stalled Accept, once released: %v", err)
		}
	})

	t.Run("ListKeys whose reader stopped reading", func(t *testing.T) {
		var items []*kshakav1.AcceptItem
		for i := range 2000 {
			items = append(items, acc(fmt.Sprintf("%0100d", i), b(5, 1), val(1, ""), nil))
		}
		if _, err := n.data.Accept(ctx, &kshakav1.AcceptRequest{Epoch: 2, Items: items}); err != nil {
			t.Fatal(err)
		}
		// A small fixed window, so that the server's sends block soon.
		conn, err := grpc.NewClient(n.conn.Target(), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := kshakav1.NewAdminClient(conn).ListKeys(sctx, &kshakav1.ListKeysRequest{PageSize: 500})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err != nil { // it is being served; now stop reading
			t.Fatal(err)
		}
		within(t, "Accept", func(context.Context) error {
			_, err := n.data.Accept(ctx, &kshakav1.AcceptRequest{Epoch: 2, Items: []*kshakav1.AcceptItem{acc("k", b(50, 1), val(2, "y"), nil)}})
			return err
		})
		n.admit(3)
		cancel()
	})
}

// A connection that never finishes its TLS handshake is closed by the
// server (Options.HandshakeTimeout), rather than held for gRPC's default of
// two minutes.
func TestSilentConnectionIsClosed(t *testing.T) {
	opts := testOptions(t)
	opts.HandshakeTimeout = 200 * time.Millisecond
	s := startTLS(t, opts)
	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	_, err = conn.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept a connection that sent nothing for a minute")
	}
	if err == nil {
		t.Fatal("the server sent something to a connection that never said hello")
	}
}

// A handshake bound that is not positive is refused.
func TestHandshakeTimeoutValidated(t *testing.T) {
	opts := testOptions(t)
	opts.HandshakeTimeout = -time.Second
	if _, err := Open(opts); err == nil || !strings.Contains(err.Error(), "HandshakeTimeout") {
		t.Fatalf("Open with a negative HandshakeTimeout: %v", err)
	}
}
