package apiserver

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cloudbox/cloudbox/store"
)

// metrics are the API server's Prometheus metrics, in a registry of their own so
// that several servers in one test process do not collide.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	watchers prometheus.Gauge
	// watchersByUser tells the master's own streams (user admin) from its nodes'
	// (system:node).
	watchersByUser *prometheus.GaugeVec
}

func newMetrics(st store.Store) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cloudbox_apiserver_requests_total",
			Help: "API requests by verb, resource and HTTP code.",
		}, []string{"verb", "resource", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cloudbox_apiserver_request_duration_seconds",
			Help:    "API request latency by verb and resource (watches excluded).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"verb", "resource"}),
		watchers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cloudbox_apiserver_watchers",
			Help: "Open watch streams.",
		}),
		watchersByUser: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cloudbox_apiserver_watchers_by_user",
			Help: "Open watch streams by the user that opened them.",
		}, []string{"user"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.watchers, m.watchersByUser, storeCollector{st},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observe(verb, resource string, code int, d time.Duration) {
	m.requests.WithLabelValues(verb, resource, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(verb, resource).Observe(d.Seconds())
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// storeCollector reads the store's sizes at scrape time.
type storeCollector struct{ st store.Store }

var (
	storeObjectsDesc   = prometheus.NewDesc("cloudbox_store_objects", "Objects stored, by resource.", []string{"resource"}, nil)
	storeRevisionDesc  = prometheus.NewDesc("cloudbox_store_revision", "The store's current revision.", nil, nil)
	storeCompactedDesc = prometheus.NewDesc("cloudbox_store_compacted_revision", "The oldest revision a watch may resume from.", nil, nil)
	storeBytesDesc     = prometheus.NewDesc("cloudbox_store_file_bytes", "Size of the store's file.", nil, nil)
)

func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- storeObjectsDesc
	ch <- storeRevisionDesc
	ch <- storeCompactedDesc
	ch <- storeBytesDesc
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.st.Stats()
	for res, n := range st.Objects {
		ch <- prometheus.MustNewConstMetric(storeObjectsDesc, prometheus.GaugeValue, float64(n), res)
	}
	ch <- prometheus.MustNewConstMetric(storeRevisionDesc, prometheus.GaugeValue, float64(st.Revision))
	ch <- prometheus.MustNewConstMetric(storeCompactedDesc, prometheus.GaugeValue, float64(st.CompactedRevision))
	ch <- prometheus.MustNewConstMetric(storeBytesDesc, prometheus.GaugeValue, float64(st.FileBytes))
}
