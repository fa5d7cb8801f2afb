"""pushsim's reference sender: token store, durable outbox, dispatcher and provider clients."""
