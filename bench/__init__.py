"""`make bench`: recd's throughput and memory, as ratios to find, shred and dd in the same run."""
