"""One sub-package per paper (plus the fine-tuning baseline); `tailor.plugins.discover` finds them."""
