package pgwire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/goleak"

	"github.com/sluice-project/sluice/internal/lake"
	"github.com/sluice-project/sluice/internal/query"
	"github.com/sluice-project/sluice/internal/testkit"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"))
}

var day0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC).UnixMicro()

// start serves the PostgreSQL protocol on 127.0.0.1:0 over a lake of 100 readings (10 sensors, one
// reading a second each, from 2026-11-24 10:00 UTC) and returns the host:port and the lake's dir.
func start(t *testing.T, cfg query.PGWireConfig) (string, string) {
	t.Helper()
	lk, u := testkit.TempLake(t)
	testkit.NewCommitter(t, lk, lake.ReadingsSpec()).Commit(t, testkit.Readings(100, 10, day0, 1_000_000, 0), "decoder-p0", 99)
	logger := slog.New(slog.DiscardHandler)
	e, err := query.Open(context.Background(), u, query.DefaultConfig(), query.WithLogger(logger), query.WithSetup(Setup...), query.Static())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	cfg.Listen = "127.0.0.1:0"
	s, err := New(e, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Close(ctx)
	})
	dir, _ := query.LocalLakeDir(u)
	return s.Addr().String(), dir
}

func connect(t *testing.T, addr, userinfo, sslmode string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), fmt.Sprintf("postgres://%s@%s/sluice?sslmode=%s", userinfo, addr, sslmode))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func TestPGXTypesAndParams(t *testing.T) {
	addr, _ := start(t, query.PGWireConfig{})
	c := connect(t, addr, "bi", "disable")
	ctx := context.Background()
	var (
		sensor string
		ts     time.Time
		value  float64
		unit   *string
		flags  []string
		n      int64
		none   *string
	)
	err := c.QueryRow(ctx, "SELECT sensor_id, ts, value, unit, flags, ingest_id, NULL::VARCHAR FROM readings WHERE sensor_id = $1 AND ts > $2 ORDER BY ts LIMIT 1",
		"sensor-003", time.UnixMicro(day0).Add(3*time.Second)).Scan(&sensor, &ts, &value, &unit, &flags, &n, &none)
	if err != nil {
		t.Fatal(err)
	}
	if sensor != "sensor-003" || !ts.Equal(time.UnixMicro(day0).Add(4*time.Second)) || value != 3.004 || unit == nil || *unit != "C" || len(flags) != 0 || n != 43 || none != nil {
		t.Fatalf("got %s %v %v %v %v %d %v", sensor, ts, value, unit, flags, n, none)
	}
	var total float64
	var cnt int64
	if err := c.QueryRow(ctx, "SELECT sum(value), count(*) FROM readings WHERE value > $1", 5.0).Scan(&total, &cnt); err != nil || cnt != 49 || math.Abs(total-345.225) > 1e-9 {
		t.Fatalf("sum/count with a float parameter: %v %d %v", total, cnt, err)
	}
	// A million rows, streamed.
	rows, err := c.Query(ctx, "SELECT range AS i, range / 2.0 AS half FROM range(1000000)")
	if err != nil {
		t.Fatal(err)
	}
	var got, sum int64
	for rows.Next() {
		var i int64
		var half float64
		if err := rows.Scan(&i, &half); err != nil {
			t.Fatal(err)
		}
		got++
		sum += i
	}
	if rows.Err() != nil || got != 1_000_000 || sum != 499999500000 {
		t.Fatalf("million rows: %d rows, sum %d, err %v", got, sum, rows.Err())
	}
	// Errors carry SQLSTATE and position.
	_, err = c.Exec(ctx, "SELECT nope FROM readings")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42601" || !strings.Contains(pe.Message, "nope") || !strings.Contains(pe.Hint, "line 1, column 8") {
		t.Fatalf("unknown column: %#v", err)
	}
	// The connection is still usable.
	if err := c.QueryRow(ctx, "SELECT count(*) FROM readings").Scan(&cnt); err != nil || cnt != 100 {
		t.Fatalf("after an error: %d %v", cnt, err)
	}
}

