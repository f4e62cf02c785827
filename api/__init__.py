"""HTTP/WebSocket API and dashboard."""
