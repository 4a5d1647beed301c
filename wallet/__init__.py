"""The holder side: keep a credential, present it for a profile, show it as a QR code."""
