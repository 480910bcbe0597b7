package scheduler

import (
	"fmt"
	"slices"
	"strings"
)

// Strategy chooses among the nodes a pod fits on. The zero value is Spread.
type Strategy int

// The strategies, Docker Swarm's three.
const (
	// Spread prefers the node left with the most free resources: the lowest requested
	// fraction after placement, averaged over CPU and memory; ties go to the node with
	// fewer pods, then to the first name.
	Spread Strategy = iota
	// Binpack prefers the node left fullest: the highest requested fraction after
	// placement, so that whole nodes stay free; ties go to the node with more pods,
	// then to the first name.
	Binpack
	// Random picks uniformly among the nodes the pod fits on.
	Random
)

var strategyNames = []string{Spread: "spread", Binpack: "binpack", Random: "random"}

// String returns the strategy's name as ParseStrategy accepts it.
func (s Strategy) String() string {
	if s < 0 || int(s) >= len(strategyNames) {
		return fmt.Sprintf("Strategy(%d)", int(s))
	}
	return strategyNames[s]
}

// ParseStrategy returns the strategy named name, in any case; "" means Spread.
func ParseStrategy(name string) (Strategy, error) {
	if name == "" {
		return Spread, nil
	}
	if i := slices.Index(strategyNames, strings.ToLower(name)); i >= 0 {
		return Strategy(i), nil
	}
	return 0, fmt.Errorf("unknown scheduling strategy %q: valid strategies are %s", name, strings.Join(strategyNames, ", "))
}

// scoreEpsilon absorbs float rounding, so that equal fractions reached by different
// arithmetic count as a tie and the tie-breaks decide.
const scoreEpsilon = 1e-9

// requested is the fraction of n's CPU and memory that would be requested with the pod
// placed, averaged over the two. A resource the node does not offer counts as full
// when anything asks for it and as empty otherwise.
func (n *nodeInfo) requested() float64 {
	return (fraction(n.cpu, n.allocCPU) + fraction(n.mem, n.allocMem)) / 2
}

func fraction(used, alloc int64) float64 {
	if alloc <= 0 {
		if used > 0 {
			return 1
		}
		return 0
	}
	return float64(used) / float64(alloc)
}

// pick returns the name of the node the strategy prefers among feasible, which is not
// empty. s.mu must be held (Random uses s.rand).
func (s *Scheduler) pick(feasible []nodeInfo) string {
	if s.strategy == Random {
		// Sort so that a seeded generator picks the same node whatever order the View
		// lists nodes in.
		names := make([]string, len(feasible))
		for i := range feasible {
			names[i] = feasible[i].name
		}
		slices.Sort(names)
		return names[s.rand.IntN(len(names))]
	}
	best := &feasible[0]
	score := best.requested()
	for i := 1; i < len(feasible); i++ {
		n := &feasible[i]
		sc := n.requested()
		if s.better(n, sc, best, score) {
			best, score = n, sc
		}
	}
	return best.name
}

// better reports whether node a, scoring sa, beats node b, scoring sb.
func (s *Scheduler) better(a *nodeInfo, sa float64, b *nodeInfo, sb float64) bool {
	fuller := s.strategy == Binpack
	switch {
	case sa < sb-scoreEpsilon:
		return !fuller
	case sa > sb+scoreEpsilon:
		return fuller
	case a.pods != b.pods:
		return (a.pods < b.pods) != fuller
	}
	return a.name < b.name
}
