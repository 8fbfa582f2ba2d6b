"""HTTP layer: parses requests, calls one service or source, renders."""
