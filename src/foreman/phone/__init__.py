"""Phone calls over Twilio: admitting a media stream, running it as a conversation session,
and keeping a record of every call."""
