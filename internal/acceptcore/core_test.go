package acceptcore

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/kshaka-io/kshaka/register"
)

// TestCore runs the scripts in testdata/ (docs/design.md §2.1, §2.2, §2.4; package
// acceptor's "Promises and the floor"). Each script drives the core through
// a toy driver, the smallest one the package doc allows: a map of records,
// a durable floor and a crash that loses what was committed without a sync.
// Regenerate the expected output with
//
//	go test ./internal/acceptcore -run TestCore -rewrite
//
// Commands:
//
//	new [step=N] [lead=DURATION] [logical] [volatile] [ignorepromise]
//	                                                    a core and an empty disk
//	clock us=N                                          the driver's clock reading, µs since 1970
//	floors removed=BALLOT version=N                     the installed configuration's GC floors
//	collect                                             KEY BALLOT VERSION (docs/design.md §10)
//	prepare                                             one batch; an item a line: KEY BALLOT
//	accept                                              KEY BALLOT VALUE [next=BALLOT]
//	read                                                KEY
//	crash [keep]                                        lose (keep) what was not synced, restart
//	show                                                the disk
//
// A ballot is COUNTER.PROPOSER (the proposer in hex, as Ballot.String
// prints it); a value is VERSION:DATA, VERSION:deleted, or missing.
func TestCore(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		d := &driver{}
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			out, err := d.run(td)
			if err != nil {
				td.Fatalf(t, "%v", err)
			}
			return out
		})
	})
}

// driver is the toy driver: what a real one persists, in memory.
type driver struct {
	core  *Core
	now   time.Time
	disk  map[string]register.State
	floor uint64 // durable
	// restart is this life's restart floor; unsynced holds, for each key
	// written without a sync since, its last synced state.
	restart  uint64
	unsynced map[string]register.State
	// gc holds the installed configuration's GC floors.
	gc Floors
}

func (d *driver) run(td *datadriven.TestData) (string, error) {
	switch td.Cmd {
	case "new":
		return d.reset(td)
	case "clock":
		us, err := uintArg(td, "us")
		d.now = time.UnixMicro(int64(us))
		return "", err
	case "prepare", "accept", "read":
		if d.core == nil {
			return "", errors.New("no core: start the script with new")
		}
		return d.batch(td)
	case "floors":
		return "", d.setFloors(td)
	case "collect":
		if d.core == nil {
			return "", errors.New("no core: start the script with new")
		}
		return d.collect(td)
	case "crash":
		return d.crashCmd(td.HasArg("keep")), nil
	case "show":
		return d.show(), nil
	}
	return "", fmt.Errorf("unknown command %q", td.Cmd)
}

func (d *driver) reset(td *datadriven.TestData) (string, error) {
	o := Options{MaxKeySize: 8, MaxValueSize: 8, MaxBatchItems: 4, MaxBallotLead: time.Second,
		LogicalCounters: td.HasArg("logical"), VolatilePromises: td.HasArg("volatile"),
		IgnoreCollectPromise: td.HasArg("ignorepromise")}
	var err error
	if td.HasArg("step") {
		if o.PromiseFloorStep, err = uintArg(td, "step"); err != nil {
			return "", err
		}
	}
	if arg, ok := td.Arg("lead"); ok {
		if o.MaxBallotLead, err = time.ParseDuration(arg.Vals[0]); err != nil {
			return "", err
		}
	}
	c, err := New(o)
	if err != nil {
		d.core = nil
		return err.Error(), nil
	}
	*d = driver{core: c, now: time.UnixMicro(1_000_000), disk: map[string]register.State{}, unsynced: map[string]register.State{}}
	return "", nil
}

// batch runs one request of the script and describes what a driver
// replies and persists.
func (d *driver) batch(td *datadriven.TestData) (string, error) {
	lines := strings.Split(strings.TrimSpace(td.Input), "\n")
	if td.Input == "" {
		lines = nil
	}
	keys := make([][]byte, len(lines))
	for i, l := range lines {
		keys[i] = []byte(keyOf(strings.Fields(l)[0]))
	}
	var (
		b     strings.Builder
		c     commit
		err   error
		reply = func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	)
	switch td.Cmd {
	case "prepare":
		items, perr := parsePrepare(lines)
		if perr != nil {
			return "", perr
		}
		var out []PrepareOutcome
		if out, c, err = d.prepare(items); err == nil {
			for i, o := range out {
				reply("%s: %s accepted=%v value=%v\n", keys[i], verdict(o.OK, o.Conflict), o.Accepted, o.Value)
			}
		}
	case "accept":
		items, perr := parseAccept(lines)
		if perr != nil {
			return "", perr
		}
		var out []AcceptOutcome
		if out, c, err = d.accept(items); err == nil {
			for i, o := range out {
				reply("%s: %s accepted=%v\n", keys[i], verdict(o.OK, o.Conflict), o.Accepted)
			}
		}
	case "read":
		var out []ReadOutcome
		if out, err = d.read(keys); err == nil {
			for i, o := range out {
				reply("%s: accepted=%v value=%v\n", keys[i], o.Accepted, o.Value)
			}
		}
	}
	if err != nil {
		return refusal(err), nil
	}
	switch {
	case len(c.writes) == 0:
		b.WriteString("commit: nothing\n")
	case c.Floor != 0:
		reply("commit: sync, floor %d -> %d\n", c.before, c.Floor)
	case c.Sync:
		b.WriteString("commit: sync\n")
	default:
		reply("commit: no sync (below floor %d)\n", c.before)
	}
	for _, k := range c.writes {
		reply("  %s := %s\n", k, state(d.disk[k]))
	}
	return b.String(), nil
}

