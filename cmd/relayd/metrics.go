package main

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"liaison/cluster"
	"liaison/relay"
)

// metrics is the node's Prometheus registry. The relay and the cluster keep
// their own counters; this collector reads them at scrape time, and the
// histograms are fed through cluster.Metrics.
type metrics struct {
	reg     *prometheus.Registry
	commit  prometheus.Histogram
	perEnt  prometheus.Histogram
	logApp  prometheus.Histogram
	relay   *relay.Server
	cluster *cluster.Node

	conns, subs, queue, delivered, lagged, badFrames *prometheus.Desc
	publishes, authFailures, unbound, refused        *prometheus.Desc
	limits                                           *prometheus.Desc
	raftState, term, commitIdx, appliedIdx, lastIdx  *prometheus.Desc
	entries, batched, ready                          *prometheus.Desc
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.commit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "liaison_commit_seconds",
		Help:    "Time from raft Apply to the FSM's answer for each Raft entry this node committed as leader.",
		Buckets: prometheus.ExponentialBuckets(0.00025, 2, 14),
	})
	m.perEnt = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "liaison_messages_per_entry",
		Help:    "Publishes packed into each Raft entry this node committed as leader (group commit).",
		Buckets: prometheus.ExponentialBuckets(1, 2, 12),
	})
	m.logApp = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "liaison_raft_log_append_seconds",
		Help: "Time each append to this node's Raft log took, fsync included (leader and follower; " +
			"a publish waits for the leader's and then a follower's).",
		Buckets: prometheus.ExponentialBuckets(0.0000625, 2, 16),
	})
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	m.conns = d("liaison_connections", "Open client connections.")
	m.subs = d("liaison_subscriptions", "Open subscriptions.")
	m.queue = d("liaison_outbound_queue_bytes", "Bytes queued for clients, all connections.")
	m.delivered = d("liaison_deliveries_total", "Entries delivered to subscribers.")
	m.lagged = d("liaison_slow_consumer_total", "Live subscriptions switched to reading from the log because the client was not keeping up.")
	m.badFrames = d("liaison_bad_frames_total", "Connections closed for a malformed frame.")
	m.publishes = d("liaison_publishes_total", "Publishes answered, by result (ok, dup, or the error code).", "result")
	m.authFailures = d("liaison_auth_failures_total", "Refused handshakes by reason.", "reason")
	m.unbound = d("liaison_unbound_logins_total", "Logins on TLS connections whose signature did not cover the TLS channel (browsers).")
	m.refused = d("liaison_refused_total", "Requests refused by access control, by reason.", "reason")
	m.limits = d("liaison_limit_events_total", "Times a connection limit was enforced, by limit.", "limit")
	m.raftState = d("liaison_raft_state", "1 for this node's current Raft state.", "state")
	m.term = d("liaison_raft_term", "Current Raft term.")
	m.commitIdx = d("liaison_raft_commit_index", "Raft commit index known to this node.")
	m.appliedIdx = d("liaison_raft_applied_index", "Raft index applied on this node.")
	m.lastIdx = d("liaison_raft_last_index", "Last index in this node's Raft log.")
	m.entries = d("liaison_raft_entries_built_total", "Raft entries this node built as leader.")
	m.batched = d("liaison_messages_batched_total", "Publishes packed into those entries.")
	m.ready = d("liaison_ready", "1 when the node serves clients (in the cluster, knows a leader, caught up).")
	m.reg.MustRegister(m.commit, m.perEnt, m.logApp, m,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveCommit implements cluster.Metrics.
func (m *metrics) ObserveCommit(messages int, latency time.Duration) {
	m.commit.Observe(latency.Seconds())
	m.perEnt.Observe(float64(messages))
}

// ObserveLogAppend implements cluster.Metrics.
func (m *metrics) ObserveLogAppend(_ int, latency time.Duration) {
	m.logApp.Observe(latency.Seconds())
}

// attach gives the collector the node's parts once they exist.
func (m *metrics) attach(r *relay.Server, c *cluster.Node) { m.relay, m.cluster = r, c }

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.conns, m.subs, m.queue, m.delivered, m.lagged, m.badFrames, m.publishes,
		m.authFailures, m.unbound, m.refused, m.limits, m.raftState, m.term, m.commitIdx, m.appliedIdx, m.lastIdx, m.entries, m.batched, m.ready} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	if m.relay == nil || m.cluster == nil {
		return
	}
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	c := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	rs := m.relay.Stats()
	g(m.conns, float64(rs.Conns))
	g(m.subs, float64(rs.Subscriptions))
	g(m.queue, float64(rs.QueueBytes))
	c(m.delivered, float64(rs.Delivered))
	c(m.lagged, float64(rs.Lagged))
	c(m.badFrames, float64(rs.BadFrames))
	for k, v := range rs.Publishes {
		c(m.publishes, float64(v), k)
	}
	for k, v := range rs.AuthFailures {
		c(m.authFailures, float64(v), k)
	}
	c(m.unbound, float64(rs.UnboundLogins))
	for k, v := range rs.Refused {
		c(m.refused, float64(v), k)
	}
	for k, v := range rs.Limits {
		c(m.limits, float64(v), k)
	}
	st := m.cluster.Status()
	for _, s := range []string{"Follower", "Candidate", "Leader", "Shutdown"} {
		v := 0.0
		if st.State == s {
			v = 1
		}
		g(m.raftState, v, s)
	}
	g(m.term, float64(st.Term))
	g(m.commitIdx, float64(st.CommitIndex))
	g(m.appliedIdx, float64(st.AppliedIndex))
	g(m.lastIdx, float64(st.LastIndex))
	c(m.entries, float64(st.Entries))
	c(m.batched, float64(st.Messages))
	ready := 0.0
	if m.cluster.Ready() == nil {
		ready = 1
	}
	g(m.ready, ready)
}
