"""Pure decision code: no I/O, no clock reads, no logging, no environment."""