func TestSessionStatements(t *testing.T) {
	addr, _ := start(t, query.PGWireConfig{})
	c := connect(t, addr, "bi", "disable")
	ctx := context.Background()
	for _, q := range []string{"SET extra_float_digits = 3", "SET application_name = 'PostgreSQL JDBC Driver'", "SET TIME ZONE 'UTC'", "BEGIN", "COMMIT", "-- ping", ""} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Errorf("%q: %v", q, err)
		}
	}
	var v string
	if err := c.QueryRow(ctx, "SHOW server_version_num").Scan(&v); err != nil || v != ServerVersionNum {
		t.Fatalf("SHOW server_version_num = %q, %v", v, err)
	}
	if err := c.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil || !strings.HasPrefix(v, "PostgreSQL 15.0 (sluice; DuckDB v1.5") {
		t.Fatalf("version() = %q, %v", v, err)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
}

func TestEscapesAreRefused(t *testing.T) {
	addr, dir := start(t, query.PGWireConfig{})
	c := connect(t, addr, "bi", "disable")
	for _, esc := range testkit.SQLEscapes {
		if esc.Name == "begin a transaction" {
			continue // accepted as a no-op here: drivers send BEGIN on their own
		}
		t.Run(esc.Name, func(t *testing.T) {
			_, err := c.Exec(context.Background(), esc.Query(dir))
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || !strings.Contains(pe.Message, esc.Want) || (pe.Code != "42501" && pe.Code != "42601") {
				t.Fatalf("%s: %v, want SQLSTATE 42501 saying %q", esc.Query(dir), err, esc.Want)
			}
		})
	}
}

