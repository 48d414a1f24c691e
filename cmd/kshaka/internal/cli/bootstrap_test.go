package cli

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/kshaka-io/kshaka/membership"
)

func TestPlanBootstrap(t *testing.T) {
	obs := func(incs ...uint64) []observed {
		var out []observed
		for i, inc := range incs {
			out = append(out, observed{ID: fmt.Sprintf("a%d", i), Addr: fmt.Sprintf("127.0.0.1:%d", 7400+i),
				Dir: fmt.Sprintf("d/a%d", i), Incarnation: inc})
		}
		return out
	}
	stable := func(o []observed) membership.Config {
		var ms []membership.Member
		for _, x := range o {
			ms = append(ms, membership.Member{ID: x.ID, Addr: x.Addr, Incarnation: x.Incarnation})
		}
		return membership.Stable(1, ms...)
	}
	with := func(o []observed, cfg membership.Config, idx ...int) []observed {
		o = slices.Clone(o)
		for _, i := range idx {
			o[i].Config = cfg
		}
		return o
	}
	three := obs(11, 22, 33)
	cfg3 := stable(three)
	cfg2 := cfg3.Clone()
	cfg2.Epoch = 2

	tests := []struct {
		name      string
		obs       []observed
		want      membership.Config
		fresh     bool
		installOn []int
		errHas    []string
	}{
		{name: "first start", obs: three, want: cfg3, fresh: true, installOn: []int{0, 1, 2}},
		{name: "restart", obs: with(three, cfg3, 0, 1, 2), want: cfg3},
		{name: "restart of an operator's later epoch", obs: with(three, cfg2, 0, 1, 2), want: cfg2},
		{name: "first install interrupted", obs: with(three, cfg3, 0), want: cfg3, installOn: []int{1, 2}},
		{name: "one disk lost", obs: with(obs(11, 99, 33), cfg3, 0, 2),
			errHas: []string{"a1 (d/a1)", "lists incarnation 16, the acceptor now has 63", "rm -rf d", "membership change"}},
		{name: "every disk lost but one", obs: with(obs(44, 55, 33), cfg3, 2),
			errHas: []string{"a0 (d/a0)", "a1 (d/a1)", "rm -rf d"}},
		{name: "disagreeing epochs", obs: append(with(three, cfg3, 0, 1)[:2], with(three, cfg2, 2)[2]),
			errHas: []string{"disagree", "a0 holds configuration epoch 1"}},
		{name: "fewer acceptors than members", obs: with(three, cfg3, 0, 1, 2)[:2],
			errHas: []string{"--acceptors 3"}},
		{name: "other base port", obs: func() []observed {
			o := with(three, cfg3, 0, 1, 2)
			for i := range o {
				o[i].Addr = fmt.Sprintf("127.0.0.1:%d", 9000+i)
			}
			return o
		}(), errHas: []string{"a0 is at 127.0.0.1:7400", "--base-port"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := planBootstrap(tt.obs, "d")
			if len(tt.errHas) > 0 {
				if !errors.Is(err, errDataMismatch) {
					t.Fatalf("err = %v, want errDataMismatch", err)
				}
				for _, s := range tt.errHas {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error does not mention %q:\n%v", s, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !configEqual(plan.Config, tt.want) || plan.Fresh != tt.fresh || !slices.Equal(plan.InstallOn, tt.installOn) {
				t.Errorf("plan = %+v, want config %v fresh %v installOn %v", plan, tt.want, tt.fresh, tt.installOn)
			}
			if err := plan.Config.Validate(); err != nil {
				t.Errorf("planned config invalid: %v", err)
			}
		})
	}
}
