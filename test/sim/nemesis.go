package sim

import "github.com/kshaka-io/kshaka/membership"

// nemesis injects one fault and schedules the next.
func (w *world) nemesis() {
	n := &w.opts.Nemesis
	if w.now >= w.opts.Duration {
		return
	}
	w.after(w.between(n.Every/2, n.Every*3/2), w.nemesis)
	weights := []float64{n.Crash, n.Partition, n.OneWay, n.OperatorCut, n.Pause, n.OperatorCrash, n.ProposerCrash, n.DiskLoss, n.SlowLink, n.Straddle}
	total := 0.0
	for _, x := range weights {
		total += x
	}
	if total == 0 {
		return
	}
	x := w.rng.Float64() * total
	pick := 0
	for pick < len(weights)-1 && x >= weights[pick] {
		x -= weights[pick]
		pick++
	}
	down := w.between(n.MinDown, n.MaxDown)
	window := w.between(n.MinWindow, n.MaxWindow)
	switch pick {
	case 0:
		if a := w.randomAcceptor(); a != nil && a.up {
			a.crash()
			w.after(down, a.restart)
		}
	case 1:
		x := w.randomNode()
		w.cuts = append(w.cuts, cut{from: set(x), to: set("*"), until: w.now + window},
			cut{from: set("*"), to: set(x), until: w.now + window})
		w.note("isolate "+x, uint64(window))
	case 2:
		from, to := w.randomNode(), w.randomNode()
		w.cuts = append(w.cuts, cut{from: set(from), to: set(to), until: w.now + window})
		w.note("cut "+from+">"+to, uint64(window))
	case 3:
		// The operator cannot reach one acceptor: its epoch lags.
		if a := w.randomAcceptor(); a != nil {
			w.cuts = append(w.cuts, cut{from: set(opName), to: set(a.name), until: w.now + window})
			w.note("cut operator>"+a.name, uint64(window))
		}
	case 4:
		p := w.proposers[w.rng.IntN(len(w.proposers))]
		p.pausedUntil = w.now + window
		w.note("pause "+p.name, uint64(window))
	case 5:
		if w.op.up && w.op.busy() {
			w.op.crash(down)
		}
	case 6:
		if p := w.proposers[w.rng.IntN(len(w.proposers))]; p.up {
			p.crash(down)
		}
	case 7:
		w.diskLoss(down)
	case 8:
		// A proposer's requests to one acceptor crawl: its accepts
		// land there long after the others, across epoch switches.
		p := w.proposers[w.rng.IntN(len(w.proposers))]
		if a := w.randomAcceptor(); a != nil {
			d := w.between(n.MinWindow, n.MaxWindow)
			w.slow = append(w.slow, slowLink{from: p.name, to: a.name, delay: d, until: w.now + window})
			w.note("slow "+p.name+">"+a.name, uint64(d), uint64(window))
		}
	case 9:
		if a := w.randomAcceptor(); a != nil {
			w.straddle(w.proposers[w.rng.IntN(len(w.proposers))], a, window)
		}
	}
}

func set(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

func (w *world) randomAcceptor() *acceptor {
	var live []*acceptor
	for _, a := range w.acceptors {
		if !a.deleted {
			live = append(live, a)
		}
	}
	if len(live) == 0 {
		return nil
	}
	return live[w.rng.IntN(len(live))]
}

func (w *world) randomNode() string {
	switch x := w.rng.IntN(10); {
	case x < 6:
		if a := w.randomAcceptor(); a != nil {
			return a.name
		}
	case x < 9:
		return w.proposers[w.rng.IntN(len(w.proposers))].name
	}
	return opName
}

// diskLoss wipes one member's disk, but only while no other member is
// retired and waiting for its replacement: two lost disks at once exceed
// what a majority quorum tolerates, which is not a protocol bug.
func (w *world) diskLoss(down int64) {
	if w.opts.Faults.QuorumOfOne {
		return
	}
	for _, c := range w.op.inPlay() {
		for _, m := range c.Members {
			if w.op.isRetired(m.Incarnation) {
				return
			}
			if a := w.byName[m.ID]; a != nil && a.incarnation != m.Incarnation {
				return // lost, not yet noticed
			}
		}
	}
	c := w.op.current()
	m := c.Members[w.rng.IntN(len(c.Members))]
	a := w.byName[m.ID]
	if a == nil || a.deleted {
		return
	}
	a.loseDisk()
	w.after(down, a.restart)
}

// changes asks for a membership change now and then, as a person editing
// the cluster's spec would: add a new acceptor or remove a member.
func (w *world) changes() {
	if w.now < w.opts.Duration {
		w.after(w.between(w.opts.ChangeEvery/2, w.opts.ChangeEvery*3/2), w.changes)
	}
	if w.op.busy() || w.now >= w.opts.Duration {
		return
	}
	cur := w.op.current()
	n := len(cur.Members)
	if n < w.opts.MaxMembers && (n <= w.opts.MinMembers || w.rng.IntN(2) == 0) {
		w.op.wantAdd(w.addAcceptor().name)
		return
	}
	w.op.wantRemove(cur.Members[w.rng.IntN(n)].ID)
}

// straddle sets up operations that straddle an epoch switch: one acceptor
// the operator cannot reach (its epoch lags) and a proposer whose requests
// reach it late — after the rescan passed — but within the proposer's
// timeout, so the operation can still succeed with its vote.
func (w *world) straddle(p *proposer, a *acceptor, window int64) {
	d := w.between(10, max(10, w.opts.Timeout-20))
	w.slow = append(w.slow, slowLink{from: p.name, to: a.name, delay: d, until: w.now + window})
	w.cuts = append(w.cuts, cut{from: set(opName), to: set(a.name), until: w.now + window + d})
	w.note("straddle "+p.name+">"+a.name, uint64(d), uint64(window))
}

// straddleAtChange, with Options.StraddleChanges, starts straddles on one
// member of the joint prepare set for every proposer, as the operator
// starts installing the joint configuration.
func (w *world) straddleAtChange(joint membership.Config) {
	if !w.opts.StraddleChanges || w.now >= w.opts.Duration {
		return
	}
	ps := joint.PrepareSet()
	i := w.rng.IntN(len(ps))
	a := w.byName[ps[i].ID]
	window := w.between(w.opts.Nemesis.MinWindow, w.opts.Nemesis.MaxWindow)
	for _, p := range w.proposers {
		w.straddle(p, a, window)
	}
	// Another member switches a little late: accepts sent just before
	// the switch land there, but not on the members that switched first.
	b := w.byName[ps[(i+1+w.rng.IntN(len(ps)-1))%len(ps)].ID]
	d := w.between(3, 20)
	w.slow = append(w.slow, slowLink{from: opName, to: b.name, delay: d, until: w.now + 2*d})
}
