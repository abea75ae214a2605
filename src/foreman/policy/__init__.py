"""Pure decision code: who may run which tool, and the approval state machine."""
