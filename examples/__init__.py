"""Data package: files shipped inside the wheel."""
