"""What every layer shares: crash-safe files, checks of settings, building plug-ins from their
`_target_` with their contracts checked, and what the hardware runs fast."""
