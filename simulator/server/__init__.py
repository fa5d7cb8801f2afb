"""The provider listeners' server loop: h2 (and h11) driven from an ``asyncio.Protocol``.

Why hand-written rather than hypercorn or another ASGI server: the simulator is the
yardstick of every load test and must be several times faster than any sender it
measures. Measured on a 2-core machine, a minimal ASGI app on hypercorn serves about
4,000 req/s where a bare h2 state machine in an ``asyncio.Protocol`` serves about
12,000-15,000 (DESIGN.md). hypercorn also closes HTTP/2 connections after 1,000
requests by default. So this package does the least work possible per request:
header validation is off (the provider cores validate what they care about), and
a request is handed to the listener's :class:`~simulator.wire.Handler` only when its
stream ends.

The loop never decides anything about push semantics. It executes the
:data:`~simulator.wire.Action` a handler returns: respond, delay, reset the stream,
GOAWAY, close or abort the connection, or hang.

Modules:

- :mod:`.listener`: :class:`Listener` (the socket) and :class:`ListenerOptions`;
  ``ProviderProtocol``, one client connection: TLS/ALPN, h2c sniffing, idle timeout,
  close/abort/GOAWAY, and running each request through the handler.
- :mod:`.actions`: executes an action on the wire, one executor per action type.
- :mod:`.http2`: the h2 driver: connection and stream events to requests, responses,
  resets and GOAWAY to frames.
- :mod:`.http11`: the HTTP/1.1 driver.
- :mod:`.frames`: the h2 fast path: raw HEADERS/DATA frames, the literal-only HPACK
  encoder; :mod:`.huffman`: the Huffman decode cache, bounded in bytes; :mod:`.blocks`:
  header blocks bounded while they arrive.
- :mod:`.driver`: the Protocols between a connection and its driver.

What one peer may make a listener hold or do (:mod:`.limits`, one value per listener):
:mod:`.admission` (connections, against the process's descriptors), :mod:`.watchdog`
(opening and header-block deadlines), :mod:`.floods` (per-connection frame-flood counters),
:mod:`.h2peer` (the h2 driver's body cap, flood answers and per-turn request budget); the
HTTP/1.1 driver holds its own, and every connection stops reading while its write buffer
is full.
"""
