"""Reusable Pulumi components. Each knows only its own typed args and the Pulumi SDKs, never stack config."""
