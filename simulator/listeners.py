"""The provider listeners every simulator serves, in the order ``--port N`` numbers them.

``--port N`` gives them N, N+1, ... in this order and the control API the next port; any
listener a part adds beyond these takes a port after the control API's.
"""

LISTENER_ORDER = ("apns", "apns_sandbox", "fcm", "webpush")
