"""pushsim simulator: mock APNs, FCM and Web Push services with fault injection."""

__version__ = "0.1.0"
