package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/eventflow/eventflow/schema/migrations"
	"github.com/eventflow/eventflow/schema/store"
)

// Execute runs the eventflow command line: args without the program name,
// environ as os.Environ gives it. Logs go to stdout.
func Execute(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	root := &cobra.Command{
		Use:   "eventflow",
		Short: "eventflow takes events over HTTP and processes them reliably",
		Long: `eventflow takes events from other services over HTTP, stores them in Postgres
and processes each at least once, recording it exactly once.

Configuration comes from the environment (and a .env file); see the README.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetContext(ctx)

	load := func() (Config, error) { return LoadConfig(environ, ".env") }
	runRoles := func(roles Roles) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			cfg, err := load()
			if err != nil {
				return err
			}
			if cfg.Transport == TransportMemory && !(roles.API && roles.Worker) {
				return errors.New("EVENTFLOW_TRANSPORT=memory carries events inside one process: use serve (or dev), not api or worker")
			}
			return run(cmd.Context(), cfg, roles, NewLogger(cfg, stdout))
		}
	}
	root.AddCommand(
		&cobra.Command{
			Use:   "serve",
			Short: "Run the API and the worker in one process",
			Args:  cobra.NoArgs,
			RunE:  runRoles(Roles{API: true, Worker: true}),
		},
		&cobra.Command{
			Use:   "api",
			Short: "Run the HTTP API and ingest only",
			Args:  cobra.NoArgs,
			RunE:  runRoles(Roles{API: true}),
		},
		&cobra.Command{
			Use:   "worker",
			Short: "Run the process handler only",
			Args:  cobra.NoArgs,
			RunE:  runRoles(Roles{Worker: true}),
		},
		&cobra.Command{
			Use:   "dev",
			Short: "Run everything in one process in memory: no Postgres, no Redis, nothing kept",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				cfg, err := readConfig(environ, ".env")
				if err != nil {
					return err
				}
				cfg.Dev, cfg.Transport, cfg.AutoMigrate = true, TransportMemory, false
				if err := cfg.Validate(); err != nil {
					return err
				}
				logger := NewLogger(cfg, stdout)
				fmt.Fprint(stderr, devBanner)
				logger.Warn("DEV MODE: in-memory transport and store; no Postgres, no Redis; every event is lost when the process stops")
				return run(cmd.Context(), cfg, Roles{API: true, Worker: true}, logger)
			},
		},
		&cobra.Command{
			Use:   "migrate",
			Short: "Apply pending SQL migrations (idempotent; safe from several replicas at once)",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				cfg, err := load()
				if err != nil {
					return err
				}
				logger := NewLogger(cfg, stdout)
				if err := migrations.EnsureDatabase(cmd.Context(), cfg.DatabaseURL, logger); err != nil {
					return fmt.Errorf("connect to Postgres (DATABASE_URL): %w", err)
				}
				pg, err := store.OpenPostgres(store.PostgresConfig{URL: cfg.DatabaseURL, MaxConns: 2})
				if err != nil {
					return err
				}
				defer pg.Close()
				n, err := migrations.Up(cmd.Context(), pg.DB().DB, logger)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.ErrOrStderr(), "%d migrations applied\n", n)
				return err
			},
		},
	)
	root.AddCommand(newDLQCommand(load, stdout, stderr), newProduceCommand(stdout), newBenchCommand(stdout, stderr))
	root.AddCommand(&cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 if the eventflow process on this host answers /healthz (for container health checks)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := load()
			if err != nil {
				return err
			}
			return healthcheck(cmd.Context(), cfg.MetricsAddr)
		},
	})
	return root.ExecuteContext(ctx)
}

func run(ctx context.Context, cfg Config, roles Roles, logger *slog.Logger) error {
	a, err := New(ctx, cfg, roles, logger)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

const devBanner = `
  ┌──────────────────────────────────────────────────────────────────┐
  │  eventflow DEV MODE                                              │
  │  In-memory transport and store: no Postgres, no Redis.           │
  │  NOTHING IS KEPT — every event is gone when this process stops.  │
  │  For anything real, run "eventflow serve".                       │
  └──────────────────────────────────────────────────────────────────┘

`

// healthcheck asks the local metrics server's /healthz, which every role
// serves.
func healthcheck(ctx context.Context, metricsAddr string) error {
	host, port, err := net.SplitHostPort(metricsAddr)
	if err != nil {
		return fmt.Errorf("EVENTFLOW_METRICS_ADDR %q: %w", metricsAddr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: /healthz answered %s", res.Status)
	}
	return nil
}
