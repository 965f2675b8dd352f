"""What a laptop and a test need: the demo and the embedded stand-ins for Redis and MQTT."""
