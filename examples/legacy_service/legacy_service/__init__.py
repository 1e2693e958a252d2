"""Essay intake service: HTTP submissions, a Redis preparation queue, Kafka analysis."""

SERVICE_NAME = "legacy_service"
__version__ = "0.3.0"
