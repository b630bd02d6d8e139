"""Kill tests (issue #7): real processes SIGKILLed mid-work, then `tipbox fsck`."""
