package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/eventflow/eventflow/handlers"
	"github.com/eventflow/eventflow/schema/store"
)

// newDLQCommand is `eventflow dlq`: list, show and replay dead letters,
// straight against the store and the transport the configuration names.
// (The same operations are served over HTTP under /v1/dead-letters.)
func newDLQCommand(load func() (Config, error), stdout, stderr io.Writer) *cobra.Command {
	dlq := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect and replay dead letters (failed_events)",
	}
	var (
		types, kinds    []string
		since, until    string
		includeReplayed bool
		limit           int
		output          string
	)
	filterFlags := func(c *cobra.Command) {
		c.Flags().StringSliceVar(&types, "type", nil, "only these event types (repeat or comma-separate)")
		c.Flags().StringSliceVar(&kinds, "kind", nil, "only these error kinds: permanent, retries_exhausted")
		c.Flags().StringVar(&since, "since", "", "failed at or after this time (RFC 3339) or this long ago (e.g. 24h)")
		c.Flags().StringVar(&until, "until", "", "failed before this time (RFC 3339) or this long ago")
	}
	filter := func() (store.DeadLetterFilter, error) {
		f, err := handlers.DeadLetterFilterFromQuery(map[string][]string{"event_type": types, "error_kind": kinds})
		if err != nil {
			return f, err
		}
		if f.FailedFrom, err = parseWhen(since); err != nil {
			return f, fmt.Errorf("--since: %w", err)
		}
		if f.FailedTo, err = parseWhen(until); err != nil {
			return f, fmt.Errorf("--until: %w", err)
		}
		f.IncludeReplayed = includeReplayed
		return f, nil
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List dead letters, oldest failure first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := filter()
			if err != nil {
				return err
			}
			return withTools(cmd.Context(), load, func(a *App) error {
				f.Limit = limit
				rows, err := a.store.ListDeadLetters(cmd.Context(), f)
				if err != nil {
					return err
				}
				total, err := a.store.CountDeadLetters(cmd.Context(), f)
				if err != nil {
					return err
				}
				if output == "json" {
					out := make([]any, len(rows))
					for i, d := range rows {
						out[i] = handlers.DeadLetterJSON(d)
					}
					return json.NewEncoder(stdout).Encode(map[string]any{"total": total, "dead_letters": out})
				}
				tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "EVENT_ID\tTYPE\tKIND\tATTEMPTS\tFAILED_AT\tREPLAYED\tERROR")
				for _, d := range rows {
					replayed := "-"
					if d.ReplayedAt != nil {
						replayed = d.ReplayedAt.Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", d.EventID, d.EventType, d.Kind, d.Attempts,
						d.FailedAt.Format(time.RFC3339), replayed, truncate(d.Error, 80))
				}
				fmt.Fprintf(tw, "\n%d of %d shown\n", len(rows), total)
				return tw.Flush()
			})
		},
	}
	filterFlags(list)
	list.Flags().BoolVar(&includeReplayed, "include-replayed", false, "also list dead letters already replayed")
	list.Flags().IntVar(&limit, "limit", 50, "at most this many")
	list.Flags().StringVarP(&output, "output", "o", "table", "table or json")

	show := &cobra.Command{
		Use:   "show EVENT_ID",
		Short: "Show one dead letter: payload, error, attempts and history",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := uuid.Parse(args[0])
			if err != nil {
				return fmt.Errorf("EVENT_ID: %w", err)
			}
			return withTools(cmd.Context(), load, func(a *App) error {
				d, err := a.store.DeadLetter(cmd.Context(), id)
				if err != nil {
					return err
				}
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(handlers.DeadLetterJSON(d))
			})
		},
	}

	var (
		dryRun bool
		rate   float64
	)
	replay := &cobra.Command{
		Use:   "replay [EVENT_ID]",
		Short: "Publish dead letters again through the normal path (one id, or every one matching the filter)",
		Long: `Publish dead letters again: the events go back on the transport and are
validated and processed like new ones. A success sets replayed_at and writes
processed_events exactly once; a failure updates the dead letter.

With an EVENT_ID, replays that one. Without, replays every pending dead
letter that matches the filter flags (at least one is required; use --all
for every dead letter), at most --rate per second, with a progress bar.
--dry-run prints how many would be replayed.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			all, _ := cmd.Flags().GetBool("all")
			f, err := filter()
			if err != nil {
				return err
			}
			if len(args) == 0 && !all && len(types) == 0 && len(kinds) == 0 && since == "" && until == "" {
				return fmt.Errorf("name an EVENT_ID, a filter (--type, --kind, --since, --until) or --all")
			}
			return withTools(cmd.Context(), load, func(a *App) error {
				r := a.replayer(a.transport.Publisher())
				if len(args) == 1 {
					id, err := uuid.Parse(args[0])
					if err != nil {
						return fmt.Errorf("EVENT_ID: %w", err)
					}
					if dryRun {
						_, err := a.store.DeadLetter(cmd.Context(), id)
						if err == nil {
							fmt.Fprintf(stdout, "would replay 1 dead letter (%s)\n", id)
						}
						return err
					}
					if err := r.ReplayOne(cmd.Context(), id); err != nil {
						return err
					}
					fmt.Fprintf(stdout, "replayed %s\n", id)
					return nil
				}
				var bar *progressbar.ProgressBar
				progress := func(done, total int) {
					if bar == nil {
						bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(stderr),
							progressbar.OptionSetDescription("replaying"), progressbar.OptionShowCount(),
							progressbar.OptionShowIts(), progressbar.OptionSetItsString("events"),
							progressbar.OptionOnCompletion(func() { fmt.Fprintln(stderr) }))
					}
					_ = bar.Set(done)
				}
				res, err := r.ReplayMatching(cmd.Context(), f, dryRun, rate, progress)
				if dryRun {
					fmt.Fprintf(stdout, "would replay %d dead letters\n", res.Matched)
					return err
				}
				fmt.Fprintf(stdout, "replayed %d of %d dead letters\n", res.Replayed, res.Matched)
				for _, fl := range res.Failed {
					fmt.Fprintf(stdout, "  not replayed %s: %s\n", fl.EventID, fl.Error)
				}
				return err
			})
		},
	}
	filterFlags(replay)
	replay.Flags().Bool("all", false, "replay every pending dead letter")
	replay.Flags().BoolVar(&dryRun, "dry-run", false, "only say how many would be replayed")
	replay.Flags().Float64Var(&rate, "rate", 100, "at most this many replays per second (0: no limit)")

	dlq.AddCommand(list, show, replay)
	return dlq
}

// withTools opens the store and the transport for a one-shot tool, runs fn
// and closes them.
func withTools(ctx context.Context, load func() (Config, error), fn func(*App) error) error {
	cfg, err := load()
	if err != nil {
		return err
	}
	if cfg.Transport == TransportMemory {
		return fmt.Errorf("EVENTFLOW_TRANSPORT=memory lives inside the eventflow process: use its HTTP API (/v1/dead-letters) instead")
	}
	cfg.LogLevel = "WARN" // tools print results, not logs
	a, err := New(ctx, cfg, Roles{}, NewLogger(cfg, io.Discard))
	if err != nil {
		return err
	}
	defer a.closeClients()
	return fn(a)
}

// parseWhen reads an RFC 3339 time, or a duration meaning that long ago.
func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration such as 24h", s)
	}
	return t, nil
}

func truncate(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
