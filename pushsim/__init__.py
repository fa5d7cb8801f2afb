"""pushsim: what its three parts share (the command, the clock, encodings), and nothing more.

The simulator (:mod:`simulator`), the reference sender (:mod:`sender`) and the load harness
(:mod:`loadtests`) each import from here; none of them imports another's package for these.
"""

__version__ = "0.1.0"
