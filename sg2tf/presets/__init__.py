"""The shipped training flagfiles: `--preset=NAME` reads NAME.flags from this folder."""
