"""The front door: every provider under its real hostname, on one Unix socket.

``names`` is the table of real hostnames and the pure routing function; ``door`` serves
a Unix socket (:mod:`simulator.frontdoor.sockets` says where) with the provider listeners'
own handlers behind it.
"""
