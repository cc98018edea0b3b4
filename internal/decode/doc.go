// Package decode owns the translation of a message (topic, payload bytes, receipt time) into typed
// readings for the silver table readings/ — sensor id, metric, event time, value, unit, flags — or into
// a quarantine Reason. It knows nothing of the log, the lake or MQTT connections: it is a pure function
// of its configuration, the sensor registry and the message.
//
// # Zero configuration
//
// With DefaultConfig every common JSON shape decodes:
//
//   - sensor id: the first present of sensor_id, sensorId, sensor, device_id, deviceId, id (text, or a
//     number's text as written), else the +sensor_id level of the first topic pattern that matches
//     (defaults: plant/+site/+line/+sensor_id/+metric, sensors/+sensor_id, devices/+sensor_id/#);
//   - value: value, v or val (a number, numeric text such as "23.5", or a boolean as 1/0); without one,
//     every other numeric field (and every numeric field of a "values" or "readings" object) is a
//     reading of its own, named by its field: {"temperature": 21.5, "humidity": 40} gives two. Fields
//     the rules read for something else, and lat/lng/lon/latitude/longitude, are not values;
//   - event time: timestamp, ts, time or t — ISO 8601 / RFC 3339 text (zone optional: none is UTC; T,
//     t or space between date and time; 0 to any number of fraction digits, kept to the µs), or a
//     Unix time as a number or numeric text whose unit follows its magnitude (below 1e11 seconds, 1e14
//     ms, 1e17 µs, else ns: each unambiguous for 1973–5138). Without one, the receipt time, flagged
//     ts_from_receipt;
//   - metric: metric, metric_type, type, metadata.type, measurement, else the topic's +metric, else
//     the registry's type for the sensor, else "value";
//   - unit: unit, metadata.unit, units, else the topic's +unit, else the registry's unit, else "".
//
// A payload may also be a JSON array of such objects; the message then decodes whole or not at all.
// Under these names, a field of an unexpected type is passed over for the sensor id, metric and unit
// (an object "id", a numeric "type") but is an error for the value and the timestamp; a mapping's own
// paths are strict for every field.
//
// # Mappings
//
// Config.Mappings read other shapes: the first whose topic filter matches applies (a filter's +name
// and #name levels name topic parts), with dotted field paths, constants, a timestamp format and a
// list of value fields; a path left "" keeps the zero-configuration names, "-" means none. A mapping
// example:
//
//	mappings:
//	  - topic: factory/+sensor_id/telemetry
//	    timestamp: meta.time
//	    timestamp_format: unix_ms
//	    values: [data.*]
//	    fixed_unit: C
//
// # Validation and flags
//
// Anything that cannot become a reading is returned as an *Error whose Reason (a fixed set, see
// Reasons) and Detail (the field path and the offending text, cut to ~100 bytes) go to quarantine/.
// Reasons are checked in this order: payload (empty, too large, not JSON, not an object), values,
// sensor id, timestamp (format, then min_timestamp, then max_future after receipt — the limits apply
// to timestamps from the payload only), metric and unit. Kept readings carry Flags: unknown_sensor (not
// in the registry), out_of_range and unit_mismatch (against the registry entry, when the entry's type
// is the reading's metric or is unset; the payload's unit is kept), ts_from_receipt.
//
// # Durability, goroutines, allocation
//
// Nothing is durable here: Decode returns readings in memory and the caller (internal/pipeline)
// commits them. A Decoder is used by one goroutine at a time (the decoder stage keeps one per decoding
// goroutine, each with its own intern tables); SetRegistry may be called from any goroutine and
// applies from the next Decode. Returned strings (sensor ids, metrics, units)
// stay valid after Decode returns: they come from bounded intern tables (Config.InternSize), so a
// steady stream allocates nothing per message (benchmarks: 0 allocs/op for every shape); Flags.Names
// returns shared, precomputed slices. Only a quarantined message allocates (its *Error and Detail).
//
// # What is written by hand, and why
//
// JSON is parsed by github.com/valyala/fastjson with one reused Parser (no allocation per message;
// encoding/json costs ~1.5 µs per 160-byte message here). On the hot path — messages that the
// zero-configuration rules read, or a mapping whose fields are all default names — a hand-written
// one-pass scanner (fastScan) runs first: it validates the JSON and records the fields those rules
// read as it goes, with no tree. Its parse alone is no faster than fastjson's; what it saves is the
// cost of reading the tree afterwards through fastjson's API (a key visit, an unescape check on every
// string, a linear Get per name): a 160-byte message of fixture shape 1 went from ~390 to ~300 ns
// (BenchmarkDecode; BenchmarkParseOnly shows fastjson's parse alone at ~200 ns). It is strict and
// declines anything unusual (escapes in what it records, NaN, a leading zero, deep nesting, any
// invalid JSON), which then goes through fastjson: the scanner accepts a subset of what fastjson
// accepts and must give the same result, which FuzzFastPath checks by decoding every input both ways.
//
// fastjson is lenient: it accepts NaN and Inf literals (reported as value_not_finite), leading zeros
// and a leading +, control characters and unknown escapes in strings, and it checks a number's syntax
// only when the number is read — so a malformed number in a field sluice reads is invalid_json, one
// in a field it ignores passes (raw/ keeps the bytes either way). Values are converted exactly:
// Clinger's fast path for up to 15 digits, strconv.ParseFloat otherwise (fastjson's own conversion
// rounds some exponents differently).
//
// The ISO 8601 / RFC 3339 and Unix time readers are hand-written: time.Parse needs one layout per
// variant (zone or not, T or space, fraction length) and costs several times more on the hot path;
// they are checked against time.Parse over many instants and by a fuzz target. Go layouts configured
// by a mapping do use time.Parse.
package decode
