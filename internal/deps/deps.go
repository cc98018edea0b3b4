//go:build tools

// Package deps pins the chosen libraries in go.mod until the code that uses them lands; remove an import once a real package imports it.
package deps

import (
	_ "github.com/duckdb/duckdb-go/v2"
	_ "github.com/eclipse/paho.golang/autopaho"
	_ "github.com/eclipse/paho.mqtt.golang"
	_ "github.com/jackc/pgx/v5"
	_ "github.com/jeroenrinzema/psql-wire"
	_ "github.com/klauspost/compress/zstd"
	_ "github.com/mochi-mqtt/server/v2"
	_ "github.com/parquet-go/parquet-go"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/spf13/cobra"
	_ "github.com/twmb/franz-go/pkg/kfake"
	_ "github.com/twmb/franz-go/pkg/kgo"
	_ "github.com/valyala/fastjson"
	_ "go.uber.org/goleak"
	_ "go.yaml.in/yaml/v3"
	_ "gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/memblob"
)
