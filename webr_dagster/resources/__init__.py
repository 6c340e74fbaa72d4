"""Resources: the pipeline's only doors to storage and to language models."""
