"""Audio endpoints: where a conversation's audio comes from and goes to (a phone call, the
API's text turns, later the desk speaker and a browser)."""
