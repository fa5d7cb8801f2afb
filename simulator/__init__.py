"""pushsim simulator: mock APNs, FCM and Web Push services with fault injection."""
