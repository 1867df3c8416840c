"""recd's adversarial suite (issue 13): one module per way recd was attacked."""
