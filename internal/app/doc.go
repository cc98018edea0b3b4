// Package app wires sluice's components into the running product: it owns the top-level
// configuration (one section per component, each declared in its own package) and the order in which
// components start and stop.
//
// Start order: lake, log, sensor registry (archived), stages (their consumer groups registered before
// any source appends), ingest (embedded broker or external MQTT client), HTTP; then the SQL engine,
// opened in the background because it reads every Delta log (the decoder's hot rows wait in a
// query.Deferred meanwhile, and the SQL API answers 503), and the PostgreSQL protocol once it is
// open; then the simulator when asked. Stop order is the reverse: simulator, ingest (stop taking messages; in-flight appends finish),
// stages (read the log to its end, commit), log, lake, HTTP last, so /readyz tells the truth to the end;
// the PostgreSQL protocol and the SQL engine close right after HTTP, before the log and the lake.
//
// cmd/sluice only parses flags and calls Run; everything here is testable in-process.
package app
