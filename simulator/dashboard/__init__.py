"""A live dashboard for a running simulator, served by hypercorn beside the providers.

``pushsim simulator --dashboard`` serves a page (HTTP/2 over TLS with the simulator's own
certificate, and HTTP/1.1) that shows what the simulator answers as it happens and lets a
person break it on purpose: apply a fault, find a device and read its inbox, take it offline,
rotate or uninstall it.

Parts, pure first:

- :mod:`~simulator.dashboard.meter`: the tap in front of each listener's handler (status,
  reason and latency of every push send) and the counters it feeds;
- :mod:`~simulator.dashboard.rates`: requests per second and latency percentiles from two
  counter readings;
- :mod:`~simulator.dashboard.board`: samples in, the page's document and its per-tick
  differences out (what the event stream carries);
- :mod:`~simulator.dashboard.guard`: the Host header, per-start token and content-type rules;
- :mod:`~simulator.dashboard.presets`: fault presets and the fault form's fields;
- :mod:`~simulator.dashboard.progress`: a run's progress document (``POST /_sim/run/progress``);
- :mod:`~simulator.dashboard.actions`: what the page can do, on the simulator's own operations;
- :mod:`~simulator.dashboard.asgi` and :mod:`~simulator.dashboard.server`: the thin edge (the
  ASGI app, the event stream, hypercorn in the simulator's event loop).

The page itself (``static/``) is plain HTML, CSS and a small script drawing SVG charts: no
CDN, no build step. hypercorn stays off the provider hot path: the providers keep their own
listeners; the tap only counts.
"""
