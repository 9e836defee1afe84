"""Rendering a FlopsReport: text and Markdown tables, plots, and the
Keras-look summary table. Nothing here computes a count."""
