// Command sluice collects sensor telemetry from MQTT into a data lake without loss. It only parses
// flags and calls internal/app; see the README for what each subcommand does.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sluice-project/sluice/internal/app"
	"github.com/sluice-project/sluice/internal/config"
	_ "github.com/sluice-project/sluice/internal/lake/cloud" // s3://, gs://, azblob:// lakes
	"github.com/sluice-project/sluice/internal/simulate"
)

func main() {
	if err := root().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "sluice:", err)
		os.Exit(exitCode(err))
	}
}

// errConfig marks configuration errors (exit code 2).
type errConfig struct{ error }

func (e errConfig) Unwrap() error { return e.error }

func exitCode(err error) int {
	var ce errConfig
	if errors.As(err, &ce) {
		return 2
	}
	return 1
}

func root() *cobra.Command {
	cmd := &cobra.Command{
		Use:           "sluice",
		Short:         "Collect sensor telemetry from MQTT into a data lake, without loss",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.AddCommand(runCmd(), simulateCmd(), configCmd(), versionCmd(), queryCmd())
	return cmd
}

// flagKeys maps a command's flags to configuration keys; set flags override file and environment.
type flagKeys map[string]string

func (fk flagKeys) overrides(cmd *cobra.Command) []config.Override {
	var out []config.Override
	for flag, key := range fk {
		if f := cmd.Flags().Lookup(flag); f != nil && f.Changed {
			out = append(out, config.Override{Key: key, Value: f.Value.String(), Origin: "flag --" + flag})
		}
	}
	return out
}

func load(path string, fk flagKeys, cmd *cobra.Command) (app.Config, error) {
	cfg := app.DefaultConfig()
	if err := config.Load(path, &cfg, os.Environ(), fk.overrides(cmd)...); err != nil {
		return cfg, errConfig{err}
	}
	return cfg, nil
}

func signalContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		cancel()
		<-sig
		fmt.Fprintln(os.Stderr, "sluice: second signal, exiting now (the log replays what was not committed)")
		os.Exit(130)
	}()
	return ctx, cancel
}

func runCmd() *cobra.Command {
	var cfgPath string
	var simulate bool
	fk := flagKeys{"data-dir": "data_dir", "broker": "mqtt.broker", "mqtt-listen": "broker.listen", "http": "http.listen", "log-level": "logging.level", "log-format": "logging.format"}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run sluice: ingest MQTT (embedded broker by default), write the lake, serve health and metrics",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := load(cfgPath, fk, cmd)
			if err != nil {
				return err
			}
			logger := app.NewLogger(cfg.Logging, os.Stderr)
			for _, name := range config.EnvUnknown(cfg, os.Environ()) {
				logger.Warn("environment variable names no setting; ignored (see `sluice config`)", "var", name)
			}
			ctx, cancel := signalContext()
			defer cancel()
			return app.New(cfg, app.Options{Simulate: simulate}, logger).Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&cfgPath, "config", "c", "", "YAML configuration file (see `sluice config`)")
	f.String("data-dir", "", "directory for the log and the lake (data_dir)")
	f.String("broker", "", "external MQTT broker URL, e.g. mqtt://127.0.0.1:1883 (mqtt.broker); default: run the embedded broker")
	f.String("mqtt-listen", "", "embedded broker address (broker.listen), default 127.0.0.1:1883")
	f.String("http", "", "HTTP address for health, readiness and metrics (http.listen), default 127.0.0.1:8080")
	f.String("log-level", "", "debug, info, warn or error (logging.level)")
	f.String("log-format", "", "text or json (logging.format)")
	f.BoolVar(&simulate, "simulate", false, "also run the sensor simulator against the ingest path")
	return cmd
}

