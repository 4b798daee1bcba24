// Command relayd runs one Liaison relay node: a Raft cluster member that
// stores every operation's encrypted log and serves clients over WebSocket.
//
// With no flags it starts a one-node cluster with its data in ./liaison-data
// and serves clients on 127.0.0.1:7400. See `relayd -h`.
package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"liaison/clients/web"
	"liaison/cluster"
	"liaison/cluster/pki"
	"liaison/relay"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr))
}

func run(ctx context.Context, args []string, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) || errors.Is(err, errPrinted) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "relayd: %v\n", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	n, err := start(cfg, log)
	if err != nil {
		log.Error("relayd failed to start", "err", err)
		if errors.Is(err, cluster.ErrCorrupt) {
			log.Error("a data file is damaged (corrupt); this node will not serve from it. Move its data dir aside and start it empty with join, to resync from the other nodes, or restore a backup", "data_dir", cfg.DataDir)
		}
		return 1
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down", "reason", context.Cause(ctx))
	case err := <-n.httpErr:
		log.Error("client listener failed", "err", err)
	case <-n.cluster.Fatal():
		log.Error("store failed; stopping so that a restart can replay the raft log")
	}
	if err := n.close(); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// node is a running relayd: the cluster member, the relay and the HTTP
// server in front of it.
type node struct {
	log     *slog.Logger
	cluster *cluster.Node
	relay   *relay.Server
	http    *http.Server
	addr    net.Addr
	httpErr chan error
}

func start(cfg config, log *slog.Logger) (*node, error) {
	id, err := resolveNodeID(cfg.DataDir, cfg.NodeID)
	if err != nil {
		return nil, err
	}
	log = log.With("node", id)
	if cfg.Restore != "" {
		if err := restoreBackup(cfg.DataDir, cfg.Restore, log); err != nil {
			return nil, err
		}
		log.Info("restored backup; starting a new cluster from it", "backup", cfg.Restore)
	}
	var nodeTLS, clientTLS *tls.Config
	if cfg.TLSCert != "" {
		if nodeTLS, err = pki.LoadNodeTLS(cfg.TLSCert, cfg.TLSKey, cfg.TLSCA); err != nil {
			return nil, fmt.Errorf("node TLS: %w", err)
		}
		if cfg.ClientTLS {
			if clientTLS, err = pki.LoadServerTLS(cfg.TLSCert, cfg.TLSKey, cfg.TLSCA); err != nil {
				return nil, fmt.Errorf("client TLS: %w", err)
			}
		}
	}
	met := newMetrics()
	retention, _ := cfg.retention() // validated
	retentionInterval, _ := time.ParseDuration(cfg.RetentionInterval)
	cn, err := cluster.Open(cluster.Config{
		Retention:         retention,
		RetentionInterval: retentionInterval,
		Metrics:           met,
		TLS:               nodeTLS,
		NodeID:            id,
		DataDir:           cfg.DataDir,
		RaftBind:          cfg.RaftListen,
		RaftAdvertise:     cfg.Advertise,
		DialSource:        cfg.RaftSource,
		Bootstrap:         len(cfg.Join) == 0,
		Logger:            log,
		ElectionTimeout:   cfg.electionTimeout,
		FSMSync:           cfg.FSMSync,
		CommitTimeout:     cfg.CommitTimeout,
	})
	if err != nil {
		return nil, err
	}
	setupAdmins(cfg, cn, log)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		cn.Close()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	ln = relay.BatchListener(ln)
	scheme := "http"
	if clientTLS != nil {
		ln = tls.NewListener(ln, clientTLS)
		scheme = "https"
	}
	rcfg := cfg.relayConfig(cfg.relay)
	if rcfg.OpenOps {
		log.Warn("open_ops is on: any authenticated client may use operations that have no roster (for tests and benchmarks only)")
	}
	rcfg.NodeID = id
	rcfg.Logger = log.With("component", "relay")
	rcfg.Peers = cn // presence reports of the other nodes, over the cluster's gossip
	rs := relay.New(clusterLog{cn}, rcfg)
	cn.SetGossipSource(rs.Gossip)
	routes := http.NewServeMux()
	routes.Handle("/", rs.Handler())
	webClient := web.Handler()
	routes.Handle("GET /{$}", webClient)
	routes.Handle("GET /web/", webClient)
	allow := loopbackOnly
	if clientTLS != nil {
		allow = adminCertificate
	}
	routes.Handle("/cluster/", cn.AdminHandler(allow))
	met.attach(rs, cn)
	routes.Handle("GET /metrics", met.handler())
	if cfg.Pprof {
		routes.Handle("/debug/pprof/", pprofHandler())
	}
	n := &node{
		log:     log,
		cluster: cn,
		relay:   rs,
		addr:    ln.Addr(),
		httpErr: make(chan error, 1),
		http: &http.Server{
			Handler:           routes,
			ReadHeaderTimeout: cmp.Or(cfg.ReadHeaderTimeout, defaultReadHeaderTimeout),
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
	}
	go func() {
		if err := n.http.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			n.httpErr <- err
		}
	}()
	ws := map[string]string{"http": "ws", "https": "wss"}[scheme]
	log.Info("relayd listening", "clients", scheme+"://"+ln.Addr().String(), "ws", ws+"://"+ln.Addr().String()+"/ws",
		"raft", cfg.RaftListen, "node_tls", nodeTLS != nil, "data_dir", cfg.DataDir)
	if len(cfg.Join) > 0 && !cn.HadState() {
		if err := join(cfg, cn, log); err != nil {
			n.close()
			return nil, err
		}
	}
	return n, nil
}

// close hands leadership to another node if it can, stops accepting
// clients, closes client connections with 1001 so they reconnect elsewhere,
// then stops the cluster member.
func (n *node) close() error {
	if err := n.cluster.TransferLeadership(); err != nil {
		n.log.Warn("leadership transfer before shutdown failed", "err", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := []error{n.http.Shutdown(ctx), n.relay.Close(), n.cluster.Close()}
	return errors.Join(errs...)
}

func restoreBackup(dataDir, file string, log *slog.Logger) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("--restore: %w", err)
	}
	defer f.Close()
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	start := time.Now()
	pr := &progressReader{r: f, every: 64 << 20, report: func(n int64) {
		log.Info("restoring backup", "copied_bytes", n, "total_bytes", size)
	}}
	if err := cluster.PrepareRestore(dataDir, pr); err != nil {
		return err
	}
	log.Info("backup installed", "bytes", pr.n, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// progressReader calls report every `every` bytes read.
type progressReader struct {
	r      io.Reader
	every  int64
	n      int64
	next   int64
	report func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.n >= p.next+p.every {
		p.next = p.n
		p.report(p.n)
	}
	return n, err
}
