"""The flows users run and deploy."""
