"""The listeners every simulator serves, in the order ``--port N`` numbers them.

``--port N`` gives the four provider listeners N..N+3 in :data:`LISTENER_ORDER` (the order of
the external contract), the control API N+4, and APNs' broadcast channel management
(production, then sandbox) N+5 and N+6: :data:`PORTS_TAKEN` consecutive ports in all.
"""

LISTENER_ORDER = ("apns", "apns_sandbox", "fcm", "webpush")
CHANNEL_LISTENERS = ("apns_channels", "apns_channels_sandbox")
PORT_ORDER = (*LISTENER_ORDER, "control", *CHANNEL_LISTENERS)
PORTS_TAKEN = len(PORT_ORDER)
