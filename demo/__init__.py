"""`make demo`: a demo tree of real recordings and a recd run over it."""
