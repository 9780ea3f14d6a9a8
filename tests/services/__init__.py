"""Services written with the official Restate Python SDK, used by the integration tests."""
