"""protocols/realtime"""
