// Package envelope owns the envelope: the record every source wraps around a message at the edge, and
// its binary encoding (docs/format/envelope.md).
//
// An envelope carries the payload bytes exactly as received plus what the edge knew when it received
// them: when, from which source, on which topic, at which QoS. Everything downstream (bronze, silver,
// gold) can be rebuilt from envelopes, so the encoding is versioned and never changes meaning.
//
// The envelope does not carry its ingest id: the durable log assigns it on append (the log offset), and
// readers get it next to the decoded envelope. The package knows nothing of logs, files or lakes.
package envelope
