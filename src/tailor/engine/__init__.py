"""The one training engine every stage uses (transformers.Trainer underneath)."""
