"""Request events, their aggregates, SLO checks and health probes."""
