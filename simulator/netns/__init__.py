"""``pushsim exec`` and ``pushsim hosts``: real clients, real hostnames, nothing leaves.

``sandbox`` writes what the namespace mounts (hosts, resolver, trust bundle) and the
environment COMMAND inherits; ``namespace`` builds the ``unshare`` command line;
``inside`` runs in the namespace (loopback up, files bound, forwarder, COMMAND);
``forward`` pipes loopback ports to the simulator's Unix sockets; ``launch`` starts a
simulator when none serves the state directory; ``command`` puts it together for
``pushsim exec`` (``exec_cli``) and ``target`` for ``pushsim run --target-cmd``;
``trust`` writes the CA bundle and JVM truststore; ``hosts_cli`` is ``pushsim hosts``.
"""
