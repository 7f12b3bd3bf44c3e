"""Domain events leaving the service: supervisor alerts over MQTT."""