// commit is what a request committed: its Durability, against the durable
// floor before, and the keys it wrote.
type commit struct {
	Durability
	before uint64
	writes []string
}

// prepare runs a prepare as a driver must: check it, step the rules on the
// current states, commit; the outcomes may go out only after that. A
// refusal (err) commits nothing.
func (d *driver) prepare(items []PrepareItem) ([]PrepareOutcome, commit, error) {
	if err := d.core.CheckPrepare(items, d.now); err != nil {
		return nil, commit{}, err
	}
	keys := make([][]byte, len(items))
	for i, it := range items {
		keys[i] = it.Key
	}
	out, ready := d.core.Prepare(d.floors(), items, d.states(keys))
	c, err := d.persist(keys, ready)
	return out, c, err
}

func (d *driver) accept(items []AcceptItem) ([]AcceptOutcome, commit, error) {
	if err := d.core.CheckAccept(items, d.now); err != nil {
		return nil, commit{}, err
	}
	keys := make([][]byte, len(items))
	for i, it := range items {
		keys[i] = it.Key
	}
	out, ready := d.core.Accept(d.floors(), items, d.states(keys))
	c, err := d.persist(keys, ready)
	return out, c, err
}

func (d *driver) floors() Floors {
	f := d.gc
	f.Restart = d.restart
	return f
}

func (d *driver) setFloors(td *datadriven.TestData) error {
	arg, ok := td.Arg("removed")
	if !ok || len(arg.Vals) != 1 {
		return fmt.Errorf("%s: want removed=BALLOT", td.Pos)
	}
	b, err := parseBallot(arg.Vals[0])
	if err != nil {
		return err
	}
	v, err := uintArg(td, "version")
	d.gc = Floors{Removed: b, Version: v}
	return err
}

// collect runs a Collect as a driver must: check it, decide on the stored
// records, delete the removed ones in one synced batch, then reply.
func (d *driver) collect(td *datadriven.TestData) (string, error) {
	var items []CollectItem
	for _, l := range strings.Split(strings.TrimSpace(td.Input), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			return "", fmt.Errorf("collect item %q: want KEY BALLOT VERSION", l)
		}
		b, err := parseBallot(f[1])
		if err != nil {
			return "", err
		}
		v, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			return "", err
		}
		items = append(items, CollectItem{Key: []byte(keyOf(f[0])), Ballot: b, Version: v})
	}
	if err := d.core.CheckCollect(items, d.now); err != nil {
		return refusal(err), nil
	}
	states := make([]register.State, len(items))
	for i, it := range items {
		states[i] = d.disk[string(it.Key)]
	}
	var b strings.Builder
	for i, v := range d.core.Collect(d.floors(), items, states) {
		fmt.Fprintf(&b, "%s: %v\n", items[i].Key, v)
		if v == CollectRemoved {
			delete(d.disk, string(items[i].Key))
			delete(d.unsynced, string(items[i].Key))
		}
	}
	return b.String(), nil
}

func (d *driver) read(keys [][]byte) ([]ReadOutcome, error) {
	if err := d.core.CheckRead(keys); err != nil {
		return nil, err
	}
	return d.core.Read(d.states(keys)), nil
}

func (d *driver) states(keys [][]byte) []register.State {
	states := make([]register.State, len(keys))
	for i, k := range keys {
		states[i] = d.disk[string(k)]
	}
	return states
}

// persist writes ready's states and the floor as Durability says.
func (d *driver) persist(keys [][]byte, ready Ready) (commit, error) {
	dur, err := d.core.Durability(ready, d.floor)
	if err != nil {
		return commit{}, err
	}
	c := commit{Durability: dur, before: d.floor}
	for _, i := range ready.Write {
		k := string(keys[i])
		if _, ok := d.unsynced[k]; !ok && !dur.Sync {
			d.unsynced[k] = d.disk[k]
		}
		d.disk[k] = ready.States[i]
		c.writes = append(c.writes, k)
	}
	if dur.Sync {
		// A synced commit makes everything committed before it durable
		// too (a write-ahead log).
		clear(d.unsynced)
	}
	if dur.Floor != 0 {
		d.floor = dur.Floor
	}
	return c, nil
}

