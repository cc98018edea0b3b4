package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sluice-project/sluice/internal/query/cli"
)

func queryCmd() *cobra.Command {
	var cfgPath, httpAddr, lakeArg, file, format, token, user, password string
	var maxRows int
	fk := flagKeys{"data-dir": "data_dir"}
	cmd := &cobra.Command{
		Use:   `query [flags] "SELECT …"`,
		Short: "Run one SQL query against a running sluice, or directly on the lake it wrote",
		Long: "Run one SQL query (DuckDB's dialect) over the views readings, raw, quarantine, latest, sensors\n" +
			"and registry_versions. By default it asks the running sluice (http.listen), which also sees the\n" +
			"readings not yet committed; when none answers, or with --lake or --data-dir, it reads the lake's\n" +
			"committed files itself.",
		Example: `  sluice query "SELECT * FROM latest"
  sluice query --data-dir ./sluice-data --format csv "SELECT * FROM readings WHERE date = current_date" > today.csv
  sluice query --format parquet -f minute-means.sql > means.parquet`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sql, err := querySQL(args, file)
			if err != nil {
				return errConfig{err}
			}
			cfg, err := load(cfgPath, fk, cmd)
			if err != nil {
				return err
			}
			if err := cfg.Resolve(); err != nil {
				return errConfig{err}
			}
			o := cli.Options{SQL: sql, Format: format, MaxRows: maxRows, Config: cfg.Query, LakeURL: cfg.Lake.URL,
				HTTP: cfg.HTTP.Listen, Token: cfg.HTTP.Token, Username: cfg.HTTP.Username, Password: cfg.HTTP.Password}
			if cfg.HTTP.TLSCert != "" {
				o.HTTP = "https://" + o.HTTP
			}
			f := cmd.Flags()
			if f.Changed("http") {
				o.HTTP, o.Explicit = httpAddr, true
			}
			if f.Changed("token") {
				o.Token = token
			}
			if f.Changed("user") {
				o.Username, o.Password = user, password
			}
			if f.Changed("lake") {
				o.LakeURL, o.Direct = lakeURL(lakeArg), true
			}
			if f.Changed("data-dir") {
				o.Direct = true
			}
			if o.HTTP == "" && !o.Direct {
				o.Direct = true
			}
			ctx, cancel := signalContext()
			defer cancel()
			return cli.Run(ctx, o, os.Stdout, os.Stderr)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&cfgPath, "config", "c", "", "the configuration sluice run uses (for http.listen, its credentials, data_dir and lake.url)")
	fl.StringVar(&httpAddr, "http", "", "address or URL of the running sluice (default: http.listen)")
	fl.StringVar(&lakeArg, "lake", "", "read this lake directly: file:///path or a directory")
	fl.String("data-dir", "", "read the lake of this data directory directly (the --data-dir of sluice run)")
	fl.StringVarP(&file, "file", "f", "", "read the SQL from this file (- for standard input)")
	fl.StringVar(&format, "format", "table", "table, csv, json, ndjson, parquet or arrow")
	fl.IntVar(&maxRows, "max-rows", 0, "return at most this many rows (default: the server's query.max_rows)")
	fl.StringVar(&token, "token", "", "bearer token for the HTTP API (default: http.token)")
	fl.StringVar(&user, "user", "", "basic-auth user for the HTTP API (default: http.username)")
	fl.StringVar(&password, "password", "", "basic-auth password for the HTTP API")
	return cmd
}

func querySQL(args []string, file string) (string, error) {
	switch {
	case file == "-":
		b, err := io.ReadAll(os.Stdin)
		return string(b), err
	case file != "":
		b, err := os.ReadFile(file)
		return string(b), err
	case len(args) == 1 && strings.TrimSpace(args[0]) != "":
		return args[0], nil
	}
	return "", fmt.Errorf(`give the SQL as an argument (sluice query "SELECT …") or with -f FILE`)
}

// lakeURL turns a directory into a file:// URL; URLs pass through.
func lakeURL(s string) string {
	if strings.Contains(s, "://") {
		return s
	}
	abs, err := filepath.Abs(s)
	if err != nil {
		return s
	}
	return "file://" + filepath.ToSlash(abs)
}
