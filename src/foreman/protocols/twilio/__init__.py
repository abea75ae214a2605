"""protocols/twilio"""
