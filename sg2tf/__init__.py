"""sg2tf: StyleGAN2 for TensorFlow 2 / Keras 3.

`import sg2tf` does not import TensorFlow (the command-line tools check their flags before
paying for it). It does make every sg2tf layer and network known to Keras, so that
`keras.models.load_model('generator.keras')` works once sg2tf is imported: the classes are
registered (`keras.saving.register_keras_serializable(package='sg2tf')`) by importing
sg2tf.networks, which happens here at once when TensorFlow is already loaded, and otherwise
right after TensorFlow finishes loading (a one-shot import hook; see _keras_registration).
"""

__version__ = '0.1.0'

from sg2tf import _keras_registration  # pylint: disable=g-import-not-at-top,wrong-import-position

_keras_registration.install()
