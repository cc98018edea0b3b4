package envelope

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Version is the first byte of every encoded envelope.
const Version byte = 1

// MaxTopicLen is the longest topic an envelope accepts (the MQTT limit).
const MaxTopicLen = 65535

// Source says where an envelope came from.
type Source uint8

// The sources sluice ingests from.
const (
	SourceUnknown Source = 0
	SourceMQTT    Source = 1
	SourceHTTP    Source = 2
	SourceKafka   Source = 3
)

// String returns the name used in the lake's source= partition.
func (s Source) String() string {
	switch s {
	case SourceMQTT:
		return "mqtt"
	case SourceHTTP:
		return "http"
	case SourceKafka:
		return "kafka"
	default:
		return "unknown"
	}
}

// Envelope is one received message.
type Envelope struct {
	// ReceivedAt is when the edge received the message, in Unix nanoseconds (UTC).
	ReceivedAt int64
	// Source is the kind of edge that received it.
	Source Source
	// QoS is the MQTT quality of service the message arrived with (0 for other sources).
	QoS uint8
	// Topic is the MQTT topic (or HTTP path, or Kafka topic) it arrived on.
	Topic string
	// Payload is the message body, byte for byte as received.
	Payload []byte
}

// Time returns ReceivedAt as a time.Time in UTC.
func (e *Envelope) Time() time.Time { return time.Unix(0, e.ReceivedAt).UTC() }

// Errors returned by Decode.
var (
	ErrShort   = errors.New("envelope truncated")
	ErrVersion = errors.New("unknown envelope version")
)

// AppendBinary appends the encoding of e to dst and returns the extended slice.
func (e *Envelope) AppendBinary(dst []byte) []byte {
	dst = append(dst, Version, byte(e.Source), e.QoS)
	dst = binary.AppendUvarint(dst, uint64(e.ReceivedAt))
	dst = binary.AppendUvarint(dst, uint64(len(e.Topic)))
	dst = append(dst, e.Topic...)
	return append(dst, e.Payload...)
}

// Size returns the length of e's encoding.
func (e *Envelope) Size() int {
	return 3 + uvarintLen(uint64(e.ReceivedAt)) + uvarintLen(uint64(len(e.Topic))) + len(e.Topic) + len(e.Payload)
}

// View is a decoded envelope whose Topic and Payload alias the encoded bytes: no copy, no allocation.
// It is valid as long as those bytes are.
type View struct {
	ReceivedAt int64
	Source     Source
	QoS        uint8
	Topic      []byte
	Payload    []byte
}

// Decode decodes b into e. e.Payload aliases b (no copy); e.Topic is a copy.
func Decode(b []byte, e *Envelope) error {
	var v View
	if err := DecodeView(b, &v); err != nil {
		return err
	}
	*e = Envelope{ReceivedAt: v.ReceivedAt, Source: v.Source, QoS: v.QoS, Topic: string(v.Topic), Payload: v.Payload}
	return nil
}

// DecodeView decodes b into v without copying.
func DecodeView(b []byte, v *View) error {
	if len(b) < 3 {
		return fmt.Errorf("decode envelope: %w (%d bytes)", ErrShort, len(b))
	}
	if b[0] != Version {
		return fmt.Errorf("decode envelope: %w %d", ErrVersion, b[0])
	}
	v.Source, v.QoS = Source(b[1]), b[2]
	rest := b[3:]
	ts, n := binary.Uvarint(rest)
	if n <= 0 {
		return fmt.Errorf("decode envelope: received_at: %w", ErrShort)
	}
	v.ReceivedAt = int64(ts)
	rest = rest[n:]
	tl, n := binary.Uvarint(rest)
	if n <= 0 {
		return fmt.Errorf("decode envelope: topic length: %w", ErrShort)
	}
	rest = rest[n:]
	if tl > MaxTopicLen || tl > uint64(len(rest)) {
		return fmt.Errorf("decode envelope: topic of %d bytes: %w", tl, ErrShort)
	}
	v.Topic = rest[:tl:tl]
	v.Payload = rest[tl:]
	return nil
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}
