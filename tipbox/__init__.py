"""tipbox: a secure anonymous tip box for newsrooms."""
