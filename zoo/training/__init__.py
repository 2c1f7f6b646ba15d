"""Training from the command line: the Lightning CLI, its error messages, callbacks, resuming, guards and checkpoint I/O."""
