"""Real components the end-to-end tests start on 127.0.0.1."""
