"""StyleGAN2 networks (Keras 3, NHWC): mapping, synthesis, generator and discriminator."""

from sg2tf.networks.discriminator import Discriminator, DiscriminatorBlock, DiscriminatorEpilogue
from sg2tf.networks.generator import Generator
from sg2tf.networks.mapping import MappingNetwork
from sg2tf.networks.synthesis import ARCHITECTURES, SynthesisBlock, SynthesisNetwork

__all__ = [
    'ARCHITECTURES', 'Discriminator', 'DiscriminatorBlock', 'DiscriminatorEpilogue', 'Generator',
    'MappingNetwork', 'SynthesisBlock', 'SynthesisNetwork',
]
