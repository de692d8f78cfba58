"""Image-level checks: file information, baseline (image config, OS settings, weak passwords)."""
