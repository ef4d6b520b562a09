"""End-to-end tests: the HTTP API over each database backend."""
