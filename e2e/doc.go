// Package e2e tests the sluice binary as users run it: built once, started as a subprocess on free
// ports, fed over real MQTT (the embedded broker and Mosquitto), killed with SIGKILL, restarted, and
// judged by reading the lake back with an independent reader (the Delta log's JSON read directly, the
// Parquet files read by DuckDB).
package e2e