func simulateCmd() *cobra.Command {
	var cfgPath string
	fk := flagKeys{
		"broker": "simulate.broker", "sensors": "simulate.sensors", "fleet": "simulate.fleet",
		"interval": "simulate.interval", "rate": "simulate.rate", "shape": "simulate.shape",
		"topic": "simulate.topic", "qos": "simulate.qos", "connections": "simulate.connections",
		"count": "simulate.count", "duration": "simulate.duration", "seed": "simulate.seed",
		"truth": "simulate.truth", "client-id": "simulate.client_id",
		"spike": "simulate.faults.spike", "stuck": "simulate.faults.stuck", "gap": "simulate.faults.gap",
		"duplicate": "simulate.faults.duplicate", "late": "simulate.faults.late",
		"out-of-order": "simulate.faults.out_of_order", "malformed": "simulate.faults.malformed",
		"log-level": "logging.level", "log-format": "logging.format",
	}
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Publish realistic sensor values (with optional faults) to an MQTT broker",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := load(cfgPath, fk, cmd)
			if err != nil {
				return err
			}
			logger := app.NewLogger(cfg.Logging, os.Stderr)
			ctx, cancel := signalContext()
			defer cancel()
			stats, err := simulate.Run(ctx, cfg.Simulate, logger)
			fmt.Printf("published %d messages in %s: %.0f msg/s\n", stats.Published, stats.Elapsed.Round(1e6), stats.Rate())
			if err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&cfgPath, "config", "c", "", "YAML configuration file; its simulate section applies")
	f.String("broker", "", "MQTT broker URL (default mqtt://127.0.0.1:1883)")
	f.String("sensors", "", "sensors.json in either shape (default: five built-in sensors)")
	f.Int("fleet", 0, "synthesise this many sensors from the file's templates")
	f.Duration("interval", 0, "publish interval per sensor (e.g. 1s)")
	f.Float64("rate", 0, "target total messages per second instead of a per-sensor interval")
	f.String("shape", "", "message shape: nested (default), flat-unix, metric-type, topic-ms")
	f.String("topic", "", "topic template overriding the shape's")
	f.Int("qos", 1, "MQTT QoS, 0 or 1")
	f.Int("connections", 1, "MQTT connections to publish from")
	f.Int64("count", 0, "stop after this many messages")
	f.Duration("duration", 0, "stop after this long")
	f.Int64("seed", 0, "random seed (same seed, same values)")
	f.String("truth", "", "write one NDJSON line per published message (ground truth) to this file")
	f.String("client-id", "", "MQTT client id prefix")
	for _, fault := range []string{"spike", "stuck", "gap", "duplicate", "late", "out-of-order", "malformed"} {
		f.Float64(fault, 0, "probability per message of the "+fault+" fault")
	}
	f.String("log-level", "", "debug, info, warn or error")
	f.String("log-format", "", "text or json")
	return cmd
}

func configCmd() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print every setting with its default, meaning and environment variable",
		Long: "Print every setting as commented YAML: the defaults, or with --config the effective\n" +
			"configuration (file, then SLUICE_* environment variables). Secrets print as \"\".",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := app.DefaultConfig()
			if cfgPath != "" {
				var err error
				if cfg, err = load(cfgPath, nil, cmd); err != nil {
					return err
				}
			}
			fmt.Println("# sluice configuration. Every key can be set in a YAML file (sluice run --config FILE)")
			fmt.Println("# or by the environment variable shown; variables override the file, flags override both.")
			fmt.Println()
			return config.Document(os.Stdout, cfg)
		},
	}
	cmd.Flags().StringVarP(&cfgPath, "config", "c", "", "show the effective configuration of this file")
	cmd.AddCommand(&cobra.Command{
		Use:   "validate FILE",
		Short: "Check a configuration file (and SLUICE_* variables) and report every problem",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := load(args[0], nil, cmd); err != nil {
				return err
			}
			fmt.Printf("%s: ok\n", args[0])
			return nil
		},
	})
	return cmd
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run:   func(cmd *cobra.Command, args []string) { fmt.Println(app.VersionString()) },
	}
}