// crash loses the writes committed without a sync for which lose says so,
// and restarts with the durable floor.
func (d *driver) crash(lose func(key string) bool) (lost []string, restart uint64, ahead error) {
	for _, k := range sortedKeys(d.unsynced) {
		if !lose(k) {
			continue
		}
		lost = append(lost, fmt.Sprintf("%s: promise %v", k, d.disk[k].Promise))
		if old := d.unsynced[k]; old.Promise.IsZero() && old.Accepted.IsZero() {
			delete(d.disk, k)
		} else {
			d.disk[k] = old
		}
	}
	clear(d.unsynced)
	d.restart, ahead = d.core.Restart(d.floor, d.now)
	return lost, d.restart, ahead
}

func (d *driver) crashCmd(keep bool) string {
	var b strings.Builder
	lost, restart, ahead := d.crash(func(string) bool { return !keep })
	for _, l := range lost {
		fmt.Fprintf(&b, "lost %s\n", l)
	}
	fmt.Fprintf(&b, "restart floor %d\n", restart)
	if ahead != nil {
		fmt.Fprintf(&b, "warning: %v\n", ahead)
	}
	return b.String()
}

func (d *driver) show() string {
	var b strings.Builder
	fmt.Fprintf(&b, "durable floor %d, restart floor %d\n", d.floor, d.restart)
	for _, k := range sortedKeys(d.disk) {
		mark := ""
		if _, ok := d.unsynced[k]; ok {
			mark = " (not synced)"
		}
		fmt.Fprintf(&b, "%s: %s%s\n", k, state(d.disk[k]), mark)
	}
	return b.String()
}

func verdict(ok bool, conflict register.Ballot) string {
	if ok {
		return "ok"
	}
	return "conflict " + conflict.String()
}

func state(s register.State) string {
	return fmt.Sprintf("promise=%v accepted=%v value=%v", s.Promise, s.Accepted, s.Value)
}

func refusal(err error) string {
	s := "refused: " + err.Error() + "\n"
	if errors.Is(err, register.ErrTooFarAhead) {
		s += "(too far ahead: a later delivery may be taken)\n"
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func uintArg(td *datadriven.TestData, key string) (uint64, error) {
	arg, ok := td.Arg(key)
	if !ok || len(arg.Vals) != 1 {
		return 0, fmt.Errorf("%s: want %s=N", td.Pos, key)
	}
	return strconv.ParseUint(arg.Vals[0], 10, 64)
}

func parseBallot(s string) (register.Ballot, error) {
	c, p, ok := strings.Cut(s, ".")
	if !ok {
		return register.Ballot{}, fmt.Errorf("ballot %q: want COUNTER.PROPOSER", s)
	}
	counter, err := strconv.ParseUint(c, 10, 64)
	if err != nil {
		return register.Ballot{}, fmt.Errorf("ballot %q: %w", s, err)
	}
	proposer, err := strconv.ParseUint(p, 16, 64)
	if err != nil {
		return register.Ballot{}, fmt.Errorf("ballot %q: %w", s, err)
	}
	return register.Ballot{Counter: counter, Proposer: proposer}, nil
}

func parseValue(s string) (v register.Value, has bool, err error) {
	if s == "missing" {
		return v, false, nil
	}
	ver, data, ok := strings.Cut(s, ":")
	if !ok {
		return v, false, fmt.Errorf("value %q: want VERSION:DATA, VERSION:deleted or missing", s)
	}
	if v.Version, err = strconv.ParseUint(ver, 10, 64); err != nil {
		return v, false, fmt.Errorf("value %q: %w", s, err)
	}
	switch {
	case data == "deleted":
		v.Tombstone = true
	case strings.HasPrefix(data, "deleted+"): // a tombstone that carries data (malformed)
		v.Tombstone, v.Data = true, []byte(strings.TrimPrefix(data, "deleted+"))
	case data != "":
		v.Data = []byte(data)
	}
	return v, true, nil
}

func parsePrepare(lines []string) ([]PrepareItem, error) {
	items := make([]PrepareItem, len(lines))
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) != 2 {
			return nil, fmt.Errorf("prepare item %q: want KEY BALLOT", l)
		}
		b, err := parseBallot(f[1])
		if err != nil {
			return nil, err
		}
		items[i] = PrepareItem{Key: []byte(keyOf(f[0])), Ballot: b}
	}
	return items, nil
}

func parseAccept(lines []string) ([]AcceptItem, error) {
	items := make([]AcceptItem, len(lines))
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) < 3 || len(f) > 4 {
			return nil, fmt.Errorf("accept item %q: want KEY BALLOT VALUE [next=BALLOT]", l)
		}
		b, err := parseBallot(f[1])
		if err != nil {
			return nil, err
		}
		v, has, err := parseValue(f[2])
		if err != nil {
			return nil, err
		}
		items[i] = AcceptItem{Key: []byte(keyOf(f[0])), Ballot: b, Value: v, HasValue: has}
		if len(f) == 4 {
			n, ok := strings.CutPrefix(f[3], "next=")
			if !ok {
				return nil, fmt.Errorf("accept item %q: want next=BALLOT", l)
			}
			if items[i].Next, err = parseBallot(n); err != nil {
				return nil, err
			}
		}
	}
	return items, nil
}

// keyOf turns the script's placeholder "-" into the empty key.
func keyOf(s string) string {
	if s == "-" {
		return ""
	}
	return s
}
