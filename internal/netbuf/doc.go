// Package netbuf owns one thing: a net.Conn wrapper (Conn) that buffers reads and coalesces writes,
// for the MQTT client libraries sluice uses, which make a system call per packet written and several
// per packet read. It knows nothing of MQTT; the MQTT source (internal/source/mqtt) and the simulator
// (internal/simulate) hand it to paho.mqtt.golang (as the connection an OpenConnectionFunc returns:
// the simulator) and to paho.golang (as ClientConfig.Conn), and the source's own MQTT 3.1.1 loop reads
// and writes through it.
//
// # Why
//
// paho.mqtt.golang reads a packet with a read(2) for the type byte, one per length byte and one for
// the body, and writes every packet, a PUBACK of 4 bytes included, with its own write(2); paho.golang
// does the same, and writes a PUBACK as two write(2)s. At tens of thousands of messages a second those
// system calls were a third of the MQTT source's CPU time (perf, bench/RESULTS.md) and most of the
// simulator's (35k to 153k messages/s per connection with this wrapper).
//
// # What a call means
//
//   - Read goes through a bufio.Reader of ReadBuffer bytes. One goroutine reads at a time (both
//     libraries read from one goroutine).
//   - Write copies p into a pending buffer and returns: the bytes are not on the wire yet, nor is a
//     write error known. A flusher goroutine writes whatever is pending with one write(2), and what
//     accumulates while that write runs goes out with the next: a packet written after a pause leaves
//     at once (no timer, no Flush call needed), and under load packets leave in batches. Bytes leave in
//     the order Write was called, and one Write's bytes are never split by another's (Write is safe for
//     concurrent use; a caller that writes one packet with several Writes must serialise them itself,
//     as paho.golang's packets.NewThreadSafeConn does).
//   - Backpressure: while MaxPending bytes are pending, Write waits for the flusher (a Write of more
//     than MaxPending into an empty buffer is taken whole).
//   - The first write error is returned by every later Write; the flusher then closes the connection,
//     so a blocked Read returns too, with that error: the library notices the loss from either side.
//   - Close flushes what is pending, waiting at most CloseFlush (then it closes the connection under
//     the write in progress, which fails it), closes the connection and returns once the flusher has
//     exited. Writes after Close return net.ErrClosed. Close must be called once the connection is no
//     longer used, or the flusher goroutine stays.
//
// Deadlines are the wrapped connection's: a write deadline bounds the flusher's write(2), not Write.
// Conn sets none itself (gorilla/websocket, for one, does not allow setting one during a write).
//
// # Goroutines
//
// Each Conn has one flusher goroutine, started by New and ended by Close (or by a write error). Read,
// Write and Close may be called from any goroutines.
//
// # Why written here
//
// bufio.Writer coalesces only until an explicit Flush, and neither MQTT library calls Flush: a
// buffered packet would wait for the next one or for a timer. What is needed instead (flush on the
// first write after a pause, batch while a write is in progress, bounded) is the ~100 lines below.
package netbuf
