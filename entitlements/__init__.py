"""The composition root and command line of entitlements: configuration, persistence, start-up."""
