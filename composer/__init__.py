"""Compose recurrent neural networks declaratively."""
