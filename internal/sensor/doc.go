// Package sensor owns the sensor registry: what sluice knows about each sensor (metric type, unit, valid
// range, location, expected reporting interval), loaded from a sensors.json file in either of its two
// shapes and from the configuration.
//
// The two file shapes (see testdata/fixtures):
//
//   - keyed by id:  {"1": {"lat": 10, "lng": 10, "unit": "C", "type": "temperature", "range": [0, 45], "description": "…"}, …}
//   - list:         {"sensors": [{"id": "Sensor 1", "location": {"lat": 10, "lng": 10}, "type": "temperature",
//     "unit": "C", "range": {"min": 0, "max": 45}, "description": "…"}, …]}
//
// Both may also carry "interval" (the expected time between readings: "1s", "5m", or a number of
// seconds). Unknown fields are kept in the raw bytes and ignored.
//
// A Registry is immutable once built and safe for concurrent use; a new version replaces it as a whole
// (the decoder swaps registries between batches). Its Digest names the version: the lake's sensors/ table
// archives every distinct version raw, keyed by digest. Sensors absent from the registry are not an
// error anywhere: their readings are kept and flagged by the decoder.
//
// The package reads files; it knows nothing of payloads, the lake or the log.
package sensor
