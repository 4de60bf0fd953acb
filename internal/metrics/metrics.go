// Package metrics exposes the console's Prometheus metrics from a registry of
// its own (no global registry), served at /metrics.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the console's collectors.
type Metrics struct {
	Registry     *prometheus.Registry
	HTTPRequests *prometheus.CounterVec
	HTTPDuration *prometheus.HistogramVec
	WxPayCalls   *prometheus.CounterVec
	AuditAppends prometheus.Counter
	// InputRefused counts requests refused for their input (too large,
	// not text) before any handler; AnonymousRefused counts refusals of
	// anonymous requests, which are audited at most once per client and
	// interval.
	InputRefused     *prometheus.CounterVec
	AnonymousRefused *prometheus.CounterVec
	SignInThrottled  *prometheus.CounterVec
}

// New registers the collectors on a fresh registry.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "console_http_requests_total",
			Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "console_http_request_duration_seconds",
			Help:    "HTTP request latency by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		WxPayCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "console_wxpay_calls_total",
			Help: "WeChat Pay API calls by endpoint and outcome.",
		}, []string{"endpoint", "outcome"}),
		AuditAppends: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "console_audit_appends_total",
			Help: "Audit entries written by this process.",
		}),
	}
	m.InputRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "console_input_refused_total",
		Help: "Requests refused for their input before any handler, by status.",
	}, []string{"status"})
	m.AnonymousRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "console_anonymous_refused_total",
		Help: "Anonymous requests refused by the route table, by reason.",
	}, []string{"reason"})
	m.SignInThrottled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "console_sign_in_throttled_total",
		Help: "Sign-ins refused by the throttle, by what was locked (username or client).",
	}, []string{"scope"})
	m.Registry.MustRegister(m.HTTPRequests, m.HTTPDuration, m.WxPayCalls, m.AuditAppends,
		m.InputRefused, m.AnonymousRefused, m.SignInThrottled,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}
