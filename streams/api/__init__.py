"""The alerts service ``envwatch api`` (docs/api.md): a read-only view of the alert topics and
the commands people send to the locality stage."""
