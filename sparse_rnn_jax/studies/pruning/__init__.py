"""Magnitude pruning of trained populations (thesis study): masks and variants, fine-tuning, summaries."""
