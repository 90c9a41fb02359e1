"""Service events out: the publisher that records them, and the webhook outbox's sender."""
