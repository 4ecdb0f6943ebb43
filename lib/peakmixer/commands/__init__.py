"""Layer 6, commands: argument parsing and one-line errors for ``python -m peakmixer`` (`peakmixer.cli`)."""
