"""Architectures written in the project, registered with transformers Auto classes on import."""
