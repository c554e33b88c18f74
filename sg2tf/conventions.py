"""Names shared by the networks, the paper configs, the flags and the tools, defined once.

No TensorFlow here: flag definitions and config validation import this before TensorFlow
starts.
"""

# The G / D architectures of the paper (Fig. 7): plain, output/input skips, residual.
ARCHITECTURES = ('orig', 'skip', 'resnet')

# Noise inputs of the synthesis network: fresh per call, the stored per-layer constant maps,
# or none at all. The tools' default (and the official generators' choice) is 'const', first.
NOISE_MODES = ('const', 'random', 'none')
