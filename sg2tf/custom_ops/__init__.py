"""Fused custom ops for StyleGAN2: `upfirdn2d` and `bias_act` (NHWC), each with a pure-TF
reference and a compiled C++/CUDA kernel. Which one runs is an op-level policy
(policy.py): per call `impl='custom'|'ref'`, otherwise `with implementation('ref'):` scopes
or the process default (`set_implementation`), 'auto' at first."""

from sg2tf.custom_ops._loader import CustomOpUnavailableError
from sg2tf.custom_ops.bias_act import activation_funcs, bias_act
from sg2tf.custom_ops.conv2d_resample import conv2d_resample
from sg2tf.custom_ops.policy import (current_formulation, current_implementation, formulation,
                                     fused_modconv, implementation, resolve_formulation,
                                     resolve_impl, set_formulation, set_implementation)
from sg2tf.custom_ops.upfirdn2d import (downsample2d, filter2d, setup_filter, upfirdn2d,
                                        upsample2d)

__all__ = [
    'CustomOpUnavailableError', 'activation_funcs', 'bias_act', 'conv2d_resample',
    'current_formulation', 'current_implementation', 'downsample2d', 'filter2d', 'formulation',
    'fused_modconv', 'implementation', 'resolve_formulation', 'resolve_impl', 'setup_filter',
    'set_formulation', 'set_implementation', 'upfirdn2d', 'upsample2d',
]
