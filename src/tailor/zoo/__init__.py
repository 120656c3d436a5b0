"""Names -> real models and datasets that load offline (see docs/zoo.md)."""
