"""earshot's training recipe: the model, its features, data pipeline and training loop."""
