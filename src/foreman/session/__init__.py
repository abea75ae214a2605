"""Sessions: one audio endpoint bridged to one backend; the supervisor; the event bus."""
