"""The dashboard: `/ui`."""