// TestGrafana runs what Grafana's PostgreSQL data source sends: its version and TimescaleDB probes,
// its table and column lists, and a time-series query with $__timeGroup and $__timeFilter expanded.
func TestGrafana(t *testing.T) {
	addr, _ := start(t, query.PGWireConfig{})
	c := connect(t, addr, "grafana", "disable")
	ctx := context.Background()
	var version int64
	if err := c.QueryRow(ctx, "SELECT current_setting('server_version_num')::int/100 as version").Scan(&version); err != nil || version != 1500 {
		t.Fatalf("version probe = %d, %v", version, err)
	}
	rows, err := c.Query(ctx, "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
	if err != nil {
		t.Fatal(err)
	}
	if rows.Next() {
		t.Fatal("timescaledb reported present")
	}
	rows.Close()
	tables := collect(t, c, `SELECT
    CASE WHEN
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )
      THEN quote_ident(table_name)
      ELSE quote_ident(table_schema) || '.' || quote_ident(table_name)
    END AS "table"
    FROM information_schema.tables
    WHERE quote_ident(table_schema) NOT IN ('information_schema',
                             'pg_catalog',
                             '_timescaledb_cache',
                             '_timescaledb_catalog',
                             '_timescaledb_internal',
                             '_timescaledb_config',
                             'timescaledb_information',
                             'timescaledb_experimental')
    ORDER BY CASE WHEN
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          ) THEN 0 ELSE 1 END, 1`)
	if strings.Join(tables, ",") != "latest,quarantine,raw,readings,readings_1m,registry_versions,sensors" {
		t.Fatalf("Grafana's table list = %v", tables)
	}
	cols := collect(t, c, `SELECT quote_ident(column_name) || ' ' || data_type AS "column"
    FROM information_schema.columns
    WHERE
      CASE WHEN array_length(parse_ident('readings'),1) = 2
        THEN quote_ident(table_schema) = (parse_ident('readings'))[1]
          AND quote_ident(table_name) = (parse_ident('readings'))[2]
        ELSE quote_ident(table_name) = 'readings'
          AND
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )
      END`)
	if len(cols) != 9 || cols[2] != "ts TIMESTAMP WITH TIME ZONE" || cols[3] != "value DOUBLE" {
		t.Fatalf("Grafana's column list = %v", cols)
	}
	// $__timeGroupAlias(ts, '10s'), $__timeFilter(ts), as Grafana expands them.
	rows, err = c.Query(ctx, `SELECT floor(extract(epoch from ts)/10)*10 AS "time", sensor_id AS metric, avg(value) AS value
FROM readings
WHERE ts BETWEEN '2026-11-24T10:00:00Z' AND '2026-11-24T10:00:09.999Z'
GROUP BY 1, 2 ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var tm, v float64
		var m string
		if err := rows.Scan(&tm, &m, &v); err != nil {
			t.Fatal(err)
		}
		if tm != float64(day0/1_000_000) {
			t.Fatalf("time bucket %v, want %d", tm, day0/1_000_000)
		}
		n++
	}
	if rows.Err() != nil || n != 10 {
		t.Fatalf("time series: %d series, %v", n, rows.Err())
	}
}

func collect(t *testing.T, c *pgx.Conn, q string) []string {
	t.Helper()
	rows, err := c.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	return out
}

func psql(t *testing.T, conninfo string, args ...string) (string, string, error) {
	t.Helper()
	if _, err := exec.LookPath("psql"); err != nil {
		t.Skip("psql is not installed")
	}
	cmd := exec.Command("psql", append([]string{conninfo, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"}, args...)...)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=5")
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func TestPSQL(t *testing.T) {
	addr, dir := start(t, query.PGWireConfig{})
	host, port, _ := strings.Cut(addr, ":")
	conninfo := fmt.Sprintf("host=%s port=%s user=bi dbname=sluice sslmode=disable", host, port)
	out, stderr, err := psql(t, conninfo, "-c", "SELECT sensor_id, ts, value, unit, flags, NULL AS nothing FROM readings WHERE ingest_id = 13")
	if err != nil || strings.TrimSpace(out) != "sensor-003|2026-11-24 10:00:01+00|3.001|C|{}|" {
		t.Fatalf("psql: %q %q %v", out, stderr, err)
	}
	out, stderr, err = psql(t, conninfo, "-c", "SELECT count(*) FROM readings", "-c", "SELECT count(DISTINCT sensor_id) FROM readings")
	if err != nil || strings.Fields(out)[0] != "100" || strings.Fields(out)[1] != "10" {
		t.Fatalf("psql two commands: %q %q %v", out, stderr, err)
	}
	out, stderr, err = psql(t, conninfo, "-c", "SELECT range FROM range(1000000)")
	if lines := strings.Count(out, "\n"); err != nil || lines != 1_000_000 || !strings.HasSuffix(out, "999999\n") {
		t.Fatalf("psql million rows: %d lines, %q, %v", lines, stderr, err)
	}
	_, stderr, err = psql(t, conninfo, "-c", "SELECT * FROM read_csv('/etc/passwd')")
	if err == nil || !strings.Contains(stderr, "file system operations are disabled") {
		t.Fatalf("psql escape: %q %v", stderr, err)
	}
	_, stderr, err = psql(t, conninfo, "-c", "COPY (SELECT 1) TO '"+dir+"/x.csv'")
	if err == nil || !strings.Contains(stderr, "COPY is not allowed") {
		t.Fatalf("psql COPY: %q %v", stderr, err)
	}
	_, stderr, err = psql(t, conninfo, "-c", "SELECT count(*)\nFROM readings\nWHERE = 1")
	if err == nil || !strings.Contains(stderr, "syntax error") || !strings.Contains(stderr, "line 3, column 7") {
		t.Fatalf("psql syntax error: %q %v", stderr, err)
	}
}

func TestPasswordAndTLS(t *testing.T) {
	pki := testkit.NewPKI(t)
	addr, _ := start(t, query.PGWireConfig{Username: "bi", Password: "s3cret", TLSCert: pki.ServerCertFile, TLSKey: pki.ServerKeyFile})
	if _, err := pgx.Connect(context.Background(), "postgres://bi:wrong@"+addr+"/sluice?sslmode=require"); err == nil || !strings.Contains(err.Error(), "invalid username/password") {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := pgx.Connect(context.Background(), "postgres://eve:s3cret@"+addr+"/sluice?sslmode=require"); err == nil {
		t.Fatal("wrong user accepted")
	}
	c := connect(t, addr, "bi:s3cret", "require")
	if !c.PgConn().Conn().(interface{ ConnectionState() tlsState }).ConnectionState().HandshakeComplete {
		t.Fatal("not TLS")
	}
	var n int64
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM readings").Scan(&n); err != nil || n != 100 {
		t.Fatalf("over TLS: %d %v", n, err)
	}
	host, port, _ := strings.Cut(addr, ":")
	t.Setenv("PGPASSWORD", "s3cret")
	out, stderr, err := psql(t, fmt.Sprintf("host=%s port=%s user=bi dbname=sluice sslmode=require", host, port), "-c", "SELECT ssl FROM (SELECT true AS ssl)")
	if err != nil || strings.TrimSpace(out) != "t" {
		t.Fatalf("psql over TLS with a password: %q %q %v", out, stderr, err)
	}
}
