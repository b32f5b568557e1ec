"""Understanding a model: its summary layer by layer, its explain page, its test metrics."""
