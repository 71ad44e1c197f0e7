"""The arq worker and its task functions."""
