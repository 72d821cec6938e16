package observe

import (
	"github.com/hotmod/hotmod"
	"github.com/prometheus/client_golang/prometheus"
)

// stateCollector reads the registry's module list at each scrape: what
// the registry knows already is not counted twice on the call path.
type stateCollector struct {
	reg *hotmod.Registry

	inFlight, versions, breaker, breakerMethods, abandoned, lingering, shortCircuits,
	processes, restarts, guests, guestMemory *prometheus.Desc
}

func newStateCollector(reg *hotmod.Registry) *stateCollector {
	mv := []string{"module", "version"}
	return &stateCollector{
		reg:      reg,
		inFlight: prometheus.NewDesc(MetricInFlight, "Calls running now in a module version, calls abandoned at their deadline included.", mv, nil),
		versions: prometheus.NewDesc(MetricVersions, "Module versions the registry holds, by state (Failed includes artifacts that failed to load).", []string{"module", "state"}, nil),
		breaker: prometheus.NewDesc(MetricBreakerState,
			"The state of a version's circuit breaker: 1 for its current state (closed, open or half-open), 0 for the others.", []string{"module", "version", "state"}, nil),
		breakerMethods: prometheus.NewDesc(MetricBreakerMethods,
			"Methods of a version whose circuit breaker is open or half-open (the breaker is per method; hotmod_breaker_state is the version's worst).", []string{"module", "version", "state"}, nil),
		abandoned:     prometheus.NewDesc(MetricAbandoned, "Calls that timed out while the module's code ran on (native and builtin).", mv, nil),
		lingering:     prometheus.NewDesc(MetricLingering, "Abandoned calls still running.", mv, nil),
		shortCircuits: prometheus.NewDesc(MetricShortCircuits, "Calls refused by an open circuit breaker.", mv, nil),
		processes:     prometheus.NewDesc(MetricProcesses, "Child processes serving a process module version now.", mv, nil),
		restarts:      prometheus.NewDesc(MetricRestarts, "Children of a process module version restarted after they died.", mv, nil),
		guests:        prometheus.NewDesc(MetricGuests, "Guest instances of a WebAssembly module version (idle, busy or starting).", mv, nil),
		guestMemory:   prometheus.NewDesc(MetricGuestMemory, "Linear memory held by a WebAssembly module version's guests.", mv, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.inFlight, c.versions, c.breaker, c.breakerMethods, c.abandoned, c.lingering,
		c.shortCircuits, c.processes, c.restarts, c.guests, c.guestMemory} {
		ch <- d
	}
}

var breakerStates = []string{"closed", "open", "half-open"}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	type key struct{ module, state string }
	states := map[key]int{}
	for _, m := range c.reg.Modules() {
		name := m.Name
		if name == "" {
			name = "(unknown)" // an artifact that failed before its manifest was read
		}
		states[key{name, m.State.String()}]++
		if m.Name == "" {
			continue
		}
		gauge := func(d *prometheus.Desc, t prometheus.ValueType, v float64) {
			ch <- prometheus.MustNewConstMetric(d, t, v, m.Name, m.Version)
		}
		if m.State == hotmod.StateActive || m.State == hotmod.StateDraining || m.InFlight > 0 {
			gauge(c.inFlight, prometheus.GaugeValue, float64(m.InFlight))
		}
		if g := m.Guard; g != nil {
			gauge(c.abandoned, prometheus.CounterValue, float64(g.Abandoned))
			gauge(c.lingering, prometheus.GaugeValue, float64(g.Lingering))
			gauge(c.shortCircuits, prometheus.CounterValue, float64(g.ShortCircuited))
			if g.Breaker != "" {
				for _, s := range breakerStates {
					v := 0.0
					if s == g.Breaker {
						v = 1
					}
					ch <- prometheus.MustNewConstMetric(c.breaker, prometheus.GaugeValue, v, m.Name, m.Version, s)
				}
				var open, halfOpen float64
				for _, mb := range g.Breakers {
					if mb.State.String() == "open" {
						open++
					} else {
						halfOpen++
					}
				}
				ch <- prometheus.MustNewConstMetric(c.breakerMethods, prometheus.GaugeValue, open, m.Name, m.Version, "open")
				ch <- prometheus.MustNewConstMetric(c.breakerMethods, prometheus.GaugeValue, halfOpen, m.Name, m.Version, "half-open")
			}
		}
		if rt := m.Runtime; rt != nil {
			switch m.Transport {
			case hotmod.Process:
				gauge(c.processes, prometheus.GaugeValue, float64(rt.Processes))
				gauge(c.restarts, prometheus.CounterValue, float64(rt.Restarts))
			case hotmod.Wasm:
				gauge(c.guests, prometheus.GaugeValue, float64(rt.Guests))
				gauge(c.guestMemory, prometheus.GaugeValue, float64(rt.GuestMemoryBytes))
			}
		}
	}
	for k, n := range states {
		ch <- prometheus.MustNewConstMetric(c.versions, prometheus.GaugeValue, float64(n), k.module, k.state)
	}
}
