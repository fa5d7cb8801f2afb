"""``pushsim simulator --workers N``: every provider on every core, with one ground truth.

The primary process is the simulator as it always is (all listeners, the control API,
the registry, the fault plan and its record); N-1 worker processes serve every provider
listener on the same ports (SO_REUSEPORT: the kernel spreads connections over the N).

- Down, every 20 ms (:mod:`.pool`): the population's delta (devices minted, killed,
  reinstalled; tokens and Web Push keys are derived from the shared token key, so no
  token is shipped: :mod:`.replica`); each provider's settings; the fault plan and its
  run clock. A token killed by the control API or by churn is dead on every worker at
  the next sync: 12 ms on average, 22 ms at most over 100 kills measured from the
  control API's answer to a worker's first 410 (within the 50 ms promised).
- Up, at the end of each loop turn: deliveries (the primary routes them as the provider
  routes its own: inboxes, offline storage, the delivery log), sends to dead tokens,
  expiries, and every 50 ms the counters of stats and the fault record (:mod:`.tally`).
- Asked, and answered at once: what needs the ground truth is decided where it lives. An
  FCM send is checked on the worker (access token, JSON, message) and decided on the
  primary (forced errors, device or topic, quotas, delivery): quotas are counted once,
  exactly, and fan-out sees one set of subscriptions. Requests that are not a provider's
  sends (OAuth, topic management, anything else) are answered by the primary's listener.
  The worker answers with :class:`~simulator.wire.Later`: no ask blocks a loop; asks made
  in one loop turn leave in one frame (:mod:`.channel`).

:mod:`.providers` holds each provider's side of this in one table. Per-connection rules
(APNs provider-token updates, stream limits, idle timeout) hold per connection exactly,
as before; APNs' per-device TooManyRequests and Web Push's per-subscription rate are per
process; a throttle window hands its provider's sends to the primary while it is open,
so its bucket is counted once. Retry-After holds (a 429 or 503 with Retry-After) are
shared within a sync: a retry that comes early to another process than the one that
answered is seen as early there (:mod:`.ledger`).
"""
