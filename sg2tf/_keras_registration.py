"""Makes sg2tf's Keras classes known to Keras as soon as TensorFlow is loaded.

Keras finds the class of a saved layer or model (`"registered_name": "sg2tf>Generator"` in a
.keras file) only among registered classes, and every sg2tf layer and network registers
itself when its module is imported (`keras.saving.register_keras_serializable(package=
'sg2tf')`). Importing those modules needs TensorFlow (~3 s), which `import sg2tf` must not
pay: the command-line tools check their flags first. So `install()` (run by `import sg2tf`):
  - TensorFlow and Keras already imported: imports sg2tf.networks now (~0.1 s more);
  - otherwise: puts a finder on sys.meta_path that only watches the modules `tensorflow` and
    `keras` (each imports the other); when both have finished executing, the finder
    removes itself and imports sg2tf.networks. `import sg2tf; import keras; keras.models.load_model(path)` therefore
    works in either order of the imports.
When sg2tf's own code is what first imports TensorFlow (an sg2tf module importing it at
module level), the import is left to that code: importing sg2tf.networks in the middle of
another sg2tf module's import could meet partly initialised modules. Every network module
registers its own classes when imported, so the classes that code uses are registered.
"""

import sys
import warnings

_REGISTERING_MODULE = 'sg2tf.networks'
_state = {'registered': False}


def register():
  """Imports sg2tf.networks (its modules register sg2tf's layers and networks). Idempotent."""
  if _state['registered']:
    return
  _state['registered'] = True
  __import__(_REGISTERING_MODULE)


def _sg2tf_module_initializing():
  return any(name.startswith('sg2tf.') and
             getattr(getattr(mod, '__spec__', None), '_initializing', False)
             for name, mod in list(sys.modules.items()))


_WATCHED = ('tensorflow', 'keras')


def _loaded(name, just_executed):
  mod = sys.modules.get(name)
  if mod is None:
    return False
  # The module whose exec_module just returned is still marked initialising.
  return name == just_executed or not getattr(getattr(mod, '__spec__', None), '_initializing',
                                               False)


def _after_import(just_executed):
  """Registers once TensorFlow and Keras are both completely imported (either imports the
  other: each order happens) and no sg2tf module is half imported."""
  if not all(_loaded(name, just_executed) for name in _WATCHED):
    return
  uninstall()
  if _sg2tf_module_initializing():
    return
  try:
    register()
  except Exception as e:  # pylint: disable=broad-except
    # `import tensorflow` must not fail because of sg2tf; the error shows again (with its
    # trace) when sg2tf.networks is imported directly.
    _state['registered'] = False
    warnings.warn(f'sg2tf: could not register its Keras classes ({type(e).__name__}: {e}); '
                  f'import {_REGISTERING_MODULE} before keras.models.load_model.')


class _AfterImport:
  """sys.meta_path finder: locates nothing itself; wraps the loaders of `tensorflow` and
  `keras` (found by the other finders) so that _after_import runs once each has executed."""

  def find_spec(self, fullname, path=None, target=None):
    if fullname not in _WATCHED:
      return None
    for finder in sys.meta_path:
      if finder is self or not hasattr(finder, 'find_spec'):
        continue
      spec = finder.find_spec(fullname, path, target)
      if spec is not None:
        break
    else:
      return None
    loader = spec.loader
    exec_module = getattr(loader, 'exec_module', None)
    if exec_module is None:
      return spec

    def exec_then_register(module):
      exec_module(module)
      _after_import(fullname)

    # This loader object belongs to this spec only (the finders make a new one per call).
    loader.exec_module = exec_then_register
    return spec


def uninstall():
  sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _AfterImport)]


def install():
  """Registers now (TensorFlow and Keras loaded) or once both have been imported."""
  if all(_loaded(name, None) for name in _WATCHED):
    if not _sg2tf_module_initializing():
      register()
    return
  if any(name in sys.modules for name in _WATCHED):
    return  # Imported half-way (sg2tf imported by TensorFlow or Keras?): leave it alone.
  if not any(isinstance(f, _AfterImport) for f in sys.meta_path):
    sys.meta_path.insert(0, _AfterImport())
